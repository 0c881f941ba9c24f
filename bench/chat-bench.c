/* chat-bench: a load generator for chat-server and, for comparison, for
 * IRC servers and nats-server.
 *
 *   fanout    N clients, S of them sending; measures deliveries per second
 *             and the delivery latency of every message at every receiver
 *   idle      N idle clients; connect+register rate and server RSS per client
 *   transfer  drives two chat-client processes through one file transfer
 *   capacity  open loop: bisects over a fixed total message rate for the
 *             highest at which every receiver keeps up (no loss, p99 bound)
 *   floor     no server: times one core sending a small segment to each of
 *             N loopback TCP connections, the floor under any fan-out
 *
 * Everything runs on one libuv loop in one thread. Per-client state is a
 * uv_tcp_t plus a few words; a partial line is kept only while one is
 * pending, so 10k+ clients cost a few MiB.
 */
/* TCP_QUICKACK (glibc declares it only with the BSD/GNU extensions) */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <uv.h>

#if defined(__linux__) && !defined(TCP_QUICKACK)
#define TCP_QUICKACK 12
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BENCH_NORETURN __attribute__((noreturn))
#else
#define BENCH_PRINTF(f, a)
#define BENCH_NORETURN
#endif

#define MAX_LINE (1024 * 1024) /* longest line accepted from a server */
#define MIN_SIZE 48            /* smallest payload: the header must fit */
#define MAX_SIZE (64 * 1024)

static const char usage_text[] =
    "Usage: chat-bench MODE [options]\n"
    "\n"
    "Modes:\n"
    "  fanout    N clients join, S of them send; every message reaches all\n"
    "            other clients. Reports deliveries/s, loss and latency.\n"
    "  idle      N clients join and stay idle; reports the connect+register\n"
    "            rate and, with --server-pid, the server's RSS per client.\n"
    "  transfer  runs two chat-client processes and times one file transfer\n"
    "            from the request to the \"received\" line; checks the file.\n"
    "  capacity  open loop, bisection over a fixed total message rate: the\n"
    "            highest rate at which every receiver keeps up (no loss,\n"
    "            p99 within --p99-max) while chat-bench keeps its schedule.\n"
    "  floor     no server: opens N loopback TCP connections to itself and\n"
    "            times sweeps that send one --size byte segment to each, the\n"
    "            kernel's cost that any one-thread fan-out pays (no --port).\n"
    "\n"
    "Common options:\n"
    "  --host H            server address (default 127.0.0.1)\n"
    "  --port P            server port (required)\n"
    "  --json FILE         also write the result as a JSON object to FILE\n"
    "\n"
    "fanout and idle:\n"
    "  --proto P           line (chat-server), irc or nats (default line)\n"
    "  --clients N         clients to connect (default 100)\n"
    "  --src-ips A-B       bind clients round-robin to the IPv4 addresses\n"
    "                      A..B (e.g. 127.0.0.1-127.0.0.50) before connecting\n"
    "  --concurrency K     clients connecting/registering at once (256)\n"
    "  --connect-timeout S seconds allowed for all clients to register (300)\n"
    "\n"
    "fanout:\n"
    "  --senders S         clients that send (default 10; must be < N)\n"
    "  --size B            payload bytes per message, 48..65536 (default 64)\n"
    "  --window W          closed loop: at most W messages in flight per\n"
    "                      sender (default 8)\n"
    "  --rate R            open loop instead: each sender sends R msgs/s\n"
    "  --ack all|one|probe window mode: a message leaves the window when all\n"
    "                      N-1 receivers got it (all, default), when one\n"
    "                      observer got it (one: the first receiver that\n"
    "                      registered, an early member) or when the last\n"
    "                      client got it (probe)\n"
    "  --duration SEC      measured seconds (default 10)\n"
    "  --warmup SEC        seconds of load before measuring (default 2)\n"
    "  --drain SEC         seconds to wait for the last deliveries (default "
    "10;\n"
    "                      capacity: 2, per step)\n"
    "  --quickack          set TCP_QUICKACK on every client socket after each\n"
    "                      read (Linux; it is not sticky), so that chat-bench\n"
    "                      does not delay its ACKs (fanout, capacity)\n"
    "  --arrival           also measure latency to the moment each read's\n"
    "                      bytes reached chat-bench's socket (the kernel's\n"
    "                      receive time stamp, SO_TIMESTAMPNS), which leaves\n"
    "                      out chat-bench's own lag in reading (fanout)\n"
    "\n"
    "capacity (also --proto, --clients, --senders, --size, --src-ips,\n"
    "--concurrency, --server-pid, --drain, --quickack; rates are totals over\n"
    "all senders, split evenly):\n"
    "  --start-rate R      first rate tried, msgs/s (default 1000); raised\n"
    "                      by --growth until a step fails (halved until one\n"
    "                      passes), then bisected\n"
    "  --growth F          factor between rates before the first failure\n"
    "                      (default 2; a server that drops slow clients ends\n"
    "                      the search at its first drop, so a start near the\n"
    "                      expected capacity and a small factor help)\n"
    "  --min-rate R        lowest rate tried (default 10)\n"
    "  --max-rate R        highest rate tried (default 10000000)\n"
    "  --step SEC          seconds each step sends, no warmup (default 3)\n"
    "  --p99-max MS        a step fails when its p99 exceeds MS (default 50)\n"
    "  --max-lag MS        bound on chat-bench's p99 lag behind its schedule\n"
    "                      (default 5)\n"
    "  --max-bench-cpu F   bound on chat-bench's own CPU, share of a core\n"
    "                      (default 0.95); a step that fails while chat-bench\n"
    "                      was over a bound is generator-limited, not a\n"
    "                      server failure\n"
    "  --precision F       stop when the bracket is within F (default 0.05)\n"
    "  --max-steps K       at most K steps (default 14)\n"
    "  --settle SEC        after a failed step, wait up to SEC for the\n"
    "                      backlog to reach the clients (default 20)\n"
    "\n"
    "floor:\n"
    "  --clients N         connections swept (default 100)\n"
    "  --size B            bytes per send, 1..65536 (default 64)\n"
    "  --sweeps K          timed sweeps, after 10 untimed ones (default 200)\n"
    "  --gap SEC           pause between sweeps, when the reading ends drain\n"
    "                      (default 0.005)\n"
    "\n"
    "idle:\n"
    "  --server-pid PID    sample VmRSS of PID before and after (fanout:\n"
    "                      its CPU use while measuring)\n"
    "  --hold SEC          keep the clients connected SEC seconds (default 3)\n"
    "  --no-join           IRC: register only, do not JOIN #bench\n"
    "\n"
    "transfer:\n"
    "  --file PATH         file to transfer (served from its directory)\n"
    "  --mode M            direct, relay or auto (chat-client --transfer)\n"
    "  --client PATH       the chat-client executable (required)\n"
    "  --server-pid PID    chat-server's pid, for RSS sampling\n"
    "  --downloads DIR     where the requester saves (default: a new\n"
    "                      directory under /tmp, removed afterwards)\n"
    "  --keep              keep the received file\n"
    "  --timeout SEC       give up after SEC seconds (default 600)\n"
    "\n"
    "Payloads carry \"B<sender>.<seq>.<send time ns>.\" padded with 'x'.\n"
    "Exit status: 0 ok, 1 error, 2 bad command line, 3 the run completed but\n"
    "messages were lost, clients were dropped or the file did not match.\n";

/* ------------------------------------------------------------------ */
/* errors */

static void die(const char *fmt, ...) BENCH_PRINTF(1, 2) BENCH_NORETURN;
static void die(const char *fmt, ...) {
  va_list ap;

  fflush(stdout);
  fprintf(stderr, "chat-bench: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static void usage_die(const char *fmt, ...) BENCH_PRINTF(1, 2) BENCH_NORETURN;
static void usage_die(const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "chat-bench: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (try 'chat-bench --help')\n");
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL)
    die("out of memory (%zu bytes)", n);
  return p;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p == NULL)
    die("out of memory (%zu x %zu bytes)", n, size);
  return p;
}

/* ------------------------------------------------------------------ */
/* latency histogram: log-linear in microseconds. Values below 1024 us
 * have 1 us buckets; above, each power of two has 512 buckets (0.2 %). */

#define H_LIN 1024
#define H_SUB 512
#define H_MAXEXP 36 /* values are capped at 2^36 us (19 hours) */
#define H_BUCKETS (H_LIN + (H_MAXEXP - 10) * H_SUB)

typedef struct {
  uint64_t counts[H_BUCKETS];
  uint64_t total;
  uint64_t max_ns, sum_ns;
} hist_t;

static int floor_log2(uint64_t v) {
  int e = 0;
  while (v >>= 1)
    e++;
  return e;
}

static void hist_add(hist_t *h, uint64_t ns) {
  uint64_t us = ns / 1000;
  size_t idx;

  if (us < H_LIN) {
    idx = (size_t)us;
  } else {
    int e = floor_log2(us);
    if (e >= H_MAXEXP) {
      e = H_MAXEXP - 1;
      us = ((uint64_t)1 << H_MAXEXP) - 1;
    }
    idx = H_LIN + (size_t)(e - 10) * H_SUB + (size_t)((us >> (e - 9)) - H_SUB);
  }
  h->counts[idx]++;
  h->total++;
  h->sum_ns += ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
}

/* A representative value (us) of bucket idx: its middle. */
static double hist_value(size_t idx) {
  if (idx < H_LIN)
    return (double)idx + 0.5;
  int e = 10 + (int)((idx - H_LIN) / H_SUB);
  uint64_t sub = (idx - H_LIN) % H_SUB + H_SUB;
  uint64_t width = (uint64_t)1 << (e - 9);
  return (double)(sub * width) + (double)width / 2.0;
}

static double hist_quantile(const hist_t *h, double q) {
  uint64_t want, seen = 0;

  if (h->total == 0)
    return 0.0;
  want = (uint64_t)(q * (double)h->total + 0.999999);
  if (want < 1)
    want = 1;
  for (size_t i = 0; i < H_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= want) {
      double v = hist_value(i), max_us = (double)h->max_ns / 1000.0;
      return v < max_us ? v : max_us;
    }
  }
  return (double)h->max_ns / 1000.0;
}

/* ------------------------------------------------------------------ */
/* configuration */

enum { PROTO_LINE, PROTO_IRC, PROTO_NATS };
enum { MODE_FANOUT, MODE_IDLE, MODE_TRANSFER, MODE_FLOOR, MODE_CAPACITY };
enum { ACK_ALL, ACK_ONE, ACK_PROBE };

typedef struct {
  int mode;
  const char *host;
  int port;
  int proto;
  uint32_t clients, senders, size, window, concurrency;
  double rate; /* msgs/s per sender; 0 = window mode */
  int ack;
  int quickack;
  int arrival; /* --arrival: kernel receive time stamps too */
  /* capacity: total msgs/s; step, settle in s; p99_max, max_lag in ms */
  double start_rate, min_rate, max_rate, step, p99_max, max_lag, precision;
  double settle, growth, max_bench_cpu;
  uint32_t max_steps;
  int drain_set;
  double duration, warmup, drain, connect_timeout, hold, timeout;
  const char *json;
  uint32_t src_first, src_count; /* host-order IPv4 range */
  long server_pid;
  const char *file, *xmode, *client_path, *downloads;
  int keep, no_join;
  uint32_t sweeps; /* floor */
  double gap;      /* floor */
} config_t;

static config_t cfg = {
    .host = "127.0.0.1",
    .port = -1,
    .proto = PROTO_LINE,
    .clients = 100,
    .senders = 10,
    .size = 64,
    .window = 8,
    .concurrency = 256,
    .ack = ACK_ALL,
    .start_rate = 1000,
    .min_rate = 10,
    .max_rate = 1e7,
    .step = 3,
    .p99_max = 50,
    .max_lag = 5,
    .precision = 0.05,
    .settle = 20,
    .growth = 2,
    .max_bench_cpu = 0.95,
    .max_steps = 14,
    .duration = 10,
    .warmup = 2,
    .drain = 10,
    .connect_timeout = 300,
    .hold = 3,
    .timeout = 600,
    .server_pid = 0,
    .xmode = "auto",
    .sweeps = 200,
    .gap = 0.005,
};

static const char *ack_name(int a) {
  return a == ACK_ONE ? "one" : a == ACK_PROBE ? "probe" : "all";
}

static const char *proto_name(int p) {
  return p == PROTO_IRC ? "irc" : p == PROTO_NATS ? "nats" : "line";
}

static unsigned long long parse_uint(const char *opt, const char *s,
                                     unsigned long long min,
                                     unsigned long long max) {
  char *end;
  unsigned long long v;

  if (s == NULL || *s < '0' || *s > '9')
    usage_die("%s needs a number", opt);
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    usage_die("invalid value '%s' for %s (%llu..%llu)", s, opt, min, max);
  return v;
}

