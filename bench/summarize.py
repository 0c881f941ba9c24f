#!/usr/bin/env python3
"""Helpers for compare.sh (Python 3 standard library only).

  summarize.py brief FILE.json                 one line about one run
  summarize.py halfrate RAWDIR SERVER N S [F]  per-sender msgs/s at F (default
                                               0.5) of SERVER's median peak
                                               at N clients
  summarize.py commonrate RAWDIR N S          per-sender msgs/s at half of the
                                               best peer's peak at N clients
                                               (either ack), and that peer
  summarize.py startrate RAWDIR SERVER N       total msgs/s to start SERVER's
                                               capacity search at N clients
                                               from: half of its best
                                               closed-loop median (either ack)
  summarize.py summary RESULTSDIR              summary.md, .dat files, PNGs
  summarize.py disturbed FILE.json             exit 0 if other processes
                                               disturbed that run
"""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

SERVERS = ['chat', 'nats', 'inspircd', 'ngircd']
PEERS = ['nats', 'inspircd', 'ngircd']
LABEL = {'chat': 'chat-server', 'nats': 'nats-server', 'inspircd': 'InspIRCd',
         'ngircd': 'ngIRCd'}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def others(r):
    """Cores used by other processes during the measured window (machine
    busy minus the server and chat-bench; kernel work not charged to either,
    such as softirq, counts here too). For a capacity search: the most of
    any of its steps."""
    if r.get('mode') == 'capacity':
        return max([others(st) for st in r.get('steps', [])] or [-1])
    m = r.get('machine_busy_cores', -1)
    if m < 0:
        return -1
    return max(0.0, m - max(r.get('server_cpu', 0), 0) -
               max(r.get('bench_cpu', 0), 0))


DISTURBED = 0.5  # cores taken by other processes that make a run disturbed


def disturbed(r):
    return others(r) > DISTURBED


def usable(rs):
    """The runs a median is taken over: those without loss or drops, and
    of those the undisturbed ones when there are any."""
    ok = [r for r in rs if r.get('ok')]
    calm = [r for r in ok if not disturbed(r)]
    return calm if calm else ok


def brief(path):
    r = load(path)
    if r is None:
        return 'no result'
    m = r.get('mode')
    if m == 'fanout':
        return ('%.0f deliveries/s, %.1f msgs/s, ratio %.6f, p50 %.0f us, '
                'p99 %.0f us, connect %.1f s, cpu bench %.0f%% server '
                '%.0f%%, others %.2f cores%s%s' % (
                    r['deliveries_per_s'], r['sent_per_s'],
                    r['delivery_ratio'], r['latency_us']['p50'],
                    r['latency_us']['p99'], r['connect_s'],
                    100 * r.get('bench_cpu', -1),
                    100 * r.get('server_cpu', -1),
                    others(r),
                    ', arrival p50 %.0f us p99 %.0f us' % (
                        r['arrival_us']['p50'], r['arrival_us']['p99'])
                    if 'arrival_us' in r else '',
                    '' if r['ok'] else ' NOT OK'))
    if m == 'capacity':
        if r.get('capacity_rate') is None:
            head = 'no passing rate'
        else:
            head = ('capacity %.0f msgs/s = %.0f deliveries/s, p99 %.0f us, '
                    'lag p99 %.0f us, cpu bench %.0f%% server %.0f%%' % (
                        r['capacity_rate'], r['capacity_deliveries_per_s'],
                        r['capacity_p99_us'], r['capacity_lag_p99_us'],
                        100 * r['capacity_bench_cpu'],
                        100 * r['capacity_server_cpu']))
        return '%s; %s at %s; %d steps, others ≤ %.2f cores%s' % (
            head, 'generator limit' if r.get('generator_limited') else
            'stopped: %s' % r.get('bound'),
            fmt(r.get('fail_rate'), '%.0f msgs/s'), len(r.get('steps', [])),
            others(r), '' if r.get('ok') else ' NOT OK')
    if m == 'idle':
        return '%.0f bytes/client, %.0f clients/s%s' % (
            r['rss_per_client_bytes'], r['connects_per_s'],
            '' if r['ok'] else ' NOT OK')
    if m in ('transfer', 'socat'):
        return '%.1f MiB/s in %.2f s%s' % (r['mib_per_s'], r['seconds'],
                                          '' if r['ok'] else ' NOT OK')
    return json.dumps(r)


def runs(raw, pattern):
    out = []
    for p in sorted(glob.glob(os.path.join(raw, pattern))):
        r = load(p)
        if r is not None:
            out.append((os.path.basename(p), r))
    return out


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def halfrate(raw, server, clients, senders, frac='0.5'):
    vals = [r['deliveries_per_s'] for r in
            usable([r for _, r in
                    runs(raw, 'fanout-%s-%s-r*.json' % (server, clients))])]
    if not vals:
        sys.exit(1)
    msgs = med(vals) / (int(clients) - 1)
    print('%.3f' % (msgs * float(frac) / int(senders)))


