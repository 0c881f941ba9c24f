#!/usr/bin/env python3
"""bench-smoke: start chat-server on a free port, run one-second chat-bench
fanouts against it (--ack all, --ack one with --quickack, --arrival) and check
the reports: deliveries happened and none was lost. Then a tiny capacity
search (valid JSON, its fields, a passing rate, steps that add up), and a
tiny chat-bench floor (no server) that must time every sweep it was asked
for. Nothing here asserts a speed.

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
        fanout_smoke(bench_bin, port, [])
        fanout_smoke(bench_bin, port, ['--ack', 'one', '--quickack'])
        fanout_smoke(bench_bin, port, ['--arrival'])
        capacity_smoke(bench_bin, port)
        floor_smoke(bench_bin)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_json(cmd, out):
    print('+', ' '.join(cmd), flush=True)
    r = subprocess.run(cmd, timeout=40)
    if r.returncode != 0:
        sys.exit('chat-bench exited with %d' % r.returncode)
    with open(out) as f:
        rep = json.load(f)
    print(json.dumps(rep, indent=1))
    return rep


def fanout_smoke(bench_bin, port, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'out.json')
        rep = run_json([bench_bin, 'fanout', '--host', '127.0.0.1', '--port',
                        str(port), '--proto', 'line', '--clients', '10',
                        '--senders', '2', '--size', '64', '--window', '4',
                        '--duration', '1', '--warmup', '0.2', '--json', out] +
                       extra, out)
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
    want_ack = extra[1] if extra[:1] == ['--ack'] else 'all'
    if rep.get('ack') != want_ack:
        problems.append('ack %r, not %r' % (rep.get('ack'), want_ack))
    if want_ack == 'one' and not 2 <= rep.get('observer', -1) < 10:
        problems.append('observer %r is not a receiver' %
                        rep.get('observer'))
    if rep.get('quickack') is not ('--quickack' in extra):
        problems.append('quickack %r' % rep.get('quickack'))
    arr = rep.get('arrival_us')
    if ('--arrival' in extra) != (arr is not None):
        problems.append('arrival_us %r with %s' % (arr, ' '.join(extra)))
    elif arr is not None and not 0 < arr['p50'] <= arr['p99'] <= arr['max']:
        problems.append('arrival percentiles out of order: %r' % arr)
    if problems:
        sys.exit('bench-smoke FAILED (%s): ' % ' '.join(extra) +
                 '; '.join(problems))
    print('bench-smoke: ack %s, %d deliveries, ratio 1, ok' %
          (want_ack, rep['delivered']))


def capacity_smoke(bench_bin, port):
    # Low rates only: the search must find a passing rate, not a limit.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'cap.json')
        rep = run_json([bench_bin, 'capacity', '--host', '127.0.0.1',
                        '--port', str(port), '--proto', 'line', '--clients',
                        '10', '--senders', '2', '--size', '64',
                        '--start-rate', '50', '--max-rate', '200', '--step',
                        '0.5', '--drain', '2', '--max-steps', '4', '--json',
                        out], out)
    problems = []
    for k in ('capacity_rate', 'capacity_deliveries_per_s', 'capacity_p99_us',
              'capacity_lag_p99_us', 'fail_rate', 'generator_limited',
              'bound', 'steps', 'ok'):
        if k not in rep:
            problems.append('no %s' % k)
    steps = rep.get('steps', [])
    if rep.get('mode') != 'capacity' or not rep.get('ok'):
        problems.append('not an ok capacity report')
    if not steps or len(steps) > 4:
        problems.append('%d steps, expected 1..4' % len(steps))
    passed = [s for s in steps if s.get('verdict') == 'pass']
    if not passed:
        problems.append('no step passed at these low rates')
    for s in passed:
        if s['lost'] != 0 or s['delivered'] != s['sent'] * 9 or s['sent'] <= 0:
            problems.append('a passing step lost deliveries: %r' % s)
        for k in ('latency_us', 'lag_us'):
            if 'p99' not in s.get(k, {}):
                problems.append('step without %s.p99' % k)
    if passed and rep.get('capacity_rate') != max(s['rate'] for s in passed):
        problems.append('capacity_rate is not the highest passing rate')
    if rep.get('disconnects') != 0:
        problems.append('%s clients dropped' % rep.get('disconnects'))
    if problems:
        sys.exit('bench-smoke capacity FAILED: ' + '; '.join(problems))
    print('bench-smoke: capacity ok, %.0f msgs/s passed (%s)' % (
        rep['capacity_rate'], rep['bound']))


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