static double parse_secs(const char *opt, const char *s, double min) {
  char *end;
  double v;

  if (s == NULL || *s == '\0')
    usage_die("%s needs a number", opt);
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !(v >= min) || v > 1e7)
    usage_die("invalid value '%s' for %s", s, opt);
  return v;
}

static uint32_t parse_ip4(const char *opt, const char *s) {
  struct sockaddr_in sa;

  if (uv_ip4_addr(s, 0, &sa) != 0)
    usage_die("%s: '%s' is not an IPv4 address", opt, s);
  return ntohl(sa.sin_addr.s_addr);
}

static void parse_src_ips(const char *s) {
  char first[64];
  const char *dash = strchr(s, '-');
  size_t n = dash ? (size_t)(dash - s) : strlen(s);
  uint32_t a, b;

  if (n == 0 || n >= sizeof(first))
    usage_die("--src-ips: expected A-B, e.g. 127.0.0.1-127.0.0.50");
  memcpy(first, s, n);
  first[n] = '\0';
  a = parse_ip4("--src-ips", first);
  b = dash ? parse_ip4("--src-ips", dash + 1) : a;
  if (b < a || b - a > 65535)
    usage_die("--src-ips: bad range '%s'", s);
  cfg.src_first = a;
  cfg.src_count = b - a + 1;
}

/* "--name VALUE" or "--name=VALUE". */
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  const char *a = argv[*i];

  if (strncmp(a, name, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] != '\0')
    return NULL;
  if (*i + 1 >= argc)
    usage_die("%s needs a value", name);
  return argv[++*i];
}

static void parse_args(int argc, char **argv) {
  const char *v;
  int window_set = 0, size_set = 0;

  if (argc < 2)
    usage_die("missing mode");
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(usage_text, stdout);
    exit(0);
  }
  if (strcmp(argv[1], "fanout") == 0)
    cfg.mode = MODE_FANOUT;
  else if (strcmp(argv[1], "idle") == 0)
    cfg.mode = MODE_IDLE;
  else if (strcmp(argv[1], "transfer") == 0)
    cfg.mode = MODE_TRANSFER;
  else if (strcmp(argv[1], "floor") == 0)
    cfg.mode = MODE_FLOOR;
  else if (strcmp(argv[1], "capacity") == 0)
    cfg.mode = MODE_CAPACITY;
  else
    usage_die("unknown mode '%s'", argv[1]);

  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      exit(0);
    }
    if (strcmp(a, "--keep") == 0) {
      cfg.keep = 1;
    } else if (strcmp(a, "--no-join") == 0) {
      cfg.no_join = 1;
    } else if ((v = opt_value(argc, argv, &i, "--host")) != NULL) {
      cfg.host = v;
    } else if ((v = opt_value(argc, argv, &i, "--port")) != NULL) {
      cfg.port = (int)parse_uint("--port", v, 1, 65535);
    } else if ((v = opt_value(argc, argv, &i, "--proto")) != NULL) {
      if (strcmp(v, "line") == 0)
        cfg.proto = PROTO_LINE;
      else if (strcmp(v, "irc") == 0)
        cfg.proto = PROTO_IRC;
      else if (strcmp(v, "nats") == 0)
        cfg.proto = PROTO_NATS;
      else
        usage_die("--proto must be line, irc or nats");
    } else if ((v = opt_value(argc, argv, &i, "--clients")) != NULL) {
      cfg.clients = (uint32_t)parse_uint("--clients", v, 1, 1000000);
    } else if ((v = opt_value(argc, argv, &i, "--senders")) != NULL) {
      cfg.senders = (uint32_t)parse_uint("--senders", v, 1, 100000);
    } else if ((v = opt_value(argc, argv, &i, "--size")) != NULL) {
      cfg.size = (uint32_t)parse_uint("--size", v, 1, MAX_SIZE);
      size_set = 1;
    } else if ((v = opt_value(argc, argv, &i, "--sweeps")) != NULL) {
      cfg.sweeps = (uint32_t)parse_uint("--sweeps", v, 1, 1000000);
    } else if ((v = opt_value(argc, argv, &i, "--gap")) != NULL) {
      cfg.gap = parse_secs("--gap", v, 0);
    } else if ((v = opt_value(argc, argv, &i, "--window")) != NULL) {
      cfg.window = (uint32_t)parse_uint("--window", v, 1, 1000000);
      window_set = 1;
    } else if ((v = opt_value(argc, argv, &i, "--rate")) != NULL) {
      cfg.rate = parse_secs("--rate", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--ack")) != NULL) {
      if (strcmp(v, "all") == 0)
        cfg.ack = ACK_ALL;
      else if (strcmp(v, "one") == 0)
        cfg.ack = ACK_ONE;
      else if (strcmp(v, "probe") == 0)
        cfg.ack = ACK_PROBE;
      else
        usage_die("--ack must be all, one or probe");
    } else if (strcmp(a, "--quickack") == 0) {
#ifdef TCP_QUICKACK
      cfg.quickack = 1;
#else
      usage_die("--quickack: TCP_QUICKACK is not available here");
#endif
    } else if (strcmp(a, "--arrival") == 0) {
#ifdef SO_TIMESTAMPNS
      cfg.arrival = 1;
#else
      usage_die("--arrival: SO_TIMESTAMPNS is not available here");
#endif
    } else if ((v = opt_value(argc, argv, &i, "--start-rate")) != NULL) {
      cfg.start_rate = parse_secs("--start-rate", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--min-rate")) != NULL) {
      cfg.min_rate = parse_secs("--min-rate", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--max-rate")) != NULL) {
      cfg.max_rate = parse_secs("--max-rate", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--step")) != NULL) {
      cfg.step = parse_secs("--step", v, 0.1);
    } else if ((v = opt_value(argc, argv, &i, "--p99-max")) != NULL) {
      cfg.p99_max = parse_secs("--p99-max", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--max-lag")) != NULL) {
      cfg.max_lag = parse_secs("--max-lag", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--precision")) != NULL) {
      cfg.precision = parse_secs("--precision", v, 0.001);
    } else if ((v = opt_value(argc, argv, &i, "--max-bench-cpu")) != NULL) {
      cfg.max_bench_cpu = parse_secs("--max-bench-cpu", v, 0.01);
    } else if ((v = opt_value(argc, argv, &i, "--growth")) != NULL) {
      cfg.growth = parse_secs("--growth", v, 1.01);
    } else if ((v = opt_value(argc, argv, &i, "--settle")) != NULL) {
      cfg.settle = parse_secs("--settle", v, 0);
    } else if ((v = opt_value(argc, argv, &i, "--max-steps")) != NULL) {
      cfg.max_steps = (uint32_t)parse_uint("--max-steps", v, 1, 1000);
    } else if ((v = opt_value(argc, argv, &i, "--duration")) != NULL) {
      cfg.duration = parse_secs("--duration", v, 0.1);
    } else if ((v = opt_value(argc, argv, &i, "--warmup")) != NULL) {
      cfg.warmup = parse_secs("--warmup", v, 0);
    } else if ((v = opt_value(argc, argv, &i, "--drain")) != NULL) {
      cfg.drain = parse_secs("--drain", v, 0.1);
      cfg.drain_set = 1;
    } else if ((v = opt_value(argc, argv, &i, "--connect-timeout")) != NULL) {
      cfg.connect_timeout = parse_secs("--connect-timeout", v, 0.1);
    } else if ((v = opt_value(argc, argv, &i, "--hold")) != NULL) {
      cfg.hold = parse_secs("--hold", v, 0);
    } else if ((v = opt_value(argc, argv, &i, "--timeout")) != NULL) {
      cfg.timeout = parse_secs("--timeout", v, 1);
    } else if ((v = opt_value(argc, argv, &i, "--concurrency")) != NULL) {
      cfg.concurrency = (uint32_t)parse_uint("--concurrency", v, 1, 1000000);
    } else if ((v = opt_value(argc, argv, &i, "--json")) != NULL) {
      cfg.json = v;
    } else if ((v = opt_value(argc, argv, &i, "--src-ips")) != NULL) {
      parse_src_ips(v);
    } else if ((v = opt_value(argc, argv, &i, "--server-pid")) != NULL) {
      cfg.server_pid = (long)parse_uint("--server-pid", v, 1, 1u << 30);
    } else if ((v = opt_value(argc, argv, &i, "--file")) != NULL) {
      cfg.file = v;
    } else if ((v = opt_value(argc, argv, &i, "--mode")) != NULL) {
      if (strcmp(v, "direct") != 0 && strcmp(v, "relay") != 0 &&
          strcmp(v, "auto") != 0)
        usage_die("--mode must be direct, relay or auto");
      cfg.xmode = v;
    } else if ((v = opt_value(argc, argv, &i, "--client")) != NULL) {
      cfg.client_path = v;
    } else if ((v = opt_value(argc, argv, &i, "--downloads")) != NULL) {
      cfg.downloads = v;
    } else {
      usage_die("unknown argument '%s'", a);
    }
  }
  if (size_set && cfg.size < MIN_SIZE && cfg.mode != MODE_FLOOR)
    usage_die("--size must be at least %d for payloads", MIN_SIZE);
  if (cfg.port < 0 && cfg.mode != MODE_FLOOR)
    usage_die("--port is required");
  if (cfg.mode == MODE_FANOUT || cfg.mode == MODE_CAPACITY) {
    if (cfg.senders >= cfg.clients)
      usage_die("--senders (%" PRIu32 ") must be less than --clients (%" PRIu32
                ")",
                cfg.senders, cfg.clients);
    if (cfg.rate > 0 && window_set)
      usage_die("--window and --rate exclude each other");
  }
  if (cfg.mode == MODE_CAPACITY) {
    if (window_set || cfg.rate > 0)
      usage_die("capacity is open loop: it picks the rates (--start-rate, "
                "--min-rate, --max-rate), not --window or --rate");
    if (cfg.min_rate > cfg.max_rate)
      usage_die("--min-rate exceeds --max-rate");
    if (cfg.start_rate < cfg.min_rate)
      cfg.start_rate = cfg.min_rate;
    if (cfg.start_rate > cfg.max_rate)
      cfg.start_rate = cfg.max_rate;
    if (!cfg.drain_set)
      cfg.drain = 2;
    cfg.warmup = 0;
    cfg.duration = cfg.step;
  }
  if (cfg.quickack && cfg.mode != MODE_FANOUT && cfg.mode != MODE_CAPACITY)
    usage_die("--quickack is for fanout and capacity");
  if (cfg.arrival && cfg.mode != MODE_FANOUT)
    usage_die("--arrival is for fanout");
  if (cfg.no_join && (cfg.mode != MODE_IDLE || cfg.proto != PROTO_IRC))
    usage_die("--no-join is for idle IRC clients only");
  if (cfg.mode == MODE_TRANSFER) {
    if (cfg.file == NULL)
      usage_die("transfer needs --file");
    if (cfg.client_path == NULL)
      usage_die("transfer needs --client PATH-TO-chat-client");
  }
}

/* ------------------------------------------------------------------ */
/* shared helpers */

static uv_loop_t *loop;

/* VmRSS of pid in KiB, or -1. */
static long read_rss_kib(long pid) {
  char path[64], line[256];
  FILE *f;
  long kib = -1;

  if (pid <= 0)
    return -1;
  snprintf(path, sizeof(path), "/proc/%ld/status", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib;
}

/* CPU seconds (user + system) used so far by pid, or -1. */
static double read_cpu_s(long pid) {
  char path[64], buf[1024], *p;
  unsigned long long ut, st;
  FILE *f;
  size_t n;

  if (pid <= 0)
    return -1;
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy and total jiffies of the whole machine (all cores). */
static void read_machine(double *busy, double *total) {
  unsigned long long v[10] = {0};
  FILE *f = fopen("/proc/stat", "r");

  *busy = *total = -1;
  if (f == NULL)
    return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
             &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    *total = *busy + (double)(v[3] + v[4]);
  }
  fclose(f);
}

static double self_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return -1;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(uint32_t need) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 64)
    die("%" PRIu32 " clients need %" PRIu32
        " file descriptors but the limit is %llu (raise ulimit -n)",
        need, need + 64, (unsigned long long)rl.rlim_cur);
}

static void resolve_host(struct sockaddr_storage *out) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  char port[16];
  int rc;

  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(cfg.host, cfg.port, s4) == 0)
    return;
  if (uv_ip6_addr(cfg.host, cfg.port, s6) == 0)
    return;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof(port), "%d", cfg.port);
  rc = uv_getaddrinfo(loop, &req, NULL, cfg.host, port, &hints);
  if (rc != 0)
    die("cannot resolve '%s': %s", cfg.host, uv_strerror(rc));
  memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
}

/* ------------------------------------------------------------------ */
/* clients (fanout and idle) */