def commonrate(raw, clients, senders):
    """Per-sender msgs/s at half of the best peer's peak at N clients: the
    best closed-loop median (either ack rule) of any server but chat."""
    best = None
    for s in PEERS:
        for pat in ('fanout-%s-%s-r*.json', 'ackone-%s-%s-r*.json'):
            v = med([r['deliveries_per_s'] for r in
                     usable([r for _, r in runs(raw, pat % (s, clients))])])
            if v is not None and (best is None or v > best[0]):
                best = (v, s)
    if best is None:
        sys.exit(1)
    print('%.3f %s' % (best[0] / (int(clients) - 1) / 2 / int(senders),
                       best[1]))


def startrate(raw, server, clients):
    vals = []
    for pat in ('fanout-%s-%s-r*.json', 'ackone-%s-%s-r*.json'):
        v = med([r['sent_per_s'] for r in
                 usable([r for _, r in runs(raw, pat % (server, clients))])])
        if v:
            vals.append(v)
    if not vals:
        sys.exit(1)
    print('%.1f' % (max(vals) / 2))


CPU_BOUND = 0.9  # a server below this share of its core is not CPU-bound
GEN_BOUND = 0.95  # chat-bench at or above this share of its core is the limit


def bench_cpu(r):
    if r.get('mode') == 'capacity':
        v = r.get('capacity_bench_cpu')
        return -1 if v is None else v
    return r.get('bench_cpu', -1)


def server_cpu(r):
    """The server's CPU (share of one core) in a run: for a capacity search
    the one at capacity."""
    if r.get('mode') == 'capacity':
        v = r.get('capacity_server_cpu')
        return -1 if v is None else v
    return r.get('server_cpu', -1)


def figure(r):
    if r.get('mode') == 'capacity':
        return r.get('capacity_deliveries_per_s')
    return r.get('deliveries_per_s')


def fmt(v, spec='%.0f'):
    return '—' if v is None else spec % v


def fmt_int(v):
    return '—' if v is None else '{:,.0f}'.format(v)


def verdict(ok):
    return 'met' if ok else 'NOT met'


