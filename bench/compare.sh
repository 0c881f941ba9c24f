#!/usr/bin/env bash
# compare.sh: chat-server side by side with nats-server, InspIRCd and ngIRCd
# on this machine, with bench/chat-bench as the load generator.
#
#   bench/compare.sh            the full comparison (about 75 minutes)
#   bench/compare.sh --quick    one short run of each kind (a few minutes)
#
# Options:
#   --quick            1 run, 100 and 1000 clients, 3 s runs, 2000 idle
#                      clients, a 256 MiB transfer
#   --build DIR        build directory (default: build-bench, configured
#                      with --buildtype=release when missing)
#   --out DIR          results directory (default bench/results/<timestamp>)
#   --servers LIST     comma-separated subset of chat,nats,inspircd,ngircd
#   --skip LIST        comma-separated parts to skip:
#                      fanout,ackone,capacity,latency,common,prior,sweep,
#                      floor,window,idle,transfer (fanout is the window with
#                      --ack all, ackone the window with --ack one, latency
#                      each server at half its own peak, common every
#                      server at half of the best peer's peak, prior
#                      chat-server at --prior-rate)
#   --cap-p99 MS       the capacity part's p99 bound (default 50)
#   --prior-rate R     msgs/s per sender of the prior part (default 538.5:
#                      half of chat-server's 1000-client peak before issue
#                      11, where its p99 was 12.2 ms)
#   --quickack         chat-bench sets TCP_QUICKACK on its receiving sockets
#                      (fanout, ackone, capacity, latency, common, sweep,
#                      window)
#   --runs N           runs per (server, size) (default 3)
#   --sizes LIST       client counts of the fan-out and capacity parts,
#                      space- or comma-separated (default 100 1000 5000;
#                      --quick: 100 1000)
#   --transfer-gib N   size of the transfer file in GiB (default 1)
#   --no-install       do not apt-get install missing peers
#   --quiet-wait S     before each run wait up to S seconds (default 5) for
#                      the machine to be idle (< 0.3 cores busy)
#   --retries N        runs disturbed by other processes (> 0.5 cores) are
#                      run once more, N at most (default 12; the disturbed
#                      result is kept in raw/disturbed/)
#   --nice N           run servers and chat-bench at this nice level
#                      (default -5 as root, so that other work on the
#                      machine disturbs less; 0 to leave it)
#
# The server under test runs on CPU 0 (taskset -c 0) and chat-bench on CPU
# 1; transfers are not pinned (see README.md). Everything binds to loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

args_given="$*"
quick=0
build="$root/build-bench"
out=""
servers="chat,nats,inspircd,ngircd"
skip=""
runs=3
xfer_gib=1
install=1
nice_level=-5
quiet_wait=5
retries=12
quickack=()
sizes_opt=""
prior_rate=538.5
cap_p99=50
[ "$(id -u)" = 0 ] || nice_level=0
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) quick=1 ;;
  --build) build=$2; shift ;;
  --out) out=$2; shift ;;
  --servers) servers=$2; shift ;;
  --skip) skip=$2; shift ;;
  --runs) runs=$2; shift ;;
  --transfer-gib) xfer_gib=$2; shift ;;
  --no-install) install=0 ;;
  --nice) nice_level=$2; shift ;;
  --quiet-wait) quiet_wait=$2; shift ;;
  --retries) retries=$2; shift ;;
  --quickack) quickack=(--quickack) ;;
  --sizes) sizes_opt=${2//,/ }; shift ;;
  --prior-rate) prior_rate=$2; shift ;;
  --cap-p99) cap_p99=$2; shift ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "compare.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# workload
senders=10
size=64
window=8
src_ips=127.0.0.1-127.0.0.100
if [ "$quick" = 1 ]; then
  runs=1
  sizes="100 1000"
  duration=3
  warmup=1
  idle_clients=2000
  xfer_mib=256
  xfer_runs=1
else
  sizes="100 1000 5000"
  duration=10
  warmup=2
  idle_clients=10000
  xfer_mib=$((xfer_gib * 1024))
  xfer_runs=5