enum { C_IDLE, C_CONNECTING, C_REGISTERING, C_JOINING, C_READY, C_CLOSED };

typedef struct client {
  uv_tcp_t tcp;
  uv_poll_t poll; /* --arrival: reads with recvmsg on a dup of the socket */
  int pfd;        /* that dup, or -1 */
  char *part;     /* partial line between reads, or NULL */
  uint32_t plen, pcap;
  uint32_t id;
  uint8_t state;
} client_t;

typedef struct {
  uint64_t seq;
  uint32_t left; /* receivers still to get it; 0 = slot free */
} slot_t;

typedef struct {
  client_t *c;
  uint64_t seq;      /* next sequence number */
  uint32_t inflight; /* window mode */
  slot_t *slots;     /* window mode with --ack all */
  uint64_t rate_sent;
  uint64_t rate_skipped; /* rate mode: messages not sent (socket backed up) */
  uint64_t rate_behind; /* rate mode: not sent, chat-bench fell > 1000 behind */
} sender_t;

enum {
  PH_CONNECT,
  PH_WARMUP,
  PH_MEASURE,
  PH_DRAIN,
  PH_SETTLE,
  PH_HOLD,
  PH_DONE
};

/* capacity: one step of the search */
enum { V_PASS, V_SERVER, V_GENERATOR };

typedef struct {
  double rate; /* total msgs/s */
  double secs;
  uint64_t offered, sent, expected, delivered, skipped, behind;
  double deliveries_per_s;
  double p50, p99, p999, maxv;      /* delivery latency, us */
  double lag_p50, lag_p99, lag_max; /* generator behind schedule, us */
  double bench_cpu, server_cpu, machine;
  uint32_t disconnects;
  int verdict;
  int gen_over; /* the generator was over one of its bounds */
  char why[192];
} step_t;

static struct {
  client_t *clients;
  sender_t *senders;
  struct sockaddr_storage addr;
  char tag[4]; /* run tag in names, so back-to-back runs never collide */
  uint32_t next_to_start, in_progress, ready, disconnects;
  int phase;
  uint64_t t_start, t_ready, t_measure0, t_measure1;
  uint64_t read_ns;    /* when the read being handled returned */
  uint64_t arrival_ns; /* --arrival: when its bytes reached the socket */
  uint64_t sent_total, sent_measured, delivered_total, delivered_measured;
  uint64_t foreign_lines; /* lines that were neither payload nor control */
  uint64_t bad_payloads;
  hist_t *hist;
  hist_t *khist; /* --arrival: latency to the kernel's receive stamp */
  hist_t *lag;   /* rate mode: how late each message left, against schedule */
  uint32_t observer; /* --ack one/probe: the client whose receipt releases */
  uint64_t t_rate0;  /* rate mode: when the schedule started */
  uint64_t next_tick_ns; /* rate mode: when sends are next due at the latest */
  /* capacity search */
  step_t *steps;
  uint32_t nsteps;
  double lo, hi;    /* highest passing rate, lowest failing rate (0: none) */
  int hi_generator; /* the lowest failing rate was the generator's limit */
  uint64_t settle_last;
  uint32_t settle_quiet, settle_polls;
  double cap_rate, cap_next;
  uint32_t best, step_disc0;
  const char *cap_bound;
  uv_timer_t phase_timer, tick_timer, progress_timer;
  uv_check_t flush_check;
  char *msgbuf; /* scratch for building one sender's batch */
  size_t msgbuf_cap, msg_max;
  long rss_before, rss_ready, rss_hold;
  double cpu_self0, cpu_self1, cpu_srv0, cpu_srv1;
  double mach_busy0, mach_busy1, mach_total0, mach_total1;
  int exit_code;
} g;

typedef struct {
  uv_write_t req;
  char data[];
} wreq_t;

static void on_write(uv_write_t *req, int status) {
  client_t *c = req->handle->data;
  if (status < 0 && status != UV_ECANCELED && c->state != C_CLOSED &&
      g.phase != PH_DONE)
    fprintf(stderr, "chat-bench: client %" PRIu32 ": write: %s\n", c->id,
            uv_strerror(status));
  free(req);
}

static void send_bytes(client_t *c, const char *data, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  wreq_t *w;
  int rc;

  if (c->state == C_CLOSED)
    return;
  rc = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (rc == (int)len)
    return;
  if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS)
    return; /* the read side reports the failure */
  if (rc > 0) {
    data += rc;
    len -= (size_t)rc;
  }
  w = xmalloc(sizeof(*w) + len);
  memcpy(w->data, data, len);
  buf = uv_buf_init(w->data, (unsigned)len);
  rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (rc != 0) {
    free(w);
    fprintf(stderr, "chat-bench: client %" PRIu32 ": write: %s\n", c->id,
            uv_strerror(rc));
  }
}

static void send_str(client_t *c, const char *s) {
  send_bytes(c, s, strlen(s));
}

static void client_name(const client_t *c, char *out, size_t n) {
  snprintf(out, n, "b%s%" PRIu32, g.tag, c->id);
}

static void on_close_free_nothing(uv_handle_t *h) {
  (void)h;
}

static void on_poll_close(uv_handle_t *h) {
  client_t *c = h->data;
  close(c->pfd);
  c->pfd = -1;
}

static void client_close(client_t *c) {
  if (c->state == C_CLOSED)
    return;
  c->state = C_CLOSED;
  free(c->part);
  c->part = NULL;
  c->plen = c->pcap = 0;
  if (c->pfd >= 0 && !uv_is_closing((uv_handle_t *)&c->poll))
    uv_close((uv_handle_t *)&c->poll, on_poll_close);
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_close_free_nothing);
}

static void all_ready(void);
static void start_more(void);
static void check_drained(void);

static int start_arrival_reads(client_t *c);

static void client_ready(client_t *c) {
  /* --ack one: the first receiver (not a sender) to be registered (IRC:
   * joined) is the observer, an early member of the room */
  if (cfg.ack == ACK_ONE && c->id >= cfg.senders && g.observer == UINT32_MAX)
    g.observer = c->id;
  c->state = C_READY;
  if (cfg.arrival) {
    int rc = start_arrival_reads(c);
    if (rc != 0)
      die("--arrival: %s", uv_strerror(rc));
  }
  g.in_progress--;
  g.ready++;
  if (g.ready == cfg.clients)
    all_ready();
  else
    start_more();
}

/* A client lost during the run: fatal before everyone registered. */
static void client_lost(client_t *c, const char *why) {
  if (c->state == C_CLOSED)
    return;
  if (c->state != C_READY || g.phase == PH_CONNECT)
    die("client %" PRIu32 " (of %" PRIu32 ", %" PRIu32 " registered): %s",
        c->id, cfg.clients, g.ready, why);
  if (g.phase != PH_DONE) {
    if (g.disconnects < 10)
      fprintf(stderr, "chat-bench: client %" PRIu32 " dropped: %s\n", c->id,
              why);
    g.disconnects++;
  }
  client_close(c);
}

/* "B<sender>.<seq>.<ns>." */
static int parse_payload(const char *p, size_t n, uint32_t *sid, uint64_t *seq,
                         uint64_t *t) {
  const char *end = p + n;
  uint64_t v[3];

  if (n < 2 || p[0] != 'B')
    return -1;
  p++;
  for (int k = 0; k < 3; k++) {
    uint64_t x = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
      x = x * 10 + (uint64_t)(*p++ - '0');
    if (p == start || p >= end || *p != '.')
      return -1;
    p++;
    v[k] = x;
  }
  if (v[0] >= cfg.senders)
    return -1;
  *sid = (uint32_t)v[0];
  *seq = v[1];
  *t = v[2];
  return 0;
}

static void on_payload(client_t *c, const char *p, size_t n) {
  uint32_t sid;
  uint64_t seq, t, now;
  sender_t *s;

  if (parse_payload(p, n, &sid, &seq, &t) != 0) {
    g.bad_payloads++;
    return;
  }
  now = g.read_ns;
  g.delivered_total++;
  if (t >= g.t_measure0 && t < g.t_measure1 && g.t_measure0 != 0) {
    g.delivered_measured++;
    hist_add(g.hist, now > t ? now - t : 0);
    if (cfg.arrival)
      hist_add(g.khist, g.arrival_ns > t ? g.arrival_ns - t : 0);
  }
  s = &g.senders[sid];
  if (cfg.rate <= 0) {
    if (cfg.ack == ACK_ALL) {
      slot_t *sl = &s->slots[seq % cfg.window];
      if (sl->seq == seq && sl->left > 0 && --sl->left == 0)
        s->inflight--;
    } else if (c->id == g.observer && s->inflight > 0) {
      s->inflight--;
    }
  }
  if (g.phase == PH_DRAIN)
    check_drained();
}

/* IRC: ":prefix CMD args" or "CMD args"; returns the command word. */
static const char *irc_command(const char *line, size_t n, size_t *cmdlen,
                               const char **rest) {
  const char *p = line, *end = line + n, *cmd;

  if (p < end && *p == ':') {
    while (p < end && *p != ' ')
      p++;
    while (p < end && *p == ' ')
      p++;
  }
  cmd = p;
  while (p < end && *p != ' ')
    p++;
  *cmdlen = (size_t)(p - cmd);
  while (p < end && *p == ' ')
    p++;
  *rest = p;
  return cmd;
}

/* Replies that end registration or the JOIN (a missing MOTD does not). */
static int irc_fatal_numeric(const char *cmd) {
  static const char *const fatal[] = {"401", "403", "405", "432", "433", "436",
                                      "437", "451", "461", "462", "464", "465",
                                      "471", "473", "474", "475", "477", "479"};
  for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
    if (memcmp(cmd, fatal[i], 3) == 0)
      return 1;
  return 0;
}

static void handle_line(client_t *c, const char *line, size_t n) {
  char buf[512];

  if (n > 0 && line[n - 1] == '\r')
    n--;
  if (n == 0)
    return;
  switch (cfg.proto) {
  case PROTO_LINE:
    if (line[0] == '*' || line[0] == '!') {
      if (c->state == C_REGISTERING) {
        if (n >= 9 && memcmp(line, "* welcome", 9) == 0) {
          client_ready(c);
          return;
        }
        if (line[0] == '!') {
          snprintf(buf, sizeof(buf), "registration refused: %.*s",
                   (int)(n > 300 ? 300 : n), line);
          client_lost(c, buf);
        }
      } else if (line[0] == '!') {
        fprintf(stderr, "chat-bench: client %" PRIu32 ": server says: %.*s\n",
                c->id, (int)(n > 300 ? 300 : n), line);
      }
      return;
    } else {
      const char *colon = memchr(line, ':', n);
      if (colon == NULL || (size_t)(colon - line) + 2 > n || colon[1] != ' ') {
        g.foreign_lines++;
        return;
      }
      on_payload(c, colon + 2, n - (size_t)(colon + 2 - line));
    }
    return;
  case PROTO_IRC: {
    size_t cl;
    const char *rest, *cmd = irc_command(line, n, &cl, &rest);
    size_t rn = n - (size_t)(rest - line);
    if (cl == 7 && memcmp(cmd, "PRIVMSG", 7) == 0) {
      const char *p = rest, *end = line + n;
      while (p < end && *p != ' ')
        p++;
      if (p + 2 <= end && p[1] == ':') {
        on_payload(c, p + 2, (size_t)(end - p - 2));
        return;
      }
      g.foreign_lines++;
      return;
    }
    if (cl == 4 && memcmp(cmd, "PING", 4) == 0) {
      snprintf(buf, sizeof(buf), "PONG %.*s\r\n", (int)(rn > 400 ? 400 : rn),
               rest);
      send_str(c, buf);
      return;
    }
    if (cl == 5 && memcmp(cmd, "ERROR", 5) == 0) {
      snprintf(buf, sizeof(buf), "server says: %.*s", (int)(n > 300 ? 300 : n),
               line);
      client_lost(c, buf);
      return;
    }
    if (cl == 3 && cmd[0] >= '0' && cmd[0] <= '9') {
      if (memcmp(cmd, "001", 3) == 0 && c->state == C_REGISTERING) {
        if (cfg.no_join) {
          client_ready(c);
          return;
        }
        c->state = C_JOINING;
        send_str(c, "JOIN #bench\r\n");
      } else if (memcmp(cmd, "366", 3) == 0 && c->state == C_JOINING) {
        client_ready(c);
      } else if (c->state != C_READY && irc_fatal_numeric(cmd)) {
        snprintf(buf, sizeof(buf), "registration refused: %.*s",
                 (int)(n > 300 ? 300 : n), line);
        client_lost(c, buf);
      }
    }
    return;
  }
  case PROTO_NATS:
    if (line[0] == 'B') {
      on_payload(c, line, n);
    } else if (n >= 4 && memcmp(line, "PING", 4) == 0) {
      send_str(c, "PONG\r\n");
    } else if (n >= 4 && memcmp(line, "PONG", 4) == 0) {
      if (c->state == C_REGISTERING)
        client_ready(c);
    } else if (n >= 4 && memcmp(line, "-ERR", 4) == 0) {
      snprintf(buf, sizeof(buf), "server says: %.*s", (int)(n > 300 ? 300 : n),
               line);
      client_lost(c, buf);
    }
    return;
  }
}