def summary(outdir):
    raw = os.path.join(outdir, 'raw')
    lines = []
    add = lines.append
    machine = ''
    mpath = os.path.join(outdir, 'machine.txt')
    if os.path.exists(mpath):
        machine = open(mpath).read()
    quickack = 'quickack: --quickack' in machine
    add('# chat-bench comparison: %s' % os.path.basename(outdir.rstrip('/')))
    add('')
    add('```')
    add(machine.rstrip())
    add('```')
    add('')
    add('Medians over the runs; "ratio" is chat-server / best peer. Runs whose '
        'delivery ratio was not exactly 1 or that dropped clients are marked '
        'and left out of the medians. A run is *disturbed* when other '
        'processes on the machine took more than %.1f cores during its '
        'measured window; disturbed runs are left out of a median when '
        'undisturbed runs of the same case exist.' % DISTURBED)
    add('')

    # ---- fan-out ----
    fan = {}
    sizes = set()
    for name, r in runs(raw, 'fanout-*.json'):
        m = re.match(r'fanout-(\w+)-(\d+)-r(\d+)\.json', name)
        if not m:
            continue
        s, n = m.group(1), int(m.group(2))
        sizes.add(n)
        fan.setdefault((s, n), []).append(r)
    targets = []
    if fan:
        add('## Fan-out deliveries/s (closed loop, 10 senders, 64-byte '
            'payloads, window 8)')
        add('')
        add('| clients | ' + ' | '.join(LABEL[s] for s in SERVERS) +
            ' | best peer | ratio | target ≥ 1.2× |')
        add('|' + ' --- |' * (len(SERVERS) + 4))
        for n in sorted(sizes):
            meds = {}
            cells = []
            for s in SERVERS:
                rs = fan.get((s, n), [])
                use = usable(rs)
                bad = len([r for r in rs if not r.get('ok')])
                dist = len([r for r in rs if r.get('ok') and disturbed(r)])
                meds[s] = med([r['deliveries_per_s'] for r in use])
                c = fmt_int(meds[s])
                if rs:
                    notes = ['%d run%s' % (len(rs), '' if len(rs) == 1 else 's')]
                    if bad:
                        notes.append('%d not ok' % bad)
                    if dist:
                        notes.append('%d disturbed%s' % (
                            dist, ', used' if use and disturbed(use[0])
                            else ', left out'))
                    c += ' (%s)' % ', '.join(notes)
                cells.append(c)
            peers = [(meds[s], s) for s in PEERS if meds.get(s) is not None]
            best = max(peers) if peers else None
            ratio = (meds['chat'] / best[0]
                     if best and meds.get('chat') is not None else None)
            ok = ratio is not None and ratio >= 1.2
            # a lead over a peer that was waiting, not working, is not one
            idle = [LABEL[s] for s in PEERS if meds.get(s) is not None and
                    (med([server_cpu(r) for r in usable(fan.get((s, n), []))])
                     or 0) < CPU_BOUND]
            targets.append(('fan-out deliveries/s (--ack all) at %d clients '
                            '≥ 1.2× best peer' % n,
                            '%s× (%s vs %s %s)%s' % (
                                fmt(ratio, '%.2f'), fmt_int(meds.get('chat')),
                                LABEL[best[1]] if best else '—',
                                fmt_int(best[0]) if best else '—',
                                '; not CPU-bound: ' + ', '.join(idle)
                                if idle else ''),
                            None if ratio is None else
                            'uncounted' if ok and idle else ok))
            add('| %d | %s | %s | %s | %s |' % (
                n, ' | '.join(cells), LABEL[best[1]] if best else '—',
                fmt(ratio, '%.2f×'),
                '—' if ratio is None else verdict(ok)))
        add('')
        add('Server and generator CPU in the same runs (median, % of one '
            'core; the server is pinned to CPU 0, chat-bench to CPU 1), and '
            'the most CPU that other processes took in any run (cores, '
            'of 2):')
        add('')
        add('| clients | ' + ' | '.join(LABEL[s] for s in SERVERS) + ' |')
        add('|' + ' --- |' * (len(SERVERS) + 1))
        for n in sorted(sizes):
            cells = []
            for s in SERVERS:
                rs = usable(fan.get((s, n), []))
                if not rs:
                    cells.append('—')
                    continue
                cells.append('server %s / bench %s / others ≤ %.2f' % (
                    fmt(med([100 * r.get('server_cpu', 0) for r in rs]),
                        '%.0f %%'),
                    fmt(med([100 * r.get('bench_cpu', 0) for r in rs]),
                        '%.0f %%'),
                    max(others(r) for r in rs)))
            add('| %d | %s |' % (n, ' | '.join(cells)))
        add('')
        add('Closed-loop latency (same runs), median of the runs\' p99 in '
            'microseconds:')
        add('')
        add('| clients | ' + ' | '.join(LABEL[s] for s in SERVERS) + ' |')
        add('|' + ' --- |' * (len(SERVERS) + 1))
        for n in sorted(sizes):
            add('| %d | %s |' % (n, ' | '.join(
                fmt_int(med([r['latency_us']['p99']
                             for r in usable(fan.get((s, n), []))]))
                for s in SERVERS)))
        add('')
        # plot data
        with open(os.path.join(outdir, 'fanout.dat'), 'w') as f:
            f.write('# clients ' + ' '.join(SERVERS) + ' (deliveries/s)\n')
            for n in sorted(sizes):
                f.write('%d %s\n' % (n, ' '.join(
                    fmt(med([r['deliveries_per_s']
                             for r in usable(fan.get((s, n), []))]),
                        '%.1f').replace('—', 'NaN')
                    for s in SERVERS)))
        with open(os.path.join(outdir, 'p99.dat'), 'w') as f:
            f.write('# clients ' + ' '.join(SERVERS) + ' (p99 ms, closed loop)\n')
            for n in sorted(sizes):
                f.write('%d %s\n' % (n, ' '.join(
                    fmt(med([r['latency_us']['p99'] / 1000.0
                             for r in usable(fan.get((s, n), []))]),
                        '%.3f').replace('—', 'NaN') for s in SERVERS)))

    # ---- the three figures: window --ack all, window --ack one, capacity ----
    figs = [('fanout', 'window 8, --ack all (closed loop)'),
            ('ackone', 'window 8, --ack one (closed loop, one observer)'),
            ('capacity', 'open-loop capacity (no loss, p99 ≤ 50 ms)')]
    data = {}
    fsizes = set()
    for kind, _ in figs:
        for name, r in runs(raw, kind + '-*.json'):
            m = re.match(kind + r'-(\w+)-(\d+)-r(\d+)\.json', name)
            if m and m.group(1) in LABEL:
                n = int(m.group(2))
                fsizes.add(n)
                data.setdefault((kind, m.group(1), n), []).append(r)
    if any(k[0] != 'fanout' for k in data):
        add('## The three figures: deliveries/s by rule')
        add('')
        add('Medians over the runs, with the server\'s median CPU (share of '
            'its core; for capacity, at the capacity step). A server below '
            '%d %% is marked *not CPU-bound*: it was waiting, not working, '
            'and a lead over it is not counted. Capacity is the highest '
            'fixed total rate at which every receiver got every message '
            'with p99 ≤ 50 ms, found by bisection; "≥" marks a search that '
            'the generator, not the server, stopped (a step failed while '
            'chat-bench was over its lag or CPU bound: the server may carry '
            'more). chat-bench\'s own CPU is shown too: at %d %% or more '
            'of its core it is *generator-bound*, and the server\'s figure '
            'is what one generator core could drive, a lower bound on '
            'its peak.' % (100 * CPU_BOUND, 100 * GEN_BOUND))
        add('')
        for kind, title in figs:
            if not any(k[0] == kind for k in data):
                continue
            with open(os.path.join(outdir, 'fig-%s.dat' % kind), 'w') as f:
                f.write('# clients ' + ' '.join(SERVERS) +
                        ' (deliveries/s, median: %s)\n' % title)
                for n in sorted(fsizes):
                    f.write('%d %s\n' % (n, ' '.join(
                        fmt(med([figure(r) for r in
                                 usable(data.get((kind, s, n), []))]),
                            '%.1f').replace('—', 'NaN') for s in SERVERS)))
            add('### %s' % title)
            add('')
            add('| clients | ' + ' | '.join(LABEL[s] for s in SERVERS) +
                ' | best peer | ratio | ≥ 1.2× |')
            add('|' + ' --- |' * (len(SERVERS) + 4))
            for n in sorted(fsizes):
                meds, cpus, cells, genbound = {}, {}, [], set()
                for s in SERVERS:
                    rs = data.get((kind, s, n), [])
                    use = usable(rs)
                    meds[s] = med([figure(r) for r in use])
                    cpus[s] = med([server_cpu(r) for r in use
                                   if server_cpu(r) >= 0])
                    if meds[s] is None:
                        cells.append('—' if not rs else
                                     '— (%d not ok)' % len(rs))
                        continue
                    notes = ['%d run%s' % (len(rs), '' if len(rs) == 1
                                           else 's')]
                    if cpus[s] is not None:
                        notes.append('CPU %.0f %%' % (100 * cpus[s]))
                        if cpus[s] < CPU_BOUND:
                            notes.append('*not CPU-bound*')
                    gcpu = med([bench_cpu(r) for r in use
                                if bench_cpu(r) >= 0])
                    if gcpu is not None:
                        notes.append('chat-bench %.0f %%' % (100 * gcpu))
                        if gcpu >= GEN_BOUND:
                            notes.append('*generator-bound*')
                            genbound.add(s)
                    if kind == 'capacity':
                        notes.append('p99 %s µs' % fmt_int(med(
                            [r['capacity_p99_us'] for r in use])))
                    gen = kind == 'capacity' and any(
                        r.get('generator_limited') for r in use)
                    cells.append('%s%s (%s)' % ('≥ ' if gen else '',
                                                fmt_int(meds[s]),
                                                ', '.join(notes)))
                peers = [(meds[s], s) for s in PEERS if meds.get(s) is not None]
                best = max(peers) if peers else None
                ratio = (meds['chat'] / best[0] if best and best[0] and
                         meds.get('chat') is not None else None)
                idle = [LABEL[s] for _, s in peers
                        if cpus.get(s) is not None and cpus[s] < CPU_BOUND]
                if ratio is None:
                    v, ok = '—', None
                elif ratio < 1.2 and 'chat' in genbound:
                    v, ok = ('NOT met (chat-bench was the limit: '
                             'chat-server\'s figure is a lower bound)'), False
                elif ratio < 1.2:
                    v, ok = 'NOT met', False
                elif idle and kind == 'capacity' and quickack:
                    # Open loop with no delayed ACKs: nothing of the
                    # generator's makes a server wait, so a peer that
                    # failed its p99 bound below its core's limit failed
                    # on its own latency.
                    v, ok = ('met (%s not CPU-bound: its own p99 passed '
                             'the bound first)' % ', '.join(idle)), True
                elif idle:
                    v, ok = ('not counted (%s not CPU-bound)' %
                             ', '.join(idle)), None
                else:
                    v, ok = 'met', True
                add('| %d | %s | %s | %s | %s |' % (
                    n, ' | '.join(cells), LABEL[best[1]] if best else '—',
                    fmt(ratio, '%.2f×'), v))
                if ratio is not None and kind != 'fanout':
                    targets.append((
                        '%s at %d clients ≥ 1.2× best peer' % (
                            {'fanout': 'window --ack all',
                             'ackone': 'window --ack one',
                             'capacity': 'capacity'}[kind], n),
                        '%s× (%s vs %s %s)%s' % (
                            fmt(ratio, '%.2f'), fmt_int(meds['chat']),
                            LABEL[best[1]], fmt_int(best[0]),
                            '; not CPU-bound: ' + ', '.join(idle)
                            if idle else ''),
                        ok if ok is not None else (
                            None if ratio is None else 'uncounted')))
            add('')
        if any(k[0] == 'capacity' for k in data):
            add('Capacity searches (each run: the steps tried, total msgs/s, '
                'verdict):')
            add('')
            add('| run | capacity msgs/s | stopped by | steps |')
            add('| --- | --- | --- | --- |')
            for name, r in runs(raw, 'capacity-*.json'):
                add('| %s | %s | %s | %s |' % (
                    name[:-5], fmt(r.get('capacity_rate'), '%.0f'),
                    'generator' if r.get('generator_limited') else
                    r.get('bound', '—'),
                    ', '.join('%.0f %s' % (st['rate'], st['verdict'])
                              for st in r.get('steps', []))))
            add('')

    # ---- latency at half peak, and at a common load ----
    lat = latency_table(raw, 'latency', add, targets)
    latency_table(raw, 'common', add, targets)
    latency_table(raw, 'prior', add, targets)

    # ---- load sweep ----
    sweep = []
    for name, r in runs(raw, 'sweep-chat-*.json'):
        m = re.match(r'sweep-chat-(\d+)-f([0-9.]+)\.json', name)
        if m:
            sweep.append((float(m.group(2)), r))
    if sweep:
        sweep.sort(key=lambda x: x[0])
        peak = med([r['deliveries_per_s'] for r in
                    usable(fan.get(('chat', sweep[0][1]['clients']), []))])
        add('## chat-server latency against offered load (%d clients, fixed '
            'rate, 1 run each)' % sweep[0][1]['clients'])
        add('')
        add('Load as a fraction of chat-server\'s closed-loop peak above '
            '(%s deliveries/s); the half-peak row is the median of the '
            'latency runs.' % fmt_int(peak))
        add('')
        add('| load | msgs/s per sender | deliveries/s | server CPU | p50 µs | '
            'p99 µs | p99.9 µs | max µs | others (cores) |')
        add('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
        rows = [(f, [r]) for f, r in sweep]
        if lat.get('chat'):
            rows.append((0.5, usable(lat['chat'])))
        rows.sort(key=lambda x: x[0])
        best = None
        for f, rs in rows:
            q = lambda k: med([r['latency_us'][k] for r in rs])
            add('| %.2f | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                f, fmt(med([r['rate'] for r in rs]), '%.1f'),
                fmt_int(med([r['deliveries_per_s'] for r in rs])),
                fmt(med([100 * r.get('server_cpu', 0) for r in rs]), '%.0f %%'),
                fmt_int(q('p50')), fmt_int(q('p99')), fmt_int(q('p999')),
                fmt_int(q('max')),
                fmt(max(others(r) for r in rs), '%.2f')))
            if q('p99') is not None and q('p99') < 5000 and all(
                    r.get('ok') for r in rs):
                best = (f, med([r['deliveries_per_s'] for r in rs]))
        add('')
        lo = rows[0]
        targets.append(('(context, not a target) highest measured load with '
                        'p99 < 5 ms at %d clients' % sweep[0][1]['clients'],
                        ('%.2f of peak (%s deliveries/s)' % best) if best else
                        'none: at the lowest, %.2f of peak, p99 is %s ms' % (
                            lo[0], fmt(med([r['latency_us']['p99']
                                            for r in lo[1]]) / 1000, '%.1f')),
                        'context'))

    # ---- the kernel's floor ----
    floor = [r for _, r in runs(raw, 'floor-*.json')]
    if floor:
        n = floor[0]['clients']
        p50 = med([r['sweep_ms']['p50'] for r in floor])
        add('## The floor: one core sending to %d loopback connections (no '
            'server)' % n)
        add('')
        add('`chat-bench floor` on the server\'s CPU: sweeps of one %d-byte '
            'send to each of %d loopback TCP connections, the send calls that '
            'one message to the other clients of the latency runs costs any '
            'one-thread server (%d runs of 200 sweeps).' % (
                floor[0]['size'], n, len(floor)))
        add('')
        add('| run | sweep p10 ms | sweep p50 ms | sweep p90 ms | µs per send |')
        add('| --- | --- | --- | --- | --- |')
        for i, r in enumerate(floor, 1):
            add('| %d | %.2f | %.2f | %.2f | %.2f |' % (
                i, r['sweep_ms']['p10'], r['sweep_ms']['p50'],
                r['sweep_ms']['p90'], r['us_per_send']))
        add('')
        targets.append(('(context, not a target) one core\'s floor for one '
                        'message to %d recipients' % n,
                        '%.2f ms per sweep (median of p50s)' % p50, 'context'))

    # ---- window sensitivity ----
    win = {}
    for name, r in runs(raw, 'window64-*.json'):
        m = re.match(r'window64-(\w+)-(\d+)-r\d+\.json', name)
        if m:
            win[m.group(1)] = r
    if win:
        add('## Sensitivity: window 64 instead of 8 at 100 clients (1 run)')
        add('')
        add('| server | deliveries/s, window 64 | window 8 (median) | '
            'server CPU, window 64 | server CPU, window 8 (median) | '
            'p99 µs, window 64 |')
        add('| --- | --- | --- | --- | --- | --- |')
        for s in SERVERS:
            r = win.get(s)
            if not r:
                continue
            w8 = [x for x in fan.get((s, 100), []) if x.get('ok')]
            add('| %s | %s%s | %s | %s | %s | %s |' % (
                LABEL[s], fmt_int(r['deliveries_per_s']),
                '' if r.get('ok') else ' (NOT ok)',
                fmt_int(med([x['deliveries_per_s'] for x in w8])),
                fmt(100 * r.get('server_cpu', 0), '%.0f %%'),
                fmt(med([100 * x.get('server_cpu', 0) for x in w8]), '%.0f %%'),
                fmt_int(r['latency_us']['p99'])))
        add('')

    # ---- idle ----
    idle = {}
    for name, r in runs(raw, 'idle-*.json'):
        m = re.match(r'idle-(\w+)-(\d+)\.json', name)
        if m:
            idle[m.group(1)] = r
    if idle:
        n = next(iter(idle.values()))['clients']
        add('## Idle clients: server RSS per client (%d clients)' % n)
        add('')
        add('| server | clients | RSS before KiB | RSS after KiB | '
            'bytes per client | connect+register/s | ok |')
        add('| --- | --- | --- | --- | --- | --- | --- |')
        for s in SERVERS:
            r = idle.get(s)
            if not r:
                continue
            what = ('registered, no JOIN' if r.get('joined') is False else
                    'registered, joined' if s in ('inspircd', 'ngircd') else
                    'subscribed' if s == 'nats' else 'registered (one room)')
            add('| %s | %s | %s | %s | %s | %s | %s |' % (
                LABEL[s], what, fmt_int(r['rss_before_kib']),
                fmt_int(r['rss_hold_kib']),
                fmt_int(r['rss_per_client_bytes']),
                fmt_int(r['connects_per_s']), 'yes' if r['ok'] else 'NO'))
            if s == 'chat':
                v = r['rss_per_client_bytes']
                targets.append(('idle RSS per client at %d clients < 2 KiB' % n,
                                '%s bytes' % fmt_int(v),
                                v < 2048 if r['ok'] else None))
        add('')

    # ---- transfer ----
    xs = {'direct': [], 'relay': [], 'socat': [], 'socat-b256k': []}
    for name, r in runs(raw, 'transfer-*.json'):
        m = re.match(r'transfer-(\w+)-r\d+\.json', name)
        if m and m.group(1) in xs:
            xs[m.group(1)].append(r)
    xs['socat'] = [r for _, r in runs(raw, 'socat-r*.json')]
    xs['socat-b256k'] = [r for _, r in runs(raw, 'socat-b256k-r*.json')]
    if any(xs.values()):
        size = None
        for v in xs.values():
            if v:
                size = v[0]['bytes']
                break
        add('## File transfer (%s MiB, loopback)' % fmt(size / 1048576.0))
        add('')
        add('| path | MiB/s (median) | runs | verified | vs socat | '
            'vs socat -b 262144 | server RSS growth KiB | '
            'owner/sender RSS KiB | requester/receiver RSS KiB |')
        add('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
        socat = med([r['mib_per_s'] for r in xs['socat'] if r.get('ok')])
        socat_b = med([r['mib_per_s'] for r in xs['socat-b256k']
                       if r.get('ok')])
        for k in ('socat', 'socat-b256k', 'direct', 'relay'):
            rs = xs[k]
            if not rs:
                continue
            good = [r for r in rs if r.get('ok')]
            v = med([r['mib_per_s'] for r in good])
            ratio = v / socat if v is not None and socat else None
            ratio_b = v / socat_b if v is not None and socat_b else None
            if k.startswith('socat'):
                grow = ('—', 'peak %s' %
                        fmt_int(max(r['sender_rss_peak_kib'] for r in rs)),
                        'peak %s' %
                        fmt_int(max(r['receiver_rss_peak_kib'] for r in rs)))
            else:
                grow = (fmt_int(max(r['server_rss_peak_kib'] -
                                    r['server_rss_base_kib'] for r in rs)),
                        '+%s (peak %s)' % (
                            fmt_int(max(r['owner_rss_peak_kib'] -
                                        r['owner_rss_base_kib'] for r in rs)),
                            fmt_int(max(r['owner_rss_peak_kib'] for r in rs))),
                        '+%s (peak %s)' % (
                            fmt_int(max(r['requester_rss_peak_kib'] -
                                        r['requester_rss_base_kib']
                                        for r in rs)),
                            fmt_int(max(r['requester_rss_peak_kib']
                                        for r in rs))))
            add('| %s | %s | %d | %s | %s | %s | %s | %s | %s |' % (
                k if k != 'socat-b256k' else 'socat -b 262144',
                fmt(v, '%.1f'), len(rs),
                'all' if len(good) == len(rs) else '%d of %d' % (len(good),
                                                                 len(rs)),
                fmt(ratio, '%.2f×'), fmt(ratio_b, '%.2f×'), *grow))
            if k in ('direct', 'relay'):
                want = 0.9 if k == 'direct' else 0.75
                targets.append(('transfer %s ≥ %.2f× socat' % (k, want),
                                fmt(ratio, '%.2f×'),
                                None if ratio is None else ratio >= want))
        growth = [max(r['server_rss_peak_kib'] - r['server_rss_base_kib'],
                      r['owner_rss_peak_kib'] - r['owner_rss_base_kib'],
                      r['requester_rss_peak_kib'] - r['requester_rss_base_kib'])
                  for k in ('direct', 'relay') for r in xs[k]]
        if growth:
            g = max(growth)
            targets.append(('RSS flat during transfer (peak growth of server '
                            'and both clients ≤ 8 MiB)',
                            '%s KiB max growth' % fmt_int(g), g <= 8192))
        add('')

    if targets:
        add('## Targets')
        add('')
        add('| target | measured | verdict |')
        add('| --- | --- | --- |')
        for t, v, ok in targets:
            add('| %s | %s | %s |' % (t, v, 'not measured' if ok is None
                                      else '—' if ok == 'context'
                                      else 'not counted (a peer is not '
                                      'CPU-bound)' if ok == 'uncounted'
                                      else verdict(ok)))
        add('')

    # ---- runs ----
    add('## All runs')
    add('')
    add('| run | result |')
    add('| --- | --- |')
    for p in sorted(glob.glob(os.path.join(raw, '*.json'))):
        add('| %s | %s |' % (os.path.basename(p)[:-5], brief(p)))
    add('')
    with open(os.path.join(outdir, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines))
    plots(outdir)
    print(os.path.join(outdir, 'summary.md'))


def latency_table(raw, kind, add, targets):
    """The fixed-rate runs `kind`-SERVER-N-rR.json as a table; returns them
    by server. kind 'latency': each server at half of its own peak; kind
    'common': every server at the same rate, half of the best peer's; kind
    'prior': chat-server at the load of its half peak before issue 11.
    Runs made with --arrival also show latency to the kernel's receive
    stamp, which leaves out chat-bench's own lag in reading."""
    lat = {}
    for name, r in runs(raw, kind + '-*.json'):
        m = re.match(kind + r'-(\w+)-(\d+)-r(\d+)\.json', name)
        if m:
            lat.setdefault(m.group(1), []).append(r)
    if not lat:
        return lat
    n = next(iter(lat.values()))[0]['clients']
    if kind == 'latency':
        add('## Latency at half of each server\'s peak rate (%d clients, '
            'fixed rate)' % n)
    elif kind == 'prior':
        add('## chat-server at the load of its half peak before issue 11 '
            '(%d clients, %s msgs/s per sender)' % (
                n, fmt(med([r['rate'] for rs in lat.values() for r in rs]),
                       '%.1f')))
    else:
        rate = med([r['rate'] for rs in lat.values() for r in rs])
        add('## Latency at a common load: every server at half of the best '
            'peer\'s peak (%d clients, %s msgs/s per sender, %s '
            'deliveries/s offered)' % (
                n, fmt(rate, '%.1f'),
                fmt_int(None if rate is None else
                        rate * next(iter(lat.values()))[0]['senders'] *
                        (n - 1))))
    add('')
    add('| server | msgs/s per sender | deliveries/s | server CPU | '
        'chat-bench CPU | p50 µs | p99 µs | p99.9 µs | max µs | '
        'arrival p50 µs | arrival p99 µs | runs |')
    add('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- '
        '| --- |')
    p99s = {}
    arr99s = {}
    for s in SERVERS:
        rs = lat.get(s)
        if not rs:
            continue
        good = usable(rs)
        dist = len([r for r in rs if r.get('ok') and disturbed(r)])
        q = lambda k: med([r['latency_us'][k] for r in good])
        qa = lambda k: med([r['arrival_us'][k] for r in good
                            if 'arrival_us' in r])
        p99s[s] = q('p99')
        arr99s[s] = qa('p99')
        add('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d%s |'
            % (
            LABEL[s], fmt(med([r['rate'] for r in rs]), '%.1f'),
            fmt_int(med([r['deliveries_per_s'] for r in good])),
            fmt(med([100 * r.get('server_cpu', 0) for r in good]), '%.0f %%'),
            fmt(med([100 * r.get('bench_cpu', 0) for r in good]), '%.0f %%'),
            fmt_int(q('p50')), fmt_int(q('p99')), fmt_int(q('p999')),
            fmt_int(q('max')), fmt_int(qa('p50')), fmt_int(qa('p99')),
            len(rs),
            (' (%d not ok)' % len([r for r in rs if not r.get('ok')])
             if any(not r.get('ok') for r in rs) else '') +
            (' (%d disturbed%s)' % (dist, ', used' if good and
                                    disturbed(good[0]) else ', left out')
             if dist else '')))
    add('')
    p99 = p99s.get('chat')
    if kind == 'latency':
        targets.append(('p99 at %d clients at half peak < 5 ms' % n,
                        '%s ms' % fmt(None if p99 is None else p99 / 1000,
                                      '%.2f'),
                        None if p99 is None else p99 < 5000))
        targets.append(('p99 at %d clients at half peak ≤ 12.2 ms (no worse '
                        'than before issue 11)' % n,
                        '%s ms' % fmt(None if p99 is None else p99 / 1000,
                                      '%.2f'),
                        None if p99 is None else p99 <= 12200))
    elif kind == 'prior':
        targets.append(('p99 at %d clients at the pre-issue-11 half-peak load '
                        '≤ 12.2 ms' % n,
                        '%s ms (to the receive stamp %s ms)' % (
                            fmt(None if p99 is None else p99 / 1000, '%.2f'),
                            fmt(None if arr99s.get('chat') is None else
                                arr99s['chat'] / 1000, '%.2f')),
                        None if p99 is None else p99 <= 12200))
    else:
        peers = [(v, s) for s, v in p99s.items() if s != 'chat' and
                 v is not None]
        best = min(peers) if peers else None
        ratio = p99 / best[0] if p99 is not None and best else None
        targets.append(('p99 at %d clients at a common load ≤ 0.25× the best '
                        'peer\'s' % n,
                        '%s× (%s ms vs %s %s ms)' % (
                            fmt(ratio, '%.3f'),
                            fmt(None if p99 is None else p99 / 1000, '%.2f'),
                            LABEL[best[1]] if best else '—',
                            fmt(best[0] / 1000 if best else None, '%.2f')),
                        None if ratio is None else ratio <= 0.25))
        apeers = [(v, s) for s, v in arr99s.items() if s != 'chat' and
                  v is not None]
        abest = min(apeers) if apeers else None
        a99 = arr99s.get('chat')
        if a99 is not None and abest:
            targets.append(('(context) the same, to the kernel\'s receive '
                            'stamp (chat-bench\'s read lag left out)',
                            '%s× (%s ms vs %s %s ms)' % (
                                fmt(a99 / abest[0], '%.3f'),
                                fmt(a99 / 1000, '%.2f'), LABEL[abest[1]],
                                fmt(abest[0] / 1000, '%.2f')),
                            a99 / abest[0] <= 0.25))
    return lat


def plots(outdir):
    if not shutil.which('gnuplot'):
        return
    cols = {'chat': 2, 'nats': 3, 'inspircd': 4, 'ngircd': 5}
    for dat, png, ylabel, title in (
            ('fanout.dat', 'fanout.png', 'deliveries per second',
             'Fan-out throughput (10 senders, 64 B, window 8)'),
            ('fig-fanout.dat', 'fig-fanout.png', 'deliveries per second',
             'Window 8, --ack all (10 senders, 64 B)'),
            ('fig-ackone.dat', 'fig-ackone.png', 'deliveries per second',
             'Window 8, --ack one (10 senders, 64 B)'),
            ('fig-capacity.dat', 'fig-capacity.png', 'deliveries per second',
             'Open-loop capacity (no loss, p99 <= 50 ms)'),
            ('p99.dat', 'p99.png', 'p99 latency (ms)',
             'Closed-loop p99 delivery latency (same runs)')):
        path = os.path.join(outdir, dat)
        if not os.path.exists(path):
            continue
        plot = ', '.join("'%s' using 1:%d with linespoints lw 2 pt 7 "
                         "title '%s'" % (dat, cols[s], LABEL[s])
                         for s in SERVERS)
        script = '\n'.join([
            'set terminal pngcairo size 900,560 font ",11"'
            if _has_cairo() else 'set terminal png size 900,560',
            "set output '%s'" % png,
            "set title '%s'" % title,
            "set xlabel 'clients'", "set ylabel '%s'" % ylabel,
            'set logscale x', 'set logscale y', 'set grid',
            'set key outside right', 'set datafile missing "NaN"',
            'set format y "%.0s%c"' if dat != 'p99.dat' else '',
            'plot ' + plot, ''])
        subprocess.run(['gnuplot'], input=script, text=True, cwd=outdir,
                       stderr=subprocess.DEVNULL, check=False)


def _has_cairo():
    try:
        r = subprocess.run(['gnuplot', '-e', 'set terminal'],
                           capture_output=True, text=True, timeout=10)
        return 'pngcairo' in (r.stdout + r.stderr)
    except (OSError, subprocess.SubprocessError):
        return False


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == 'brief':
        print(brief(a[1]))
    elif len(a) in (5, 6) and a[0] == 'halfrate':
        halfrate(*a[1:])
    elif len(a) == 4 and a[0] == 'commonrate':
        commonrate(*a[1:])
    elif len(a) == 4 and a[0] == 'startrate':
        startrate(*a[1:])
    elif len(a) == 2 and a[0] == 'disturbed':
        r = load(a[1])
        sys.exit(0 if r is not None and r.get('mode') in (
            'fanout', 'capacity') and disturbed(r) else 1)
    elif len(a) == 2 and a[0] == 'summary':
        summary(a[1])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