fi
# capacity: open-loop steps of cap_step seconds (no warmup) and a drain of
# cap_drain, from half of the best closed-loop peak up by cap_growth until a
# step fails, then bisected to cap_precision
cap_step=3
cap_drain=2
cap_growth=1.4
cap_precision=0.05
cap_max_steps=14
[ "$quick" = 1 ] && cap_step=2
[ -z "$sizes_opt" ] || sizes=$sizes_opt
lat_clients=1000
sweep_fracs="0.01 0.02 0.05 0.1 0.2 0.35"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
skipped() { case ",$skip," in *",$1,"*) return 0 ;; esac; return 1; }
has_server() { case ",$servers," in *",$1,"*) return 0 ;; esac; return 1; }

# --- tools -----------------------------------------------------------------
need_pkgs=()
command -v nats-server >/dev/null || need_pkgs+=(nats-server)
command -v inspircd >/dev/null || [ -x /usr/sbin/inspircd ] || need_pkgs+=(inspircd)
command -v ngircd >/dev/null || [ -x /usr/sbin/ngircd ] || need_pkgs+=(ngircd)
command -v socat >/dev/null || need_pkgs+=(socat)
command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$install" = 1 ] || die "missing: ${need_pkgs[*]} (run without --no-install)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing ${need_pkgs[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

if [ ! -d "$build" ]; then
  log "configuring $build (release)"
  meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" src/chat-server src/chat-client bench/chat-bench >/dev/null
chat_server="$build/src/chat-server"
chat_client="$build/src/chat-client"
bench="$build/bench/chat-bench"

# file descriptors for 10k clients on each side
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 12000 ] ||
  die "ulimit -n is $(ulimit -n); 10k clients need more than 12000"

[ -n "$out" ] || out="$here/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out/raw" "$out/logs"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/chat-compare.XXXXXX)
chmod 755 "$work"
log "results in $out"

# --- machine facts ---------------------------------------------------------
[ ! -e "$out/machine.txt" ] || echo "--- another invocation ($args_given)" >>"$out/machine.txt"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cores: $(nproc)"
  echo "tcp: congestion control $(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null), qdisc $(cat /proc/sys/net/core/default_qdisc 2>/dev/null)"
  echo "memory: $(free -m | awk '/^Mem:/{print $2 " MiB"}')"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "chat-server: $("$chat_server" --version)"
  echo "nats-server: $(nats-server --version 2>&1 | head -1)"
  echo "inspircd: $(dpkg-query -W -f '${Version}' inspircd 2>/dev/null)"
  echo "ngircd: $(dpkg-query -W -f '${Version}' ngircd 2>/dev/null)"
  echo "socat: $(dpkg-query -W -f '${Version}' socat 2>/dev/null)"
  echo "quick: $quick"
  echo "nice: $nice_level; server on CPU 0, chat-bench on CPU 1 (transfers unpinned)"
  echo "workload: senders=$senders size=$size window=$window duration=$duration warmup=$warmup runs=$runs sizes='$sizes'"
  echo "capacity: step=$cap_step drain=$cap_drain growth=$cap_growth precision=$cap_precision max-steps=$cap_max_steps p99-max=${cap_p99}ms max-lag=5ms"
  echo "quickack: ${quickack[*]:-off}"
} >>"$out/machine.txt"

# --- servers ---------------------------------------------------------------
srv_pid=""
srv_port=""
pin_server="nice -n $nice_level taskset -c 0"
pin_bench="nice -n $nice_level taskset -c 1"
pin=$pin_server # empty for transfers

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port timeout_s
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$srv_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

proto_of() {
  case "$1" in
  chat) echo line ;;
  nats) echo nats ;;
  *) echo irc ;;
  esac
}

# Clients connecting/registering at once. ngIRCd listens with a backlog of
# 10: more connects at once wait for SYN retransmits. InspIRCd completes
# registrations in a once-a-second background pass, so it needs many at once
# to reach a useful rate.
concurrency_of() {
  case "$1" in
  ngircd) echo 8 ;;
  inspircd) echo 2048 ;;
  *) echo 64 ;;
  esac
}

# Cores busy machine-wide over 0.5 s.
busy_cores() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 0.5
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
    split(a, x); split(b, y); t = 0; i = 0
    for (k = 2; k <= 9; k++) { d = y[k] - x[k]; t += d; if (k == 5 || k == 6) i += d }
    printf "%.2f", (t > 0 ? n * (t - i) / t : 0) }'
}