static void part_append(client_t *c, const char *p, size_t n) {
  if ((size_t)c->plen + n > MAX_LINE)
    die("client %" PRIu32 ": a line from the server exceeds %d bytes", c->id,
        MAX_LINE);
  if (c->plen + n > c->pcap) {
    size_t cap = c->pcap ? c->pcap : 256;
    while (cap < c->plen + n)
      cap *= 2;
    char *np = realloc(c->part, cap);
    if (np == NULL)
      die("out of memory");
    c->part = np;
    c->pcap = (uint32_t)cap;
  }
  memcpy(c->part + c->plen, p, n);
  c->plen += (uint32_t)n;
}

static char rbuf[64 * 1024]; /* shared: each read is handled at once */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void set_quickack(client_t *c);
static void on_tick(uv_timer_t *h);
static int sending_phase(void);

static void handle_bytes(client_t *c, const char *p, size_t nread);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = s->data;

  if (nread < 0) {
    client_lost(c, nread == UV_EOF ? "the server closed the connection"
                                   : uv_strerror((int)nread));
    return;
  }
  /* Every line of this read arrived at the same moment: one clock read per
   * read, not per line (the clock is a visible cost at 5 M lines/s). */
  g.read_ns = uv_hrtime();
  handle_bytes(c, buf->base, (size_t)nread);
}

/* --arrival: one recvmsg with the kernel's receive time stamp, which TCP
 * gives for the last segment the read took (so an earlier line in the same
 * read is charged a little more than it waited, never less). The stamp is
 * CLOCK_REALTIME; how long ago it was is subtracted from the monotonic clock
 * the payloads carry. */
static void on_poll(uv_poll_t *h, int status, int events) {
  client_t *c = h->data;
  char cbuf[CMSG_SPACE(sizeof(struct timespec)) + 64];
  struct iovec iov = {rbuf, sizeof(rbuf)};
  struct msghdr mh;
  struct cmsghdr *cm;
  struct timespec now_rt;
  ssize_t n;

  (void)events;
  if (status < 0) {
    client_lost(c, uv_strerror(status));
    return;
  }
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  do
    n = recvmsg(c->pfd, &mh, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (n <= 0) {
    client_lost(c,
                n == 0 ? "the server closed the connection" : strerror(errno));
    return;
  }
  g.read_ns = uv_hrtime();
  g.arrival_ns = g.read_ns;
  clock_gettime(CLOCK_REALTIME, &now_rt);
  for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
#ifdef SO_TIMESTAMPNS
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
      struct timespec ts;
      int64_t ago;
      memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
      ago = ((int64_t)now_rt.tv_sec - ts.tv_sec) * 1000000000 +
            (now_rt.tv_nsec - ts.tv_nsec);
      if (ago > 0 && (uint64_t)ago < g.read_ns)
        g.arrival_ns = g.read_ns - (uint64_t)ago;
    }
#endif
  }
  handle_bytes(c, rbuf, (size_t)n);
}

/* --arrival: after registration, reads move from the uv_tcp_t to a poll
 * handle on a dup of its socket (libuv's reads cannot return control
 * messages); writes stay with the uv_tcp_t. */
static int start_arrival_reads(client_t *c) {
#ifdef SO_TIMESTAMPNS
  uv_os_fd_t fd;
  int one = 1, rc;

  if ((rc = uv_fileno((uv_handle_t *)&c->tcp, &fd)) != 0)
    return rc;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0)
    return uv_translate_sys_error(errno);
  if ((c->pfd = dup(fd)) < 0)
    return uv_translate_sys_error(errno);
  uv_read_stop((uv_stream_t *)&c->tcp);
  if ((rc = uv_poll_init_socket(uv_default_loop(), &c->poll, c->pfd)) != 0) {
    close(c->pfd);
    c->pfd = -1;
    return rc;
  }
  c->poll.data = c;
  return uv_poll_start(&c->poll, UV_READABLE, on_poll);
#else
  (void)c;
  return UV_ENOTSUP;
#endif
}

static void handle_bytes(client_t *c, const char *p, size_t nread) {
  const char *end, *nl;

  if (cfg.quickack)
    set_quickack(c);
  /* Rate mode: one loop iteration can read thousands of sockets for many
   * milliseconds; keep the schedule from inside it rather than waiting for
   * the 1 ms timer to run after it. */
  if (cfg.rate > 0 && g.read_ns >= g.next_tick_ns && sending_phase())
    on_tick(&g.tick_timer);
  end = p + nread;
  if (c->plen > 0) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
      part_append(c, p, (size_t)(end - p));
      return;
    }
    size_t len;
    part_append(c, p, (size_t)(nl - p));
    len = c->plen;
    c->plen = 0; /* handle_line never appends to this client's buffer */
    handle_line(c, c->part, len);
    p = nl + 1;
  }
  while (p < end && c->state != C_CLOSED) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
      part_append(c, p, (size_t)(end - p));
      break;
    }
    handle_line(c, p, (size_t)(nl - p));
    p = nl + 1;
  }
  if (c->plen == 0 && c->pcap > 4096) { /* give big buffers back */
    free(c->part);
    c->part = NULL;
    c->pcap = 0;
  }
}

/* TCP_QUICKACK is cleared by the kernel again (e.g. when it sees the
 * connection as interactive), so it is re-armed after every read. */
static void set_quickack(client_t *c) {
#ifdef TCP_QUICKACK
  uv_os_fd_t fd;
  int one = 1;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
  (void)c;
#endif
}

static void on_connect(uv_connect_t *req, int status) {
  client_t *c = req->handle->data;
  char name[48], buf[256];
  int rc;

  free(req);
  if (status < 0) {
    snprintf(buf, sizeof(buf), "connect: %s", uv_strerror(status));
    client_lost(c, buf);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (cfg.quickack)
    set_quickack(c);
  rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc != 0) {
    snprintf(buf, sizeof(buf), "read: %s", uv_strerror(rc));
    client_lost(c, buf);
    return;
  }
  c->state = C_REGISTERING;
  client_name(c, name, sizeof(name));
  switch (cfg.proto) {
  case PROTO_LINE:
    snprintf(buf, sizeof(buf), "%s\n", name);
    break;
  case PROTO_IRC:
    snprintf(buf, sizeof(buf), "NICK %s\r\nUSER %s 0 * :chat-bench\r\n", name,
             name);
    break;
  default:
    snprintf(buf, sizeof(buf),
             "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,"
             "\"name\":\"%s\"}\r\nSUB bench 1\r\nPING\r\n",
             name);
    break;
  }
  send_str(c, buf);
}

static void start_client(client_t *c) {
  uv_connect_t *req;
  char buf[128];
  int rc;

  rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0)
    die("uv_tcp_init: %s", uv_strerror(rc));
  c->tcp.data = c;
  c->pfd = -1;
  c->state = C_CONNECTING;
  if (cfg.src_count > 0) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(cfg.src_first + c->id % cfg.src_count);
    rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&sa, 0);
    if (rc != 0) {
      snprintf(buf, sizeof(buf), "bind to source address: %s", uv_strerror(rc));
      client_lost(c, buf);
      return;
    }
  }
  req = xmalloc(sizeof(*req));
  rc = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&g.addr,
                      on_connect);
  if (rc != 0) {
    free(req);
    snprintf(buf, sizeof(buf), "connect: %s", uv_strerror(rc));
    client_lost(c, buf);
  }
}

static void start_more(void) {
  while (g.in_progress < cfg.concurrency && g.next_to_start < cfg.clients) {
    g.in_progress++;
    start_client(&g.clients[g.next_to_start++]);
  }
}

/* ------------------------------------------------------------------ */
/* sending */

static size_t build_msg(char *out, uint32_t sid, uint64_t seq, uint64_t t) {
  char *p = out;
  int n;

  if (cfg.proto == PROTO_IRC) {
    memcpy(p, "PRIVMSG #bench :", 16);
    p += 16;
  } else if (cfg.proto == PROTO_NATS) {
    p += sprintf(p, "PUB bench %" PRIu32 "\r\n", cfg.size);
  }
  n = sprintf(p, "B%" PRIu32 ".%" PRIu64 ".%" PRIu64 ".", sid, seq, t);
  if ((uint32_t)n < cfg.size)
    memset(p + n, 'x', cfg.size - (uint32_t)n);
  p += cfg.size;
  if (cfg.proto == PROTO_LINE) {
    *p++ = '\n';
  } else {
    *p++ = '\r';
    *p++ = '\n';
  }
  return (size_t)(p - out);
}

/* Sends up to k messages from sender i in one write. */
static void send_batch(uint32_t i, uint32_t k) {
  sender_t *s = &g.senders[i];
  size_t need = (size_t)k * g.msg_max, len = 0;
  uint64_t t = uv_hrtime();
  uint32_t sent = 0;

  if (k == 0 || s->c->state != C_READY)
    return;
  if (need > g.msgbuf_cap) {
    free(g.msgbuf);
    g.msgbuf = xmalloc(need);
    g.msgbuf_cap = need;
  }
  for (; sent < k; sent++) {
    if (cfg.rate <= 0) {
      if (cfg.ack == ACK_ALL) {
        slot_t *sl = &s->slots[s->seq % cfg.window];
        if (sl->left > 0)
          break; /* an older message there is still undelivered */
        sl->seq = s->seq;
        sl->left = cfg.clients - 1;
      }
      s->inflight++;
    }
    len += build_msg(g.msgbuf + len, i, s->seq, t);
    s->seq++;
  }
  g.sent_total += sent;
  if (g.phase == PH_MEASURE)
    g.sent_measured += sent;
  send_bytes(s->c, g.msgbuf, len);
}

static int sending_phase(void) {
  return g.phase == PH_WARMUP || g.phase == PH_MEASURE;
}

/* After each loop iteration's reads: refill every sender's window. */
static void on_flush_check(uv_check_t *h) {
  (void)h;
  if (!sending_phase() || cfg.rate > 0)
    return;
  for (uint32_t i = 0; i < cfg.senders; i++) {
    sender_t *s = &g.senders[i];
    if (s->inflight < cfg.window)
      send_batch(i, cfg.window - s->inflight);
  }
}

/* Rate mode: every millisecond, send what is due. */
static void on_tick(uv_timer_t *h) {
  uint64_t now = uv_hrtime();
  (void)h;
  if (!sending_phase())
    return;
  g.next_tick_ns = now + 1000000;
  for (uint32_t i = 0; i < cfg.senders; i++) {
    sender_t *s = &g.senders[i];
    double phase = (double)i / ((double)cfg.senders * cfg.rate);
    double elapsed = (double)(now - g.t_rate0) / 1e9 - phase;
    if (elapsed < 0)
      continue;
    uint64_t due = (uint64_t)(elapsed * cfg.rate) + 1;
    if (due <= s->rate_sent)
      continue;
    uint64_t k = due - s->rate_sent, first = s->rate_sent;
    s->rate_sent = due;
    if (s->c->tcp.write_queue_size > (size_t)1 << 20) {
      s->rate_skipped += k; /* the server is not reading fast enough */
      continue;
    }
    if (k > 1000) {
      s->rate_behind += k - 1000;
      first += k - 1000;
      k = 1000;
    }
    if (g.phase == PH_MEASURE) {
      /* message m was due at t_rate0 + phase + m / rate */
      for (uint64_t m = first; m < first + k; m++) {
        double due_s = phase + (double)m / cfg.rate;
        double late = (double)(now - g.t_rate0) - due_s * 1e9;
        hist_add(g.lag, late > 0 ? (uint64_t)late : 0);
      }
    }
    send_batch(i, (uint32_t)k);
  }
}

/* ------------------------------------------------------------------ */
/* phases and report */

static void finish(void);

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(f, "\\u%04x", (unsigned char)*s);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

static FILE *open_json(void) {
  FILE *f;
  if (cfg.json == NULL)
    return NULL;
  f = fopen(cfg.json, "w");
  if (f == NULL)
    die("cannot write %s: %s", cfg.json, strerror(errno));
  return f;
}

static void close_json(FILE *f) {
  if (f == NULL)
    return;
  if (fclose(f) != 0)
    die("cannot write %s: %s", cfg.json, strerror(errno));
}

