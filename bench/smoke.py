#!/usr/bin/env python3
"""bench-smoke: start chat-server on a free port, run a one-second
chat-bench fanout against it and check the report: deliveries happened and
none was lost. Then run a tiny chat-bench floor (no server) and check that
it timed every sweep it was asked for.

usage: smoke.py CHAT-SERVER CHAT-BENCH
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: smoke.py CHAT-SERVER CHAT-BENCH')
    server_bin, bench_bin = sys.argv[1], sys.argv[2]
    server = subprocess.Popen([server_bin, '--rate', '0', '--max-per-ip', '0',
                               '0'],
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    port = None
    log = []
    try:
        deadline = time.monotonic() + 10
        while port is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            log.append(line)
            m = re.search(r'listening on port (\d+)', line)
            if m:
                port = int(m.group(1))
        if port is None:
            sys.exit('chat-server did not say its port:\n' + ''.join(log))
        # keep draining the server's log so it never blocks on stderr
        threading.Thread(target=lambda: [log.append(l) for l in server.stderr],
                         daemon=True).start()
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, 'out.json')
            cmd = [bench_bin, 'fanout', '--host', '127.0.0.1', '--port',
                   str(port), '--proto', 'line', '--clients', '10',
                   '--senders', '2', '--size', '64', '--window', '4',
                   '--duration', '1', '--warmup', '0.2', '--json', out]
            print('+', ' '.join(cmd), flush=True)
            r = subprocess.run(cmd, timeout=40)
            if r.returncode != 0:
                sys.exit('chat-bench exited with %d' % r.returncode)
            with open(out) as f:
                rep = json.load(f)
        print(json.dumps(rep, indent=1))
        problems = []
        if rep.get('delivered', 0) <= 0:
            problems.append('no deliveries')
        if rep.get('expected') != rep.get('delivered'):
            problems.append('delivered %s of %s expected' %
                            (rep.get('delivered'), rep.get('expected')))
        if rep.get('delivery_ratio') != 1:
            problems.append('delivery ratio %r, not 1' %
                            rep.get('delivery_ratio'))
        if rep.get('disconnects') != 0:
            problems.append('%s clients dropped' % rep.get('disconnects'))
        if problems:
            sys.exit('bench-smoke FAILED: ' + '; '.join(problems))
        print('bench-smoke: %d deliveries, ratio 1, ok' % rep['delivered'])
        floor_smoke(bench_bin)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def floor_smoke(bench_bin):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'floor.json')
        cmd = [bench_bin, 'floor', '--clients', '20', '--sweeps', '5',
               '--gap', '0.001', '--json', out]
        print('+', ' '.join(cmd), flush=True)
        r = subprocess.run(cmd, timeout=40)
        if r.returncode != 0:
            sys.exit('chat-bench floor exited with %d' % r.returncode)
        with open(out) as f:
            rep = json.load(f)
    print(json.dumps(rep, indent=1))
    ms = rep.get('sweep_ms', {})
    problems = []
    if (rep.get('mode'), rep.get('clients'), rep.get('sweeps')) != (
            'floor', 20, 5):
        problems.append('report is not of 5 sweeps over 20 connections')
    if not 0 < ms.get('p10', 0) <= ms.get('p50', 0) <= ms.get('p90', 0):
        problems.append('sweep times not positive and ordered: %r' % ms)
    if not rep.get('us_per_send', 0) > 0:
        problems.append('no time per send')
    if problems:
        sys.exit('bench-smoke floor FAILED: ' + '; '.join(problems))
    print('bench-smoke: floor ok, %.2f us per send' % rep['us_per_send'])


if __name__ == '__main__':
    main()