# Other work on the machine disturbs the numbers: wait (a little) for a
# quiet moment before each run, and log how busy it was.
wait_quiet() {
  local t0=$SECONDS b
  while :; do
    b=$(busy_cores)
    awk -v b="$b" 'BEGIN { exit !(b < 0.3) }' && break
    [ $((SECONDS - t0)) -lt "$quiet_wait" ] || break
  done
  echo "$b"
}

start_server() { # name label
  local name=$1 label=$2 d="$work/$1" b
  b=$(wait_quiet)
  echo "$label: machine busy $b cores before the run" >>"$out/quiet.txt"
  mkdir -p "$d"
  chmod 755 "$d"
  srv_port=$(free_port)
  local logf="$out/logs/$label.log"
  case "$name" in
  chat)
    $pin "$chat_server" --rate 0 --max-per-ip 0 --max-clients 20000 \
      --sendq 8388608 "$srv_port" >/dev/null 2>"$logf" &
    ;;
  nats)
    $pin nats-server -p "$srv_port" -a 127.0.0.1 >/dev/null 2>"$logf" &
    ;;
  inspircd)
    echo "chat-bench" >"$d/motd.txt"
    sed -e "s|@PORT@|$srv_port|g" -e "s|@DIR@|$d|g" \
      "$here/peers/inspircd.conf" >"$d/inspircd.conf"
    $pin inspircd --nofork --runasroot --config "$d/inspircd.conf" \
      >"$logf" 2>&1 &
    ;;
  ngircd)
    echo "chat-bench" >"$d/motd.txt"
    sed -e "s|@PORT@|$srv_port|g" -e "s|@MOTD@|$d/motd.txt|g" \
      "$here/peers/ngircd.conf" >"$d/ngircd.conf"
    chmod 644 "$d/ngircd.conf" "$d/motd.txt"
    $pin ngircd -n -f "$d/ngircd.conf" >"$logf" 2>&1 &
    ;;
  *) die "unknown server $name" ;;
  esac
  srv_pid=$!
  wait_port "$srv_port" 10 || { tail -5 "$logf" >&2; die "$name did not start"; }
}