static void report_fanout(void) {
  double dur = (double)(g.t_measure1 - g.t_measure0) / 1e9;
  double conn = (double)(g.t_ready - g.t_start) / 1e9;
  uint64_t expected = g.sent_measured * (uint64_t)(cfg.clients - 1);
  double ratio =
      expected ? (double)g.delivered_measured / (double)expected : 0.0;
  double p50 = hist_quantile(g.hist, 0.50), p90 = hist_quantile(g.hist, 0.90),
         p99 = hist_quantile(g.hist, 0.99), p999 = hist_quantile(g.hist, 0.999);
  double maxv = (double)g.hist->max_ns / 1000.0;
  double mean = g.hist->total
                    ? (double)g.hist->sum_ns / 1000.0 / (double)g.hist->total
                    : 0.0;
  uint64_t skipped = 0;
  double lag50 = hist_quantile(g.lag, 0.50), lag99 = hist_quantile(g.lag, 0.99);
  double lagmax = (double)g.lag->max_ns / 1000.0;
  double bench_cpu = (g.cpu_self1 - g.cpu_self0) / dur;
  double srv_cpu =
      g.cpu_srv0 >= 0 && g.cpu_srv1 >= 0 ? (g.cpu_srv1 - g.cpu_srv0) / dur : -1;
  /* cores busy machine-wide; what is not ours is other processes' load */
  double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
  double mach = g.mach_total1 > g.mach_total0
                    ? cores * (g.mach_busy1 - g.mach_busy0) /
                          (g.mach_total1 - g.mach_total0)
                    : -1;
  int ok;
  FILE *f;

  for (uint32_t i = 0; i < cfg.senders; i++)
    skipped += g.senders[i].rate_skipped + g.senders[i].rate_behind;
  ok = g.disconnects == 0 && expected > 0 && g.delivered_measured == expected;
  if (!ok)
    g.exit_code = 3;

  printf("chat-bench fanout: %s %s:%d, %" PRIu32 " clients, %" PRIu32
         " senders, %" PRIu32 "-byte payloads, ",
         proto_name(cfg.proto), cfg.host, cfg.port, cfg.clients, cfg.senders,
         cfg.size);
  if (cfg.rate > 0)
    printf("rate %.1f msgs/s per sender\n", cfg.rate);
  else
    printf("window %" PRIu32 " (ack %s)\n", cfg.window, ack_name(cfg.ack));
  if (cfg.rate <= 0 && cfg.ack != ACK_ALL)
    printf("  observer          client %" PRIu32 "\n", g.observer);
  if (cfg.quickack)
    printf("  quickack          on (re-armed after every read)\n");
  printf("  connect+register  %" PRIu32 " clients in %.2f s (%.0f/s)\n",
         cfg.clients, conn, conn > 0 ? cfg.clients / conn : 0.0);
  printf("  measured          %.2f s after %.2f s warmup\n", dur, cfg.warmup);
  printf("  sent              %" PRIu64 " msgs (%.1f msgs/s)%s\n",
         g.sent_measured, g.sent_measured / dur,
         skipped ? " [rate not kept up]" : "");
  printf("  delivered         %" PRIu64 " of %" PRIu64
         " expected (ratio %.6f, lost %" PRId64 ")\n",
         g.delivered_measured, expected, ratio,
         (int64_t)expected - (int64_t)g.delivered_measured);
  printf("  deliveries/s      %.1f\n", g.delivered_measured / dur);
  if (cfg.rate > 0)
    printf("  generator lag us  p50 %.0f  p99 %.0f  max %.0f (behind its "
           "schedule)\n",
           lag50, lag99, lagmax);
  printf("  latency us        p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  "
         "max %.0f  mean %.0f\n",
         p50, p90, p99, p999, maxv, mean);
  if (cfg.arrival)
    printf("  arrival us        p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  "
           "max %.0f (to the kernel's receive stamp)\n",
           hist_quantile(g.khist, 0.50), hist_quantile(g.khist, 0.90),
           hist_quantile(g.khist, 0.99), hist_quantile(g.khist, 0.999),
           (double)g.khist->max_ns / 1000.0);
  printf("  cpu               chat-bench %.0f%%", bench_cpu * 100);
  if (srv_cpu >= 0)
    printf(", server %.0f%%", srv_cpu * 100);
  printf(" of one core");
  if (mach >= 0)
    printf("; machine %.2f of %.0f cores busy", mach, cores);
  printf("\n");
  if (g.disconnects || g.bad_payloads || skipped)
    printf("  problems          %" PRIu32 " clients dropped, %" PRIu64
           " unparsable payloads, %" PRIu64 " messages skipped\n",
           g.disconnects, g.bad_payloads, skipped);
  printf("  result            %s\n", ok ? "ok" : "LOSS OR DROPS");

  f = open_json();
  if (f != NULL) {
    fprintf(f, "{\"mode\":\"fanout\",\"proto\":");
    json_str(f, proto_name(cfg.proto));
    fprintf(f, ",\"host\":");
    json_str(f, cfg.host);
    fprintf(
        f,
        ",\"port\":%d,\"clients\":%" PRIu32 ",\"senders\":%" PRIu32
        ",\"size\":%" PRIu32 ",\"window\":%" PRIu32
        ",\"rate\":%.3f,\"ack\":\"%s\",\"duration_s\":%.6f,"
        "\"warmup_s\":%.3f,\"connect_s\":%.6f,\"sent\":%" PRIu64
        ",\"sent_per_s\":%.3f,\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64
        ",\"deliveries_per_s\":%.3f,"
        "\"delivery_ratio\":%.9g,\"lost\":%" PRId64 ",\"disconnects\":%" PRIu32
        ",\"bad_payloads\":%" PRIu64 ",\"foreign_lines\":%" PRIu64
        ",\"rate_skipped\":%" PRIu64 ",\"bench_cpu\":%.3f,\"server_cpu\":%.3f"
        ",\"machine_busy_cores\":%.3f"
        ",\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
        "\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"count\":%" PRIu64
        "},\"observer\":%" PRId64 ",\"quickack\":%s"
        ",\"lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
        cfg.port, cfg.clients, cfg.senders, cfg.size,
        cfg.rate > 0 ? 0 : cfg.window, cfg.rate, ack_name(cfg.ack), dur,
        cfg.warmup, conn, g.sent_measured, g.sent_measured / dur, expected,
        g.delivered_measured, g.delivered_measured / dur, ratio,
        (int64_t)expected - (int64_t)g.delivered_measured, g.disconnects,
        g.bad_payloads, g.foreign_lines, skipped, bench_cpu, srv_cpu, mach, p50,
        p90, p99, p999, maxv, mean, g.hist->total,
        cfg.rate <= 0 && cfg.ack != ACK_ALL ? (int64_t)g.observer : (int64_t)-1,
        cfg.quickack ? "true" : "false", lag50, lag99, lagmax);
    if (cfg.arrival)
      fprintf(f,
              ",\"arrival_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
              "\"p999\":%.1f,\"max\":%.1f}",
              hist_quantile(g.khist, 0.50), hist_quantile(g.khist, 0.90),
              hist_quantile(g.khist, 0.99), hist_quantile(g.khist, 0.999),
              (double)g.khist->max_ns / 1000.0);
    fprintf(f, ",\"ok\":%s}\n", ok ? "true" : "false");
    close_json(f);
  }
}

static void report_idle(void) {
  double conn = (double)(g.t_ready - g.t_start) / 1e9;
  long after = g.rss_hold > 0 ? g.rss_hold : g.rss_ready;
  double per = -1;
  FILE *f;

  if (g.disconnects)
    g.exit_code = 3;
  if (g.rss_before > 0 && after > 0)
    per = (double)(after - g.rss_before) * 1024.0 / cfg.clients;
  printf("chat-bench idle: %s %s:%d, %" PRIu32 " clients\n",
         proto_name(cfg.proto), cfg.host, cfg.port, cfg.clients);
  printf("  connect+register  %.2f s (%.0f clients/s)\n", conn,
         conn > 0 ? cfg.clients / conn : 0.0);
  if (cfg.proto == PROTO_IRC)
    printf("  irc clients       %s\n",
           cfg.no_join ? "registered only (no JOIN)" : "joined #bench");
  if (cfg.server_pid > 0)
    printf("  server VmRSS      before %ld KiB, all registered %ld KiB, "
           "after %.1f s hold %ld KiB\n"
           "  RSS per client    %.0f bytes\n",
           g.rss_before, g.rss_ready, cfg.hold, g.rss_hold, per);
  if (g.disconnects)
    printf("  problems          %" PRIu32 " clients dropped\n", g.disconnects);
  f = open_json();
  if (f != NULL) {
    fprintf(f, "{\"mode\":\"idle\",\"proto\":");
    json_str(f, proto_name(cfg.proto));
    fprintf(
        f,
        ",\"port\":%d,\"clients\":%" PRIu32
        ",\"connect_s\":%.6f,\"connects_per_s\":%.1f,"
        "\"server_pid\":%ld,\"rss_before_kib\":%ld,\"rss_ready_kib\":%ld,"
        "\"rss_hold_kib\":%ld,\"hold_s\":%.3f,\"rss_per_client_bytes\":%.1f,"
        "\"joined\":%s,\"disconnects\":%" PRIu32 ",\"ok\":%s}\n",
        cfg.port, cfg.clients, conn, conn > 0 ? cfg.clients / conn : 0.0,
        cfg.server_pid, g.rss_before, g.rss_ready, g.rss_hold, cfg.hold, per,
        cfg.no_join ? "false" : "true", g.disconnects,
        g.disconnects ? "false" : "true");
    close_json(f);
  }
}

static void report_capacity(void);
static void cap_step_done(void);
static void cap_start_step(double rate);

static void finish(void) {
  g.phase = PH_DONE;
  uv_timer_stop(&g.phase_timer);
  uv_timer_stop(&g.tick_timer);
  uv_timer_stop(&g.progress_timer);
  uv_check_stop(&g.flush_check);
  if (cfg.mode == MODE_FANOUT)
    report_fanout();
  else if (cfg.mode == MODE_CAPACITY)
    report_capacity();
  else
    report_idle();
  fflush(stdout);
  /* The kernel closes the sockets; closing 10k handles one by one first
   * would only slow the exit down. */
  exit(g.exit_code);
}

static void check_drained(void) {
  if (g.delivered_measured >= g.sent_measured * (uint64_t)(cfg.clients - 1)) {
    if (cfg.mode == MODE_CAPACITY)
      cap_step_done();
    else
      finish();
  }
}

static void measure_begin(void) {
  g.cpu_self0 = self_cpu_s();
  g.cpu_srv0 = read_cpu_s(cfg.server_pid);
  read_machine(&g.mach_busy0, &g.mach_total0);
  g.t_measure0 = uv_hrtime();
  g.phase = PH_MEASURE;
}

static void on_phase_timer(uv_timer_t *h) {
  (void)h;
  switch (g.phase) {
  case PH_CONNECT:
    die("only %" PRIu32 " of %" PRIu32
        " clients registered within --connect-timeout %.0f s",
        g.ready, cfg.clients, cfg.connect_timeout);
  case PH_WARMUP:
    measure_begin();
    uv_timer_start(&g.phase_timer, on_phase_timer,
                   (uint64_t)(cfg.duration * 1000), 0);
    break;
  case PH_MEASURE:
    g.t_measure1 = uv_hrtime();
    g.cpu_self1 = self_cpu_s();
    g.cpu_srv1 = read_cpu_s(cfg.server_pid);
    read_machine(&g.mach_busy1, &g.mach_total1);
    g.phase = PH_DRAIN;
    uv_timer_start(&g.phase_timer, on_phase_timer, (uint64_t)(cfg.drain * 1000),
                   0);
    check_drained();
    break;
  case PH_DRAIN:
    if (cfg.mode == MODE_CAPACITY) {
      cap_step_done();
      break;
    }
    fprintf(stderr,
            "chat-bench: drain timeout: %" PRIu64
            " deliveries missing after %.1f s\n",
            g.sent_measured * (uint64_t)(cfg.clients - 1) -
                g.delivered_measured,
            cfg.drain);
    finish();
    break;
  case PH_HOLD:
    g.rss_hold = read_rss_kib(cfg.server_pid);
    finish();
    break;
  default:
    break;
  }
}

static void on_progress(uv_timer_t *h) {
  (void)h;
  if (g.phase == PH_CONNECT)
    fprintf(stderr, "chat-bench: %" PRIu32 "/%" PRIu32 " clients registered\n",
            g.ready, cfg.clients);
}

/* ------------------------------------------------------------------ */
/* capacity: open-loop bisection over the total message rate */

static const char *const verdict_name[] = {"pass", "server", "generator"};

