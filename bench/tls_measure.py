#!/usr/bin/env python3
"""tls_measure.py: the TLS figures of issue 12 that need no TLS in
chat-bench, each against the plain figure of the same run.

  bench/tls_measure.py handshakes [--seconds S]
  bench/tls_measure.py idle [--clients N]
  bench/tls_measure.py transfer --before BUILD [--mib M] [--runs R]

handshakes: chat-server --tls pinned to CPU 0, `openssl s_time -new`
(full ECDSA P-256 handshakes, one after another) pinned to CPU 1; reports
the handshakes s_time completed per second and the server's CPU time per
handshake, whose inverse is what one server core can do.

idle: N clients connect and register over TLS (Python's ssl), then N over
plain TCP to another server; reports each server's RSS growth per client.

transfer: a random file of M MiB from one chat-client to another, direct
and relayed, with this tree's binaries (file connections always TLS) and
with BUILD's (a build of a commit before encrypted transfers: plain),
alternating run by run; reports MiB/s medians and the ratio.

The server's binary is build-bench/src/chat-server (release) unless
CHAT_BUILD names another build directory.
"""
import argparse
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get('CHAT_BUILD', os.path.join(ROOT, 'build-bench'))


def server_bin(build=BUILD):
    return os.path.join(build, 'src', 'chat-server')


def client_bin(build=BUILD):
    return os.path.join(build, 'src', 'chat-client')


def start_server(args, build=BUILD, cpu='0'):
    p = subprocess.Popen(['taskset', '-c', cpu, server_bin(build)] + args +
                         ['0'], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        m = re.search(r'listening on port (\d+)', line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit('the server did not start')
    # keep its log drained
    import threading
    threading.Thread(target=lambda: [None for _ in p.stderr],
                     daemon=True).start()
    return p, port


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / tick


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def handshakes(args):
    state = tempfile.mkdtemp(prefix='tls-measure-')
    p, port = start_server(['--tls', '--state-dir', state, '--rate', '0',
                            '--max-per-ip', '0'])
    try:
        time.sleep(0.5)
        c0 = cpu_seconds(p.pid)
        out = subprocess.run(
            ['taskset', '-c', '1', 'openssl', 's_time', '-connect',
             '127.0.0.1:%d' % port, '-new', '-time', str(args.seconds)],
            capture_output=True, text=True).stdout
        c1 = cpu_seconds(p.pid)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(state, ignore_errors=True)
    m = re.search(r'(\d+) connections in ([\d.]+)s', out)
    if not m:
        sys.exit('s_time said:\n' + out)
    n, secs = int(m.group(1)), float(m.group(2))
    per = (c1 - c0) / n if n else float('nan')
    print('handshakes: %d in %.1f s of s_time = %.0f/s (s_time on one core '
          'is the client); server CPU %.1f us per handshake = %.0f '
          'handshakes/s per server core' % (n, secs, n / secs, per * 1e6,
                                              1 / per if per else 0))


def open_clients(port, n, tls):
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    socks = []
    for i in range(n):
        s = socket.create_connection(('127.0.%d.%d' % (1 + i // 250 % 200,
                                                       1 + i % 250), port))
        if tls:
            s = ctx.wrap_socket(s)
        s.sendall(b'u%d\n' % i)
        socks.append(s)
    for s in socks:  # every welcome read: registered
        s.settimeout(10)
        buf = b''
        while b'\n' not in buf:
            buf += s.recv(4096)
    return socks


def idle(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    state = tempfile.mkdtemp(prefix='tls-measure-')
    for tls in (True, False):
        p, port = start_server(['--tls', '--state-dir', state, '--rate', '0',
                                '--max-per-ip', '0', '--max-clients',
                                str(args.clients + 100)])
        time.sleep(0.3)
        before = rss_kib(p.pid)
        socks = open_clients(port, args.clients, tls)
        time.sleep(1.0)
        after = rss_kib(p.pid)
        print('idle %s: %d clients, server RSS %d -> %d KiB: %.0f bytes per '
              'client' % ('TLS  ' if tls else 'plain', args.clients, before,
                          after, (after - before) * 1024.0 / args.clients))
        for s in socks:
            s.close()
        p.terminate()
        p.wait()
    shutil.rmtree(state, ignore_errors=True)


def transfer_once(build, size_mib, mode, tmp):
    """One transfer of tmp/share/big.bin from owner to requester; returns
    MiB/s from the request to the success line."""
    p, port = start_server(['--rate', '0'], build=build, cpu='0-1')
    owner_dir = os.path.join(tmp, 'share')
    dl = tempfile.mkdtemp(dir=tmp)
    lport = 20000 + os.getpid() % 10000
    owner = subprocess.Popen(
        [client_bin(build), '-l', str(lport), '-p', str(port), '-s',
         '127.0.0.1', '--share', owner_dir, '--downloads', tmp],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    owner.stdin.write(b'owner\n')
    owner.stdin.flush()
    req = subprocess.Popen(
        [client_bin(build), '-l', '0', '-p', str(port), '-s', '127.0.0.1',
         '--share', tmp, '--downloads', dl, '--transfer', mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    req.stdin.write(b'requester\n')
    req.stdin.flush()
    time.sleep(0.5)
    t0 = time.monotonic()
    req.stdin.write(b'f\nowner\nbig.bin\n')
    req.stdin.flush()
    ok = False
    for line in req.stdout:
        if b'big.bin' in line and (b'received' in line or b'failed' in line
                                   or b'saved' in line):
            ok = b'failed' not in line
            break
    secs = time.monotonic() - t0
    for c in (req, owner):
        try:
            c.stdin.write(b'x\n')
            c.stdin.flush()
        except OSError:
            pass
        c.wait(timeout=30)
    p.terminate()
    p.wait()
    shutil.rmtree(dl, ignore_errors=True)
    if not ok:
        sys.exit('a transfer failed (%s, %s)' % (build, mode))
    return size_mib / secs


def transfer(args):
    tmp = tempfile.mkdtemp(prefix='tls-xfer-', dir=args.dir)
    os.makedirs(os.path.join(tmp, 'share'))
    with open(os.path.join(tmp, 'share', 'big.bin'), 'wb') as f:
        for _ in range(args.mib):
            f.write(os.urandom(1 << 20))
    res = {}
    for r in range(args.runs):
        for mode in ('direct', 'relay'):
            for label, build in (('tls', BUILD), ('plain', args.before)):
                subprocess.run(['sync'])
                v = transfer_once(build, args.mib, mode, tmp)
                res.setdefault((mode, label), []).append(v)
                print('run %d %s %s: %.1f MiB/s' % (r + 1, mode, label, v),
                      flush=True)
    for mode in ('direct', 'relay'):
        t = statistics.median(res[(mode, 'tls')])
        pl = statistics.median(res[(mode, 'plain')])
        print('transfer %s, %d MiB: TLS %.1f MiB/s, plain %.1f MiB/s: '
              '%.2fx' % (mode, args.mib, t, pl, t / pl))
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    h = sub.add_parser('handshakes')
    h.add_argument('--seconds', type=int, default=10)
    i = sub.add_parser('idle')
    i.add_argument('--clients', type=int, default=5000)
    t = sub.add_parser('transfer')
    t.add_argument('--before', required=True)
    t.add_argument('--mib', type=int, default=1024)
    t.add_argument('--runs', type=int, default=3)
    t.add_argument('--dir', default=None)
    a = ap.parse_args()
    {'handshakes': handshakes, 'idle': idle, 'transfer': transfer}[a.cmd](a)


if __name__ == '__main__':
    main()