stop_server() {
  [ -n "$srv_pid" ] || return 0
  kill -TERM "$srv_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# chat-bench with a hard time limit; its exit status 3 (loss, drops) still
# leaves a JSON report, which the summary marks.
bench() { # label args...
  local label=$1
  shift
  local rc=0
  timeout -k 5 600 $pin_bench "$bench" "$@" >"$out/logs/$label.txt" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    log "  $label: chat-bench exit $rc: $(tail -1 "$out/logs/$label.txt")"
  fi
  return 0
}

# Runs a *_run command; when other processes disturbed its result (json),
# moves that aside to raw/disturbed/ and runs the command once more.
retry_disturbed() { # json cmd args...
  local json=$1
  shift
  "$@"
  if [ "$retries" -gt 0 ] && [ -f "$json" ] &&
    python3 "$here/summarize.py" disturbed "$json"; then
    retries=$((retries - 1))
    mkdir -p "$out/raw/disturbed"
    mv "$json" "$out/raw/disturbed/"
    log "  disturbed by other processes: running it again ($retries retries left)"
    quiet_wait=$((quiet_wait * 4)) "$@"
  fi
}

fanout_run() { # server clients run [ack]
  local s=$1 n=$2 r=$3 ack=${4:-all} label="fanout-$1-$2-r$3"
  [ "$ack" = all ] || label="ack$ack-$1-$2-r$3"
  start_server "$s" "$label"
  bench "$label" fanout --port "$srv_port" --proto "$(proto_of "$s")" \
    --clients "$n" --senders $senders --size $size --window $window \
    --ack "$ack" "${quickack[@]}" \
    --duration $duration --warmup $warmup --src-ips $src_ips \
    --concurrency "$(concurrency_of "$s")" --server-pid "$srv_pid" \
    --json "$out/raw/$label.json"
  stop_server
  log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
}

latency_run() { # server run rate [kind]
  local s=$1 r=$2 rate=$3 label="${4:-latency}-$1-$lat_clients-r$2"
  start_server "$s" "$label"
  bench "$label" fanout --port "$srv_port" --proto "$(proto_of "$s")" \
    --clients $lat_clients --senders $senders --size $size --rate "$rate" \
    "${quickack[@]}" --arrival \
    --duration $duration --warmup $warmup --src-ips $src_ips \
    --concurrency "$(concurrency_of "$s")" --server-pid "$srv_pid" \
    --json "$out/raw/$label.json"
  stop_server
  log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
}

capacity_run() { # server clients run start-rate
  local s=$1 n=$2 r=$3 start=$4 label="capacity-$1-$2-r$3"
  start_server "$s" "$label"
  bench "$label" capacity --port "$srv_port" --proto "$(proto_of "$s")" \
    --clients "$n" --senders $senders --size $size "${quickack[@]}" \
    --start-rate "$start" --growth $cap_growth --precision $cap_precision \
    --step $cap_step --drain $cap_drain --max-steps $cap_max_steps \
    --p99-max "$cap_p99" --max-lag 5 --src-ips $src_ips \
    --concurrency "$(concurrency_of "$s")" --server-pid "$srv_pid" \
    --json "$out/raw/$label.json"
  stop_server
  log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
}

idle_run() { # server
  local s=$1 label="idle-$1-$idle_clients" join=()
  # IRC clients register but do not join: 10k JOINs into one channel take
  # ngIRCd many minutes (its cost per JOIN grows with the channel).
  [ "$(proto_of "$s")" = irc ] && join=(--no-join)
  start_server "$s" "$label"
  sleep 0.5
  bench "$label" idle --port "$srv_port" --proto "$(proto_of "$s")" "${join[@]}" \
    --clients $idle_clients --src-ips $src_ips --server-pid "$srv_pid" \
    --concurrency "$(concurrency_of "$s")" --hold 3 \
    --json "$out/raw/$label.json"
  stop_server
  log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
}

# socat baseline: the receiver listens and writes the file, the sender
# reads it; timed from the sender's start to the receiver's exit.
socat_run() { # label [socat options]
  local label=$1 port lpid spid t0 t1 v peak_l=0 peak_s=0 sha_dst i
  shift
  rm -f "$xdir/dl/socat.out"
  port=$(free_port)
  nice -n "$nice_level" socat "$@" -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" \
    "OPEN:$xdir/dl/socat.out,creat,trunc" &
  lpid=$!
  for ((i = 0; i < 100; i++)); do
    ss -ltn "sport = :$port" | grep -q LISTEN && break
    sleep 0.05
  done
  t0=$(date +%s.%N)
  nice -n "$nice_level" socat "$@" -u "OPEN:$src" "TCP:127.0.0.1:$port" &
  spid=$!
  while kill -0 "$lpid" 2>/dev/null; do
    v=$(awk '/^VmRSS/{print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak_l" ] && peak_l=$v
    v=$(awk '/^VmRSS/{print $2}' "/proc/$spid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak_s" ] && peak_s=$v
    sleep 0.02
  done
  wait "$lpid" || true
  t1=$(date +%s.%N)
  wait "$spid" || true
  sha_dst=$(sha256sum "$xdir/dl/socat.out" | cut -d' ' -f1)
  python3 - "$out/raw/$label.json" "$t0" "$t1" "$((xfer_mib * 1024 * 1024))" \
    "$([ "$sha_src" = "$sha_dst" ] && echo true || echo false)" \
    "$peak_s" "$peak_l" "$*" <<'EOF'
import json, sys
path, t0, t1, size, ok, ps, pl, opts = sys.argv[1:]
secs = float(t1) - float(t0)
json.dump({"mode": "socat", "options": opts, "bytes": int(size),
           "seconds": secs, "mib_per_s": int(size) / 1048576 / secs,
           "sha256_ok": ok == "true", "ok": ok == "true",
           "sender_rss_peak_kib": int(ps), "receiver_rss_peak_kib": int(pl)},
          open(path, "w"))
EOF
  rm -f "$xdir/dl/socat.out"
  log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
}

IFS=, read -r -a server_list <<<"$servers"
t_begin=$(date +%s)

# --- fan-out: runs outermost, servers inside, sizes innermost ---------------
# The window with --ack all (fanout) and with --ack one (ackone), one after
# the other in each round.
if ! skipped fanout || ! skipped ackone; then
  for ((r = 1; r <= runs; r++)); do
    for s in "${server_list[@]}"; do
      for n in $sizes; do
        # 5000 clients joining one channel take ngIRCd about 3 minutes
        # (its JOIN cost grows with the channel): one run only.
        if [ "$s" = ngircd ] && [ "$n" -ge 5000 ] && [ "$r" -gt 1 ]; then
          log "fanout run $r/$runs: ngircd, $n clients: skipped (one run only)"
          continue
        fi
        if ! skipped fanout; then
          log "fanout run $r/$runs: $s, $n clients, --ack all"
          retry_disturbed "$out/raw/fanout-$s-$n-r$r.json" fanout_run "$s" "$n" "$r"
        fi
        if ! skipped ackone; then
          log "fanout run $r/$runs: $s, $n clients, --ack one"
          retry_disturbed "$out/raw/ackone-$s-$n-r$r.json" fanout_run "$s" "$n" "$r" one
        fi
      done
    done
  done
fi

# --- open-loop capacity: bisection over the total rate ----------------------
# Starts at half of the server's best closed-loop median (either ack rule)
# at that size, or at 1000 msgs/s without one.
if ! skipped capacity; then
  for ((r = 1; r <= runs; r++)); do
    for s in "${server_list[@]}"; do
      for n in $sizes; do
        if [ "$s" = ngircd ] && [ "$n" -ge 5000 ] && [ "$r" -gt 1 ]; then
          log "capacity run $r/$runs: ngircd, $n clients: skipped (one run only)"
          continue
        fi
        start=$(python3 "$here/summarize.py" startrate "$out/raw" "$s" "$n") ||
          start=1000
        log "capacity run $r/$runs: $s, $n clients, from $start msgs/s"
        retry_disturbed "$out/raw/capacity-$s-$n-r$r.json" capacity_run \
          "$s" "$n" "$r" "$start"
      done
    done
  done
fi

# --- p99 at half of each server's peak rate (1000 clients) -----------------
if ! skipped latency; then
  for ((r = 1; r <= runs; r++)); do
    for s in "${server_list[@]}"; do
      rate=$(python3 "$here/summarize.py" halfrate "$out/raw" "$s" \
        $lat_clients $senders) || rate=""
      if [ -z "$rate" ]; then
        log "latency: no fan-out result for $s at $lat_clients clients; skipped"
        continue
      fi
      log "latency run $r/$runs: $s, $lat_clients clients, $rate msgs/s per sender"
      retry_disturbed "$out/raw/latency-$s-$lat_clients-r$r.json" \
        latency_run "$s" "$r" "$rate"
    done
  done
fi

# --- p99 at a common load (1000 clients): every server at the same rate ------
# Half of the best peer's peak (either ack rule), so that p99s compare at
# equal work rather than each at its own half peak.
if ! skipped common; then
  read -r rate best_peer < <(python3 "$here/summarize.py" commonrate \
    "$out/raw" $lat_clients $senders || true) || true
  if [ -z "${rate:-}" ]; then
    log "common: no peer fan-out result at $lat_clients clients; skipped"
  else
    for ((r = 1; r <= runs; r++)); do
      for s in "${server_list[@]}"; do
        log "common-load run $r/$runs: $s, $lat_clients clients, $rate msgs/s per sender (half of $best_peer's peak)"
        retry_disturbed "$out/raw/common-$s-$lat_clients-r$r.json" \
          latency_run "$s" "$r" "$rate" common
      done
    done
  fi
fi

# --- chat-server at the load where its p99 was measured before issue 11 ----
# Its own half peak moved up with its peak; this keeps the load fixed.
if ! skipped prior && has_server chat; then
  for ((r = 1; r <= runs; r++)); do
    log "prior-load run $r/$runs: chat, $lat_clients clients, $prior_rate msgs/s per sender"
    retry_disturbed "$out/raw/prior-chat-$lat_clients-r$r.json" \
      latency_run chat "$r" "$prior_rate" prior
  done
fi

# --- chat-server's p99 against offered load (1000 clients, fixed rate) -------
if ! skipped sweep && has_server chat; then
  for frac in $sweep_fracs; do
    rate=$(python3 "$here/summarize.py" halfrate "$out/raw" chat \
      $lat_clients $senders "$frac") || rate=""
    [ -n "$rate" ] || { log "sweep: no fan-out result for chat"; break; }
    label="sweep-chat-$lat_clients-f$frac"
    log "sweep: chat, $lat_clients clients, $frac of peak = $rate msgs/s per sender"
    start_server chat "$label"
    bench "$label" fanout --port "$srv_port" --proto line \
      --clients $lat_clients --senders $senders --size $size --rate "$rate" \
      "${quickack[@]}" --duration $duration --warmup $warmup --src-ips $src_ips \
      --concurrency 64 --server-pid "$srv_pid" --json "$out/raw/$label.json"
    stop_server
    log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
  done
fi

# --- the kernel's floor: one core sending to 999 loopback connections --------
# No server: what one message to the 999 other clients of the latency runs
# costs a one-thread server in send calls alone, on the server's CPU.
if ! skipped floor; then
  for ((r = 1; r <= runs; r++)); do
    label="floor-$((lat_clients - 1))-r$r"
    log "floor run $r/$runs: $((lat_clients - 1)) loopback sends per sweep"
    b=$(wait_quiet)
    echo "$label: machine busy $b cores before the run" >>"$out/quiet.txt"
    $pin_server "$bench" floor --clients $((lat_clients - 1)) --size $size \
      --sweeps 200 --json "$out/raw/$label.json" >"$out/logs/$label.txt" 2>&1 ||
      log "  $label failed: $(tail -1 "$out/logs/$label.txt")"
    log "  $label: $(tail -1 "$out/logs/$label.txt")"
  done
fi

# --- sensitivity: a larger window at 100 clients ----------------------------
if ! skipped window; then
  for s in "${server_list[@]}"; do
    label="window64-$s-100-r1"
    log "window: $s, 100 clients, window 64"
    start_server "$s" "$label"
    bench "$label" fanout --port "$srv_port" --proto "$(proto_of "$s")" \
      --clients 100 --senders $senders --size $size --window 64 "${quickack[@]}" \
      --duration $duration --warmup $warmup --src-ips $src_ips \
      --concurrency "$(concurrency_of "$s")" --server-pid "$srv_pid" \
      --json "$out/raw/$label.json"
    stop_server
    log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
  done
fi

# --- idle clients -----------------------------------------------------------
if ! skipped idle; then
  for s in "${server_list[@]}"; do
    log "idle: $s, $idle_clients clients"
    idle_run "$s"
  done
fi

# --- file transfer vs socat ---------------------------------------------------
if ! skipped transfer && has_server chat; then
  xdir="$work/xfer"
  mkdir -p "$xdir/share" "$xdir/dl"
  src="$xdir/share/payload.bin"
  log "transfer: writing a ${xfer_mib} MiB random file"
  head -c "$((xfer_mib * 1024 * 1024))" /dev/urandom >"$src"
  sha_src=$(sha256sum "$src" | cut -d' ' -f1)
  pin=""
  # Each run writes the whole file again: let the previous run's (and the
  # source's) dirty pages reach the disk first, so that no run pays for
  # another's writeback, and rotate the order each round, so that no
  # variant always follows the same one.
  variants=(direct relay socat socat-b256k)
  for ((r = 1; r <= xfer_runs; r++)); do
    for ((k = 0; k < ${#variants[@]}; k++)); do
      v=${variants[$(((k + r - 1) % ${#variants[@]}))]}
      rm -f "$xdir/dl/"*
      sync
      log "transfer run $r/$xfer_runs: $v"
      case "$v" in
      direct | relay)
        label="transfer-$v-r$r"
        start_server chat "$label"
        timeout -k 5 900 nice -n "$nice_level" "$bench" transfer --port "$srv_port" --file "$src" \
          --mode "$v" --client "$chat_client" --server-pid "$srv_pid" \
          --downloads "$xdir/dl" --json "$out/raw/$label.json" \
          >"$out/logs/$label.txt" 2>&1 || log "  $label failed: $(tail -1 "$out/logs/$label.txt")"
        stop_server
        log "  $label: $(python3 "$here/summarize.py" brief "$out/raw/$label.json")"
        ;;
      socat) socat_run "socat-r$r" ;;
      socat-b256k) socat_run "socat-b256k-r$r" -b 262144 ;;
      esac
    done
  done
  rm -rf "$xdir"
fi

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "elapsed: $(($(date +%s) - t_begin)) s" >>"$out/machine.txt"
python3 "$here/summarize.py" summary "$out"
log "done in $(($(date +%s) - t_begin)) s: $out/summary.md"