static void cap_start_step(double rate) {
  g.cap_rate = rate;
  cfg.rate = rate / cfg.senders;
  g.sent_measured = g.delivered_measured = 0;
  memset(g.hist, 0, sizeof(*g.hist));
  memset(g.lag, 0, sizeof(*g.lag));
  g.t_measure1 = UINT64_MAX;
  g.step_disc0 = g.disconnects;
  for (uint32_t i = 0; i < cfg.senders; i++) {
    g.senders[i].rate_sent = 0;
    g.senders[i].rate_skipped = 0;
    g.senders[i].rate_behind = 0;
  }
  measure_begin();
  g.t_rate0 = g.t_measure0;
  uv_timer_start(&g.phase_timer, on_phase_timer, (uint64_t)(cfg.step * 1000),
                 0);
  uv_timer_start(&g.tick_timer, on_tick, 1, 1);
  on_tick(&g.tick_timer);
}

static uint64_t all_expected(void) {
  return g.sent_total * (uint64_t)(cfg.clients - 1);
}

/* After a failed step: wait until its backlog has reached the clients (all
 * delivered, or nothing arrived for 300 ms), so that it does not load the
 * next step. */
static void on_settle(uv_timer_t *h) {
  (void)h;
  g.settle_polls++;
  if (g.delivered_total == g.settle_last)
    g.settle_quiet++;
  else
    g.settle_quiet = 0;
  g.settle_last = g.delivered_total;
  if (g.delivered_total >= all_expected() || g.settle_quiet >= 3 ||
      g.settle_polls >= (uint32_t)(cfg.settle * 10)) {
    uv_timer_stop(&g.phase_timer);
    cap_start_step(g.cap_next);
  }
}

static void cap_stop(const char *bound) {
  g.cap_bound = bound;
  finish();
}

static void cap_step_done(void) {
  step_t *st = &g.steps[g.nsteps++];
  double secs = (double)(g.t_measure1 - g.t_measure0) / 1e9;
  const char *stop = NULL;
  double next;

  uv_timer_stop(&g.phase_timer);
  uv_timer_stop(&g.tick_timer);
  memset(st, 0, sizeof(*st));
  st->rate = g.cap_rate;
  st->secs = secs;
  st->sent = g.sent_measured;
  for (uint32_t i = 0; i < cfg.senders; i++) {
    st->skipped += g.senders[i].rate_skipped;
    st->behind += g.senders[i].rate_behind;
  }
  st->offered = st->sent + st->skipped + st->behind;
  st->expected = g.sent_measured * (uint64_t)(cfg.clients - 1);
  st->delivered = g.delivered_measured;
  st->deliveries_per_s = secs > 0 ? (double)st->delivered / secs : 0;
  st->p50 = hist_quantile(g.hist, 0.50);
  st->p99 = hist_quantile(g.hist, 0.99);
  st->p999 = hist_quantile(g.hist, 0.999);
  st->maxv = (double)g.hist->max_ns / 1000.0;
  st->lag_p50 = hist_quantile(g.lag, 0.50);
  st->lag_p99 = hist_quantile(g.lag, 0.99);
  st->lag_max = (double)g.lag->max_ns / 1000.0;
  st->bench_cpu = secs > 0 ? (g.cpu_self1 - g.cpu_self0) / secs : -1;
  st->server_cpu = g.cpu_srv0 >= 0 && g.cpu_srv1 >= 0 && secs > 0
                       ? (g.cpu_srv1 - g.cpu_srv0) / secs
                       : -1;
  {
    double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    st->machine = g.mach_total1 > g.mach_total0
                      ? cores * (g.mach_busy1 - g.mach_busy0) /
                            (g.mach_total1 - g.mach_total0)
                      : -1;
  }
  st->disconnects = g.disconnects - g.step_disc0;

  /* What failed, if anything, as the server's fault... */
  st->verdict = V_SERVER;
  if (st->disconnects > 0)
    snprintf(st->why, sizeof(st->why), "%" PRIu32 " clients dropped",
             st->disconnects);
  else if (st->skipped > 0)
    snprintf(st->why, sizeof(st->why),
             "%" PRIu64 " msgs not sent: the server stopped reading",
             st->skipped);
  else if (st->sent == 0 || st->delivered < st->expected)
    snprintf(st->why, sizeof(st->why),
             "%" PRIu64 " deliveries missing after %.1f s drain",
             st->expected - st->delivered, cfg.drain);
  else if (st->p99 > cfg.p99_max * 1000)
    snprintf(st->why, sizeof(st->why), "p99 %.1f ms > %.1f ms", st->p99 / 1000,
             cfg.p99_max);
  else
    st->verdict = V_PASS;
  /* ...unless chat-bench could not keep up itself: then the step says
   * nothing about the server. Jitter in its send times that the server
   * coped with (a pass) does not void a pass; messages it never sent do. */
  st->gen_over = st->behind > 0 || st->lag_p99 > cfg.max_lag * 1000 ||
                 st->bench_cpu > cfg.max_bench_cpu;
  if (st->behind > 0 || (st->verdict == V_SERVER && st->gen_over)) {
    char pre[96];
    int n = snprintf(pre, sizeof(pre),
                     "chat-bench limited (lag p99 %.1f ms, cpu %.0f%%, %" PRIu64
                     " unsent)%s",
                     st->lag_p99 / 1000, 100 * st->bench_cpu, st->behind,
                     st->why[0] ? ": " : "");
    size_t pl = n < 0                     ? 0
                : (size_t)n < sizeof(pre) ? (size_t)n
                                          : sizeof(pre) - 1;
    size_t wl = strlen(st->why);
    if (pl + wl >= sizeof(st->why))
      wl = sizeof(st->why) - 1 - pl;
    st->verdict = V_GENERATOR;
    memmove(st->why + pl, st->why, wl); /* the server's reason, after it */
    memcpy(st->why, pre, pl);
    st->why[pl + wl] = '\0';
  }
  printf("  step %2" PRIu32 "  %10.1f msgs/s  %12.0f deliveries/s  p99 %8.0f "
         "us  lag p99 %6.0f us  cpu bench %3.0f%%",
         g.nsteps, st->rate, st->deliveries_per_s, st->p99, st->lag_p99,
         100 * st->bench_cpu);
  if (st->server_cpu >= 0)
    printf(" server %3.0f%%", 100 * st->server_cpu);
  printf("  %s%s%s\n", verdict_name[st->verdict], st->why[0] ? ": " : "",
         st->why);

  if (st->verdict == V_PASS) {
    if (st->rate > g.lo) {
      g.lo = st->rate;
      g.best = g.nsteps - 1;
    }
  } else if (g.hi == 0 || st->rate <= g.hi) {
    g.hi = st->rate;
    g.hi_generator = st->verdict == V_GENERATOR;
  }

  next = 0;
  if (g.disconnects > 0)
    stop = "drops";
  else if (g.hi == 0 && st->rate >= cfg.max_rate)
    stop = "max-rate";
  else if (g.hi == 0)
    next = st->rate * cfg.growth < cfg.max_rate ? st->rate * cfg.growth
                                                : cfg.max_rate;
  else if (g.lo == 0 && st->rate <= cfg.min_rate)
    stop = "min-rate";
  else if (g.lo == 0)
    next = st->rate / 2 > cfg.min_rate ? st->rate / 2 : cfg.min_rate;
  else if (g.hi <= g.lo * (1 + cfg.precision))
    stop = g.hi_generator ? "generator" : "server";
  else
    next = (g.lo + g.hi) / 2;
  if (stop == NULL && g.nsteps >= cfg.max_steps)
    stop = "max-steps";
  if (stop != NULL) {
    cap_stop(stop);
    return;
  }
  g.cap_next = next;
  if (g.delivered_total >= all_expected()) {
    cap_start_step(next);
    return;
  }
  g.phase = PH_SETTLE;
  g.settle_last = g.delivered_total;
  g.settle_quiet = g.settle_polls = 0;
  uv_timer_start(&g.phase_timer, on_settle, 100, 100);
}

static void report_capacity(void) {
  double conn = (double)(g.t_ready - g.t_start) / 1e9;
  const step_t *b = g.lo > 0 ? &g.steps[g.best] : NULL;
  int ok = b != NULL;
  FILE *f;

  if (!ok)
    g.exit_code = 3;
  printf("chat-bench capacity: %s %s:%d, %" PRIu32 " clients, %" PRIu32
         " senders, %" PRIu32 "-byte payloads, %.1f s steps\n",
         proto_name(cfg.proto), cfg.host, cfg.port, cfg.clients, cfg.senders,
         cfg.size, cfg.step);
  printf("  connect+register  %" PRIu32 " clients in %.2f s\n", cfg.clients,
         conn);
  if (b != NULL)
    printf("  capacity          %.1f msgs/s (%.0f deliveries/s), p99 %.0f us, "
           "generator lag p99 %.0f us, cpu bench %.0f%% server %.0f%%\n",
           b->rate, b->deliveries_per_s, b->p99, b->lag_p99, 100 * b->bench_cpu,
           100 * b->server_cpu);
  else
    printf("  capacity          none: no rate down to %.1f msgs/s passed\n",
           cfg.min_rate);
  if (g.hi > 0)
    printf("  lowest failing    %.1f msgs/s (%s)\n", g.hi,
           g.hi_generator ? "the generator's limit: the server may carry more"
                          : "the server's");
  printf("  stopped           %s after %" PRIu32 " steps\n", g.cap_bound,
         g.nsteps);
  if (g.disconnects)
    printf("  problems          %" PRIu32 " clients dropped\n", g.disconnects);
  printf("  result            %s\n", ok ? "ok" : "NO PASSING RATE");

  f = open_json();
  if (f == NULL)
    return;
  fprintf(f, "{\"mode\":\"capacity\",\"proto\":");
  json_str(f, proto_name(cfg.proto));
  fprintf(f, ",\"host\":");
  json_str(f, cfg.host);
  fprintf(f,
          ",\"port\":%d,\"clients\":%" PRIu32 ",\"senders\":%" PRIu32
          ",\"size\":%" PRIu32 ",\"step_s\":%.3f,\"drain_s\":%.3f"
          ",\"p99_max_ms\":%.3f,\"max_lag_ms\":%.3f,\"max_bench_cpu\":%.3f"
          ",\"precision\":%.4f"
          ",\"growth\":%.3f,\"quickack\":%s,\"connect_s\":%.6f",
          cfg.port, cfg.clients, cfg.senders, cfg.size, cfg.step, cfg.drain,
          cfg.p99_max, cfg.max_lag, cfg.max_bench_cpu, cfg.precision,
          cfg.growth, cfg.quickack ? "true" : "false", conn);
  if (b != NULL)
    fprintf(f,
            ",\"capacity_rate\":%.3f,\"capacity_rate_per_sender\":%.3f"
            ",\"capacity_deliveries_per_s\":%.3f,\"capacity_p99_us\":%.1f"
            ",\"capacity_lag_p99_us\":%.1f,\"capacity_server_cpu\":%.3f"
            ",\"capacity_bench_cpu\":%.3f",
            b->rate, b->rate / cfg.senders, b->deliveries_per_s, b->p99,
            b->lag_p99, b->server_cpu, b->bench_cpu);
  else
    fprintf(f, ",\"capacity_rate\":null,\"capacity_rate_per_sender\":null"
               ",\"capacity_deliveries_per_s\":null,\"capacity_p99_us\":null"
               ",\"capacity_lag_p99_us\":null,\"capacity_server_cpu\":null"
               ",\"capacity_bench_cpu\":null");
  if (g.hi > 0)
    fprintf(f, ",\"fail_rate\":%.3f", g.hi);
  else
    fprintf(f, ",\"fail_rate\":null");
  fprintf(f, ",\"generator_limited\":%s,\"bound\":\"%s\",\"steps\":[",
          g.hi > 0 && g.hi_generator ? "true" : "false", g.cap_bound);
  for (uint32_t i = 0; i < g.nsteps; i++) {
    const step_t *s = &g.steps[i];
    fprintf(
        f,
        "%s{\"rate\":%.3f,\"secs\":%.6f,\"offered\":%" PRIu64
        ",\"sent\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"behind\":%" PRIu64
        ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRId64
        ",\"deliveries_per_s\":%.3f"
        ",\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
        "\"max\":%.1f},\"lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}"
        ",\"bench_cpu\":%.3f,\"server_cpu\":%.3f,\"machine_busy_cores\":%.3f"
        ",\"disconnects\":%" PRIu32 ",\"generator_over\":%s"
        ",\"verdict\":\"%s\",\"why\":",
        i ? "," : "", s->rate, s->secs, s->offered, s->sent, s->skipped,
        s->behind, s->expected, s->delivered,
        (int64_t)s->expected - (int64_t)s->delivered, s->deliveries_per_s,
        s->p50, s->p99, s->p999, s->maxv, s->lag_p50, s->lag_p99, s->lag_max,
        s->bench_cpu, s->server_cpu, s->machine, s->disconnects,
        s->gen_over ? "true" : "false", verdict_name[s->verdict]);
    json_str(f, s->why);
    fputc('}', f);
  }
  fprintf(f, "],\"disconnects\":%" PRIu32 ",\"ok\":%s}\n", g.disconnects,
          ok ? "true" : "false");
  close_json(f);
}

static void all_ready(void) {
  g.t_ready = uv_hrtime();
  uv_timer_stop(&g.progress_timer);
  if (cfg.mode == MODE_IDLE) {
    g.rss_ready = read_rss_kib(cfg.server_pid);
    g.phase = PH_HOLD;
    uv_timer_start(&g.phase_timer, on_phase_timer, (uint64_t)(cfg.hold * 1000),
                   0);
    return;
  }
  if (cfg.mode == MODE_CAPACITY) {
    cap_start_step(cfg.start_rate);
    return;
  }
  g.phase = PH_WARMUP;
  g.t_rate0 = g.t_ready;
  if (cfg.warmup <= 0)
    measure_begin();
  uv_timer_start(
      &g.phase_timer, on_phase_timer,
      (uint64_t)((g.phase == PH_WARMUP ? cfg.warmup : cfg.duration) * 1000), 0);
  if (cfg.rate > 0) {
    uv_timer_start(&g.tick_timer, on_tick, 1, 1);
    on_tick(&g.tick_timer);
  }
}

static int run_clients(void) {
  uint32_t v = (uint32_t)(uv_hrtime() / 1000) ^ (uint32_t)getpid();
  const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

  raise_nofile(cfg.clients);
  resolve_host(&g.addr);
  g.tag[0] = digits[v % 36];
  g.tag[1] = digits[(v / 36) % 36];
  g.tag[2] = '\0';
  g.t_measure1 = UINT64_MAX;
  g.clients = xcalloc(cfg.clients, sizeof(client_t));
  for (uint32_t i = 0; i < cfg.clients; i++)
    g.clients[i].id = i;
  g.observer = cfg.ack == ACK_PROBE ? cfg.clients - 1 : UINT32_MAX;
  if (cfg.mode == MODE_FANOUT || cfg.mode == MODE_CAPACITY) {
    g.hist = xcalloc(1, sizeof(hist_t));
    g.khist = xcalloc(1, sizeof(hist_t));
    g.lag = xcalloc(1, sizeof(hist_t));
    g.steps = xcalloc(cfg.max_steps, sizeof(step_t));
    g.senders = xcalloc(cfg.senders, sizeof(sender_t));
    for (uint32_t i = 0; i < cfg.senders; i++) {
      g.senders[i].c = &g.clients[i];
      if (cfg.mode == MODE_FANOUT && cfg.rate <= 0 && cfg.ack == ACK_ALL)
        g.senders[i].slots = xcalloc(cfg.window, sizeof(slot_t));
    }
    g.msg_max = cfg.size + 64;
  }
  uv_timer_init(loop, &g.phase_timer);
  uv_timer_init(loop, &g.tick_timer);
  uv_timer_init(loop, &g.progress_timer);
  uv_check_init(loop, &g.flush_check);
  uv_check_start(&g.flush_check, on_flush_check);
  uv_unref((uv_handle_t *)&g.flush_check);
  uv_timer_start(&g.phase_timer, on_phase_timer,
                 (uint64_t)(cfg.connect_timeout * 1000), 0);
  uv_timer_start(&g.progress_timer, on_progress, 10000, 10000);
  g.rss_before = read_rss_kib(cfg.server_pid);
  if (cfg.server_pid > 0 && g.rss_before < 0)
    die("cannot read VmRSS of pid %ld", cfg.server_pid);
  g.phase = PH_CONNECT;
  g.t_start = uv_hrtime();
  start_more();
  uv_run(loop, UV_RUN_DEFAULT);
  die("the event loop stopped before the run finished");
}

/* ------------------------------------------------------------------ */
/* transfer: two chat-client processes */

enum { R_OWNER, R_REQUESTER };

typedef struct {
  uv_process_t proc;
  uv_pipe_t in, out;
  char line[8192];
  size_t llen;
  int role, welcomed, exited, spawned;
  int64_t status;
  int term_signal;
  long rss_base, rss_peak;
} child_t;

static struct {
  child_t kids[2];
  char own[32], req[32], sync[48];
  char *share_dir, *base, *dl_dir, *src_path;
  int made_dl_dir;
  int state; /* 0 joining, 1 synced/requested, 2 done */
  int ok, relayed;
  char outcome[1024];
  uint64_t t0, t1;
  uv_timer_t sampler, deadline, kill_timer;
  long srv_base, srv_peak;
} x;

static void kid_write(child_t *k, const char *s) {
  uv_buf_t buf = uv_buf_init((char *)s, (unsigned)strlen(s));
  int rc;
  /* a few short lines: the pipe takes them at once */
  rc = uv_try_write((uv_stream_t *)&k->in, &buf, 1);
  if (rc != (int)buf.len)
    die("writing to chat-client's stdin: %s",
        rc < 0 ? uv_strerror(rc) : "short write");
}

static void sample_rss(void) {
  long r = read_rss_kib(cfg.server_pid);
  if (r > x.srv_peak)
    x.srv_peak = r;
  for (int i = 0; i < 2; i++) {
    child_t *k = &x.kids[i];
    if (k->exited)
      continue;
    r = read_rss_kib(k->proc.pid);
    if (r > k->rss_peak)
      k->rss_peak = r;
  }
}

static void on_sampler(uv_timer_t *h) {
  (void)h;
  sample_rss();
}

static void on_kid_closed(uv_handle_t *h) {
  (void)h;
}

static void stop_kids(void) {
  for (int i = 0; i < 2; i++) {
    child_t *k = &x.kids[i];
    if (!k->spawned || uv_is_closing((uv_handle_t *)&k->in))
      continue;
    if (!k->exited) {
      uv_buf_t buf = uv_buf_init("x\n", 2);
      uv_try_write((uv_stream_t *)&k->in, &buf, 1);
    }
    uv_close((uv_handle_t *)&k->in, on_kid_closed);
  }
}

static void on_kill_timer(uv_timer_t *h) {
  (void)h;
  for (int i = 0; i < 2; i++)
    if (x.kids[i].spawned && !x.kids[i].exited)
      uv_process_kill(&x.kids[i].proc, SIGTERM);
}

static void transfer_done(int ok, const char *why) {
  if (x.state == 2)
    return;
  x.state = 2;
  x.ok = ok;
  x.t1 = uv_hrtime();
  snprintf(x.outcome, sizeof(x.outcome), "%s", why);
  sample_rss();
  uv_timer_stop(&x.sampler);
  uv_timer_stop(&x.deadline);
  stop_kids();
  uv_timer_start(&x.kill_timer, on_kill_timer, 10000, 0);
}

static void on_deadline(uv_timer_t *h) {
  (void)h;
  transfer_done(0, "timed out");
}

static void kid_line(child_t *k, const char *line) {
  char want[600];

  if (strstr(line, "* welcome") != NULL && !k->welcomed) {
    k->welcomed = 1;
    if (x.kids[0].welcomed && x.kids[1].welcomed) {
      /* the owner's FILEPORT precedes this message at the server */
      char buf[128];
      snprintf(buf, sizeof(buf), "m\n%s\n", x.sync);
      kid_write(&x.kids[R_OWNER], buf);
    }
    return;
  }
  if (k->role == R_REQUESTER && x.state == 0) {
    snprintf(want, sizeof(want), "%s: %s", x.own, x.sync);
    if (strstr(line, want) != NULL) {
      char buf[600];
      x.state = 1;
      sample_rss();
      x.srv_base = x.srv_peak;
      for (int i = 0; i < 2; i++)
        x.kids[i].rss_base = x.kids[i].rss_peak;
      uv_timer_start(&x.sampler, on_sampler, 20, 20);
      snprintf(buf, sizeof(buf), "f\n%s\n%s\n", x.own, x.base);
      x.t0 = uv_hrtime();
      kid_write(k, buf);
    }
    return;
  }
  if (k->role == R_REQUESTER && x.state == 1) {
    snprintf(want, sizeof(want), "received %s (", x.base);
    if (strstr(line, want) != NULL) {
      transfer_done(strstr(line, "verified") != NULL, line);
      return;
    }
    snprintf(want, sizeof(want), "file transfer of %s from", x.base);
    if (strstr(line, want) != NULL) {
      transfer_done(0, line);
      return;
    }
    if (strstr(line, "relaying through") != NULL)
      x.relayed = 1;
  }
}

static void on_kid_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_kid_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  child_t *k = s->data;

  if (n < 0) {
    uv_close((uv_handle_t *)s, on_kid_closed);
    if (x.state != 2)
      transfer_done(0, k->role == R_OWNER
                           ? "the owner's chat-client ended"
                           : "the requester's chat-client ended");
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == '\n' || k->llen == sizeof(k->line) - 1) {
      k->line[k->llen] = '\0';
      if (getenv("CHAT_BENCH_VERBOSE") != NULL)
        fprintf(stderr, "[%s] %s\n", k->role == R_OWNER ? "owner" : "req",
                k->line);
      kid_line(k, k->line);
      k->llen = 0;
    } else {
      k->line[k->llen++] = ch;
    }
  }
}

static void on_kid_exit(uv_process_t *p, int64_t status, int sig) {
  child_t *k = p->data;
  k->exited = 1;
  k->status = status;
  k->term_signal = sig;
  uv_close((uv_handle_t *)p, on_kid_closed);
  if (x.kids[0].exited && x.kids[1].exited) {
    uv_timer_stop(&x.kill_timer);
    uv_timer_stop(&x.sampler);
    uv_timer_stop(&x.deadline);
  }
  if (x.state != 2)
    transfer_done(0, "a chat-client exited early");
}

static void spawn_kid(child_t *k, int role, int lport) {
  char portbuf[16], lportbuf[16];
  char *args[16];
  int n = 0, rc;
  uv_process_options_t opt;
  uv_stdio_container_t stdio[3];

  k->role = role;
  uv_pipe_init(loop, &k->in, 0);
  uv_pipe_init(loop, &k->out, 0);
  k->in.data = k->out.data = k->proc.data = k;
  snprintf(portbuf, sizeof(portbuf), "%d", cfg.port);
  snprintf(lportbuf, sizeof(lportbuf), "%d", lport);
  args[n++] = (char *)cfg.client_path;
  args[n++] = "-l";
  args[n++] = lportbuf;
  args[n++] = "-p";
  args[n++] = portbuf;
  args[n++] = "-s";
  args[n++] = (char *)cfg.host;
  if (role == R_OWNER) {
    args[n++] = "--share";
    args[n++] = x.share_dir;
  } else {
    args[n++] = "--downloads";
    args[n++] = x.dl_dir;
    args[n++] = "--transfer";
    args[n++] = (char *)cfg.xmode;
  }
  args[n] = NULL;
  memset(&opt, 0, sizeof(opt));
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&k->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&k->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  opt.file = cfg.client_path;
  opt.args = args;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = on_kid_exit;
  rc = uv_spawn(loop, &k->proc, &opt);
  if (rc != 0)
    die("cannot run %s: %s", cfg.client_path, uv_strerror(rc));
  k->spawned = 1;
  uv_read_start((uv_stream_t *)&k->out, on_kid_alloc, on_kid_read);
}

static int free_port(void) {
  uv_tcp_t t;
  struct sockaddr_in sa;
  struct sockaddr_storage got;
  int len = sizeof(got), rc;

  uv_tcp_init(loop, &t);
  uv_ip4_addr("0.0.0.0", 0, &sa);
  rc = uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0);
  if (rc == 0)
    rc = uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
  if (rc != 0)
    die("cannot find a free port: %s", uv_strerror(rc));
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* sha256sum of path into out (64 hex digits), 0 on success. */
static int sha256_of(const char *path, char *out) {
  char cmd[8192], line[256];
  size_t n = 0;
  FILE *p;

  n += (size_t)snprintf(cmd, sizeof(cmd), "sha256sum -- '");
  for (const char *s = path; *s && n + 8 < sizeof(cmd); s++) {
    if (*s == '\'') {
      memcpy(cmd + n, "'\\''", 4);
      n += 4;
    } else {
      cmd[n++] = *s;
    }
  }
  cmd[n++] = '\'';
  cmd[n] = '\0';
  p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  if (fgets(line, sizeof(line), p) == NULL || strlen(line) < 64) {
    pclose(p);
    return -1;
  }
  if (pclose(p) != 0)
    return -1;
  memcpy(out, line, 64);
  out[64] = '\0';
  return 0;
}

static int run_transfer(void) {
  uv_fs_t req;
  struct stat st, dst;
  char *slash, *got_path, sum_src[65], sum_dst[65];
  double secs, mibs;
  int lport, size_ok = 0, sha_ok = 0;
  long kid_growth[2];
  FILE *f;

  if (uv_fs_realpath(loop, &req, cfg.file, NULL) != 0)
    die("%s: %s", cfg.file, uv_strerror((int)req.result));
  x.src_path = strdup(req.ptr);
  uv_fs_req_cleanup(&req);
  if (x.src_path == NULL)
    die("out of memory");
  if (stat(x.src_path, &st) != 0 || !S_ISREG(st.st_mode))
    die("%s is not a regular file", cfg.file);
  /* a real path: absolute, so it has a '/' */
  slash = strrchr(x.src_path, '/');
  x.base = strdup(slash + 1);
  x.share_dir = slash == x.src_path
                    ? strdup("/")
                    : strndup(x.src_path, (size_t)(slash - x.src_path));
  if (x.base == NULL || x.share_dir == NULL)
    die("out of memory");
  if (x.base[0] == '.' || x.base[0] == '\0')
    die("chat-client never serves hidden files: rename %s", cfg.file);
  if (cfg.downloads != NULL) {
    x.dl_dir = (char *)cfg.downloads;
  } else {
    char tmpl[] = "/tmp/chat-bench-dl-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
      die("mkdtemp: %s", strerror(errno));
    x.dl_dir = strdup(tmpl);
    x.made_dl_dir = 1;
  }
  {
    uint32_t v = (uint32_t)(uv_hrtime() / 1000) ^ (uint32_t)getpid();
    snprintf(x.own, sizeof(x.own), "own%05" PRIu32, v % 100000);
    snprintf(x.req, sizeof(x.req), "req%05" PRIu32, v % 100000);
    snprintf(x.sync, sizeof(x.sync), "sync-%08" PRIx32, v);
  }
  lport = free_port();
  x.srv_base = x.srv_peak = read_rss_kib(cfg.server_pid);
  if (cfg.server_pid > 0 && x.srv_base < 0)
    die("cannot read VmRSS of pid %ld", cfg.server_pid);
  uv_timer_init(loop, &x.sampler);
  uv_timer_init(loop, &x.deadline);
  uv_timer_init(loop, &x.kill_timer);
  uv_timer_start(&x.deadline, on_deadline, (uint64_t)(cfg.timeout * 1000), 0);
  spawn_kid(&x.kids[R_OWNER], R_OWNER, lport);
  spawn_kid(&x.kids[R_REQUESTER], R_REQUESTER, 0);
  {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s\n", x.own);
    kid_write(&x.kids[R_OWNER], buf);
    snprintf(buf, sizeof(buf), "%s\n", x.req);
    kid_write(&x.kids[R_REQUESTER], buf);
  }
  uv_run(loop, UV_RUN_DEFAULT);

  secs = x.t1 > x.t0 && x.t0 ? (double)(x.t1 - x.t0) / 1e9 : 0;
  mibs = secs > 0 ? (double)st.st_size / 1048576.0 / secs : 0;
  got_path = xmalloc(strlen(x.dl_dir) + strlen(x.base) + 2);
  sprintf(got_path, "%s/%s", x.dl_dir, x.base);
  if (x.ok && stat(got_path, &dst) == 0) {
    size_ok = dst.st_size == st.st_size;
    if (size_ok && sha256_of(x.src_path, sum_src) == 0 &&
        sha256_of(got_path, sum_dst) == 0)
      sha_ok = strcmp(sum_src, sum_dst) == 0;
  }
  for (int i = 0; i < 2; i++)
    kid_growth[i] = x.kids[i].rss_peak - x.kids[i].rss_base;
  if (!cfg.keep) {
    unlink(got_path);
    if (x.made_dl_dir)
      rmdir(x.dl_dir);
  }
  printf("chat-bench transfer: %s (%lld bytes), mode %s%s\n", x.base,
         (long long)st.st_size, cfg.xmode, x.relayed ? " (relayed)" : "");
  printf("  outcome           %s\n", x.outcome);
  if (x.ok)
    printf("  time              %.3f s (%.1f MiB/s)\n", secs, mibs);
  printf("  verified          size %s, sha256 %s\n", size_ok ? "ok" : "BAD",
         sha_ok ? "ok" : "BAD");
  if (cfg.server_pid > 0)
    printf("  server VmRSS      %ld KiB before, peak %ld KiB (+%ld)\n",
           x.srv_base, x.srv_peak, x.srv_peak - x.srv_base);
  printf("  owner VmRSS       %ld KiB before, peak %ld KiB (+%ld)\n",
         x.kids[0].rss_base, x.kids[0].rss_peak, kid_growth[0]);
  printf("  requester VmRSS   %ld KiB before, peak %ld KiB (+%ld)\n",
         x.kids[1].rss_base, x.kids[1].rss_peak, kid_growth[1]);
  f = open_json();
  if (f != NULL) {
    fprintf(f, "{\"mode\":\"transfer\",\"xfer_mode\":");
    json_str(f, cfg.xmode);
    fprintf(f, ",\"file\":");
    json_str(f, x.base);
    fprintf(f,
            ",\"bytes\":%lld,\"seconds\":%.6f,\"mib_per_s\":%.3f,"
            "\"relayed\":%s,\"size_ok\":%s,\"sha256_ok\":%s,"
            "\"server_rss_base_kib\":%ld,\"server_rss_peak_kib\":%ld,"
            "\"owner_rss_base_kib\":%ld,\"owner_rss_peak_kib\":%ld,"
            "\"requester_rss_base_kib\":%ld,\"requester_rss_peak_kib\":%ld,"
            "\"ok\":%s,\"outcome\":",
            (long long)st.st_size, secs, mibs, x.relayed ? "true" : "false",
            size_ok ? "true" : "false", sha_ok ? "true" : "false", x.srv_base,
            x.srv_peak, x.kids[0].rss_base, x.kids[0].rss_peak,
            x.kids[1].rss_base, x.kids[1].rss_peak,
            x.ok && sha_ok ? "true" : "false");
    json_str(f, x.outcome);
    fprintf(f, "}\n");
    close_json(f);
  }
  free(got_path);
  if (!x.ok)
    return 1;
  return sha_ok ? 0 : 3;
}

/* ------------------------------------------------------------------ */
/* floor: what the kernel charges one core to send one small segment to each
 * of N loopback TCP connections, with no chat server in between. On
 * loopback the sender's core also runs the receiver's TCP input, as a
 * one-thread server's fan-out does, so one message to N recipients cannot
 * leave a one-core server faster than this sweep. The receiving ends are
 * read on this loop between sweeps (the --gap), outside the timing. */

static struct {
  uv_tcp_t listener;
  uv_tcp_t *in;  /* accepted ends: the sweeps write to these */
  uv_tcp_t *out; /* connecting ends: read and discarded */
  uv_connect_t *creq;
  uint32_t accepted, started, connected, done;
  uint64_t *sweep_ns;
  uv_timer_t timer;
  char *payload;
} fl;

#define FLOOR_UNTIMED 10

static void fl_connect_next(void);

static void fl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)s;
  (void)buf;
  if (nread < 0)
    die("floor: read: %s", uv_strerror((int)nread));
}

static void fl_on_connect(uv_connect_t *req, int status) {
  uv_tcp_t *t = (uv_tcp_t *)req->handle;
  int rc;

  if (status < 0)
    die("floor: connect: %s", uv_strerror(status));
  rc = uv_read_start((uv_stream_t *)t, on_alloc, fl_on_read);
  if (rc != 0)
    die("floor: read: %s", uv_strerror(rc));
  fl.connected++;
  fl_connect_next();
}

static void fl_connect_next(void) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss, rc;
  uv_tcp_t *t;

  if (fl.started == cfg.clients)
    return;
  uv_tcp_getsockname(&fl.listener, (struct sockaddr *)&ss, &len);
  t = &fl.out[fl.started];
  uv_tcp_init(loop, t);
  rc = uv_tcp_connect(&fl.creq[fl.started++], t, (struct sockaddr *)&ss,
                      fl_on_connect);
  if (rc != 0)
    die("floor: connect: %s", uv_strerror(rc));
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t u = *(const uint64_t *)a, v = *(const uint64_t *)b;
  return u < v ? -1 : u > v;
}

static void fl_report(void) {
  uint64_t *v = fl.sweep_ns + FLOOR_UNTIMED;
  uint32_t k = cfg.sweeps;
  double p10, p50, p90;
  FILE *f;

  qsort(v, k, sizeof *v, cmp_u64);
  p10 = (double)v[k / 10] / 1e6;
  p50 = (double)v[k / 2] / 1e6;
  p90 = (double)v[k - 1 - k / 10] / 1e6;
  printf(
      "floor: %" PRIu32 " sweeps of %" PRIu32 " loopback TCP sends of %" PRIu32
      " B\n  sweep ms: p10 %.3f  p50 %.3f  p90 %.3f\n"
      "  per send: %.2f us (p50 sweep / connections)\n",
      k, cfg.clients, cfg.size, p10, p50, p90, p50 * 1e3 / (double)cfg.clients);
  f = open_json();
  if (f == NULL)
    return;
  fprintf(f,
          "{\n  \"mode\": \"floor\",\n  \"clients\": %" PRIu32
          ",\n  \"size\": %" PRIu32 ",\n  \"sweeps\": %" PRIu32
          ",\n  \"sweep_ms\": {\"p10\": %.4f, \"p50\": %.4f, \"p90\": %.4f},"
          "\n  \"us_per_send\": %.4f\n}\n",
          cfg.clients, cfg.size, k, p10, p50, p90,
          p50 * 1e3 / (double)cfg.clients);
  close_json(f);
}

static void fl_on_close(uv_handle_t *h) {
  (void)h;
}

static void fl_on_sweep(uv_timer_t *h) {
  uv_buf_t b = uv_buf_init(fl.payload, cfg.size);
  uint64_t t0;
  int w;

  (void)h;
  t0 = uv_hrtime();
  for (uint32_t i = 0; i < cfg.clients; i++) {
    w = uv_try_write((uv_stream_t *)&fl.in[i], &b, 1);
    if (w != (int)cfg.size)
      die("floor: send %" PRIu32 ": %s", i,
          w < 0 ? uv_strerror(w) : "partial write");
  }
  fl.sweep_ns[fl.done++] = uv_hrtime() - t0;
  if (fl.done < FLOOR_UNTIMED + cfg.sweeps)
    return;
  uv_timer_stop(&fl.timer);
  fl_report();
  uv_close((uv_handle_t *)&fl.timer, fl_on_close);
  uv_close((uv_handle_t *)&fl.listener, fl_on_close);
  for (uint32_t i = 0; i < cfg.clients; i++) {
    uv_close((uv_handle_t *)&fl.in[i], fl_on_close);
    uv_close((uv_handle_t *)&fl.out[i], fl_on_close);
  }
}

static void fl_on_accept(uv_stream_t *srv, int status) {
  uv_tcp_t *t;
  uint64_t gap_ms = (uint64_t)(cfg.gap * 1000.0 + 0.5);
  int rc;

  if (status < 0)
    die("floor: accept: %s", uv_strerror(status));
  if (fl.accepted == cfg.clients)
    die("floor: unexpected connection");
  t = &fl.in[fl.accepted];
  uv_tcp_init(loop, t);
  rc = uv_accept(srv, (uv_stream_t *)t);
  if (rc != 0)
    die("floor: accept: %s", uv_strerror(rc));
  uv_tcp_nodelay(t, 1);
  if (++fl.accepted == cfg.clients) {
    uv_timer_init(loop, &fl.timer);
    uv_timer_start(&fl.timer, fl_on_sweep, 200, gap_ms > 0 ? gap_ms : 1);
  }
}

static int run_floor(void) {
  struct sockaddr_in sa;
  int rc;

  raise_nofile(2 * cfg.clients + 64);
  fl.in = xcalloc(cfg.clients, sizeof *fl.in);
  fl.out = xcalloc(cfg.clients, sizeof *fl.out);
  fl.creq = xcalloc(cfg.clients, sizeof *fl.creq);
  fl.sweep_ns = xcalloc(FLOOR_UNTIMED + cfg.sweeps, sizeof *fl.sweep_ns);
  fl.payload = xmalloc(cfg.size);
  memset(fl.payload, 'x', cfg.size);
  fl.payload[cfg.size - 1] = '\n';
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_init(loop, &fl.listener);
  rc = uv_tcp_bind(&fl.listener, (struct sockaddr *)&sa, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&fl.listener, 4096, fl_on_accept);
  if (rc != 0)
    die("floor: listen: %s", uv_strerror(rc));
  for (uint32_t i = 0; i < cfg.concurrency && i < cfg.clients; i++)
    fl_connect_next();
  uv_run(loop, UV_RUN_DEFAULT);
  free(fl.in);
  free(fl.out);
  free(fl.creq);
  free(fl.sweep_ns);
  free(fl.payload);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  parse_args(argc, argv);
  loop = uv_default_loop();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (cfg.mode == MODE_TRANSFER)
    return run_transfer();
  if (cfg.mode == MODE_FLOOR)
    return run_floor();
  return run_clients();
}
