#!/usr/bin/env python3
"""End-to-end hardening tests: hostile peers, limits, floods, slow
consumers, shutdown, churn and resource exhaustion.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_hostile.py -v
Run one:   ... python3 test/e2e/test_hostile.py -v \
               HostileBytesTest.test_nul_byte_in_message_refused_with_bad_text
Check that meson.build registers every test (as 'hostile:Class.test_method'):
           python3 test/e2e/test_hostile.py --check-meson test/e2e/meson.build

Every hostile-bytes test ends by checking that the server still serves (two
fresh clients chat both ways) and that the clients connected before the
attack (a real chat-client and a raw socket) still send and receive.

Raw connections here go to 127.0.0.1 (so that per-address limits and source
addresses are exact). Memory is read from /proc/<pid>/status (VmRSS) and
CPU time from /proc/<pid>/stat; the numbers are printed on stdout. Under
CHAT_TEST_WRAPPER (valgrind) the byte and cycle counts are scaled down and
the RSS bounds are reported, not asserted (valgrind's own memory dominates).
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import (  # noqa: E402
    CHAT_CLIENT, CHAT_SERVER, WRAPPER, ChatTestCase, Client, LineSocket,
    Process, Server, free_port, scaled, welcome_re)

MIB = 1024 * 1024
KIB = 1024
LOOPBACK = '127.0.0.1'
BAD_TEXT = re.compile(r'^! bad-text( |$)')
ANY_ERROR = re.compile(r'^! ')
SYNC_ANSWER = re.compile(r'^! unknown-command( |$)')
WRAPPED = bool(WRAPPER)


# ---- /proc readings ---------------------------------------------------------

def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS)."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User plus system CPU time pid has used, in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        data = f.read()
    fields = data[data.rindex(')') + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def read_chars(pid):
    """Bytes pid has read so far (rchar in /proc/<pid>/io), or None."""
    try:
        with open('/proc/%d/io' % pid) as f:
            for line in f:
                if line.startswith('rchar:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def report(what, **numbers):
    """One line of measurements on stdout."""
    print('[hostile] %s: %s' % (what, ', '.join(
        '%s=%s' % (k, ('%.2f' % v) if isinstance(v, float) else v)
        for k, v in numbers.items())), flush=True)


# ---- processes with resource limits -----------------------------------------

# setrlimit in the child, then exec: the same as preexec_fn, but it leaves
# the harness's Process (and its log files) untouched. The wrapper (valgrind)
# comes after the shim, so it still wraps the chat program.
RLIMIT_SHIM = ('import os, resource, sys\n'
               'n = int(sys.argv[2])\n'
               'resource.setrlimit(getattr(resource, sys.argv[1]), (n, n))\n'
               'os.execvp(sys.argv[3], sys.argv[3:])\n')


def rlimit_argv(limit, value, program, args):
    return ([sys.executable, '-c', RLIMIT_SHIM, limit, str(value)] +
            list(WRAPPER) + [program] + list(args))


class LimitedServer(Server):
    """chat-server started with one resource limit (soft = hard)."""

    def __init__(self, case, args, limit, value, label='server-limited'):
        Process.__init__(self, case,
                         rlimit_argv(limit, value, CHAT_SERVER, args), label,
                         stdin=subprocess.DEVNULL, wrap=False)
        self.wrapped = WRAPPED
        self.port = None


class LimitedClient(Client):
    """chat-client started with one resource limit (soft = hard)."""

    def __init__(self, case, port, name, args, limit, value, label):
        Process.__init__(self, case,
                         rlimit_argv(limit, value, CHAT_CLIENT, args), label,
                         wrap=False)
        self.wrapped = WRAPPED
        self.name = name
        self.port = port


# ---- background threads -------------------------------------------------------

class RssSampler(threading.Thread):
    """Samples a process's RSS every few milliseconds; keeps the peak."""

    def __init__(self, pid, interval=0.005):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                value = rss_kib(self.pid)
            except OSError:
                break
            self.peak = max(self.peak, value)
            self.samples += 1
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(10)
        return self.peak


class SocketReader(threading.Thread):
    """Reads a socket in the background, counting chat lines by sender
    (counts). With keep, every complete line is kept too (bytes, without
    "\\n"). With pause, it reads in bursts: it drains
    whatever is there until nothing came for 50 ms, then sleeps pause
    seconds (a slow but keeping-up reader)."""

    def __init__(self, sock, keep=True, pause=None, initial=b'',
                 chunk=MIB, watch=()):
        super().__init__(daemon=True)
        self.sock = sock
        self.keep = keep
        self.pause = pause
        self.chunk = chunk
        self.buf = bytearray(initial)
        self.lines = []
        self.nbytes = 0
        self.eof = False
        self.error = None
        self.watch = set(watch)
        self.seen = set()
        self.counts = {}  # chat lines received, by sender name (bytes)
        self.halt = threading.Event()

    def _take(self, data):
        self.nbytes += len(data)
        self.buf += data
        if b'\n' not in data:
            return
        parts = self.buf.split(b'\n')
        self.buf = bytearray(parts.pop())
        counts = self.counts
        for p in parts:
            line = bytes(p)
            i = line.find(b': ')
            if i > 0:
                tag = line[:i]
                counts[tag] = counts.get(tag, 0) + 1
            if self.keep:
                self.lines.append(line)
            if line in self.watch:
                self.seen.add(line)

    def run(self):
        idle_since = time.monotonic()
        while not self.halt.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                if self.pause and time.monotonic() - idle_since >= 0.05:
                    self.halt.wait(self.pause)
                    idle_since = time.monotonic()
                continue
            try:
                data = self.sock.recv(self.chunk)
            except OSError as e:
                self.error = e
                break
            if not data:
                self.eof = True
                break
            idle_since = time.monotonic()
            self._take(data)

    def stop(self):
        self.halt.set()
        self.join(10)


def chat_payload(tag, i, size):
    """One message of size bytes including its "\\n", numbered i."""
    head = b'%s %06d ' % (tag, i)
    return head + b'x' * (size - 1 - len(head)) + b'\n'


class Sender(threading.Thread):
    """Writes count numbered messages of size bytes to a socket, per_chunk
    of them in one sendall; with pace, sleeps pace seconds after each; with
    gate, waits before the chunk starting at message i until gate(i) is
    true (flow control by the test: the receivers have caught up)."""

    def __init__(self, sock, tag, count, size=1000, per_chunk=500,
                 pace=None, gate=None, gate_timeout=30):
        super().__init__(daemon=True)
        self.sock = sock
        self.tag = tag
        self.count = count
        self.size = size
        self.per_chunk = per_chunk
        self.pace = pace
        self.gate = gate
        self.gate_timeout = gate_timeout
        self.error = None
        self.sent = 0

    def run(self):
        try:
            for start in range(0, self.count, self.per_chunk):
                if self.gate is not None:
                    deadline = time.monotonic() + self.gate_timeout
                    while not self.gate(start):
                        if time.monotonic() > deadline:
                            self.error = 'receivers stuck before message %d' \
                                % start
                            return
                        time.sleep(0.001)
                end = min(self.count, start + self.per_chunk)
                self.sock.sendall(b''.join(
                    chat_payload(self.tag, i, self.size)
                    for i in range(start, end)))
                self.sent = end
                if self.pace:
                    time.sleep(self.pace)
        except OSError as e:
            self.error = e


def expected_lines(tag, count, size):
    """The chat lines a receiver gets from Sender(tag, count, size), with
    the sender registered under the name tag."""
    return [tag + b': ' + chat_payload(tag, i, size)[:-1]
            for i in range(count)]


# ---- the base class -----------------------------------------------------------

class HostileCase(ChatTestCase):
    """Helpers: raw connections to 127.0.0.1 (optionally from another
    source address or with a small receive buffer), bystanders, and the
    check that the server still serves."""

    def setUp(self):
        super().setUp()
        self._fresh = 0
        self._threads = []
        self.addCleanup(self._stop_threads)  # runs before the harness's

    def _stop_threads(self):
        for t in self._threads:
            stop = getattr(t, 'stop', None)
            if stop is not None:
                stop()

    def thread(self, t):
        self._threads.append(t)
        t.start()
        return t

    def fresh_name(self, prefix='fresh'):
        self._fresh += 1
        return '%s%d' % (prefix, self._fresh)

    def connect(self, port, name=None, source=None, rcvbuf=None,
                label=None):
        """A LineSocket connected to 127.0.0.1:port; bound to source first
        when given, with SO_RCVBUF set before connecting when given;
        registered (welcome checked) when name is given."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source is not None:
                sock.bind((source, 0))
            sock.settimeout(scaled(10))
            sock.connect((LOOPBACK, port))
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        conn = LineSocket(self, sock, label or 'raw-%s' % (name or 'anon'))
        conn.name = None
        if name is not None:
            self.register(conn, name)
        return conn

    def register(self, conn, name):
        conn.name = name
        conn.send(name)
        line = conn.wait_line(re.compile(r'^(\* welcome |! )'))
        self.assertRegex(line, welcome_re(name),
                         '%r was not welcomed as %s' % (conn, name))
        return line

    def bystanders(self, server):
        """A real chat-client (alice) and a raw socket (bob), registered
        before whatever a test does next."""
        alice = self.start_client(server.port, 'alice')
        bob = self.connect(server.port, 'bob')
        alice.wait_for('* bob joined')
        return [alice, bob]

    def answers(self, conn):
        """Every error line conn got for what it sent so far: it sends a
        control line with an unknown verb and waits for that answer, which
        the server writes after the answers to everything before."""
        conn.send('\x01NOSUCHVERB')
        i = conn.wait_for(SYNC_ANSWER)
        return [l for l in conn.received[:i]
                if ANY_ERROR.search(l) and not SYNC_ANSWER.search(l)]

    def assert_serves(self, server, bystanders=(), sources=(None, None)):
        """The server is alive; two fresh clients chat both ways; each
        bystander (connected earlier) receives both and is heard by both."""
        self.assertTrue(server.alive(), 'the server died\n' +
                        server.describe())
        a = self.connect(server.port, self.fresh_name(), source=sources[0])
        b = self.connect(server.port, self.fresh_name(), source=sources[1])
        self.barrier(a, [b] + list(bystanders), 'fresh hello')
        self.barrier(b, [a] + list(bystanders), 'fresh reply')
        for x in bystanders:
            self.barrier(x, [a, b], 'bystander still here')
        return a, b

    def assert_not_forwarded(self, receivers, pattern):
        for r in receivers:
            self.assertNoLine(r, pattern, 'refused text was forwarded')

    def wait_until(self, what, predicate, timeout, detail=lambda: ''):
        deadline = time.monotonic() + scaled(timeout)
        while not predicate():
            if time.monotonic() >= deadline:
                self.fail('timeout (%.1fs): %s\n%s' % (scaled(timeout), what,
                                                      detail()))
            time.sleep(0.02)

    def refused_and_not_forwarded(self, payloads, marker, delay=0.0,
                                  lines=None):
        """Sends each payload (bytes, "\\n" included) from a raw client
        'evil' (lines: how many lines they make, default one each); each
        line must get exactly one "! bad-text" and nothing may reach the
        bystanders; then the server must still serve."""
        server = self.start_server()
        by = self.bystanders(server)
        evil = self.connect(server.port, 'evil')
        for p in payloads:
            evil.send_raw(p)
            if delay:
                time.sleep(delay)
        errors = self.answers(evil)
        count = len(payloads) if lines is None else lines
        self.assertEqual(len(errors), count,
                         'expected one answer per refused line; sent %r, '
                         'got %r' % (payloads, errors))
        for e in errors:
            self.assertRegex(e, BAD_TEXT, 'wrong answer; sent %r' %
                             (payloads,))
        self.barrier(evil, by, 'evil can still chat')
        self.assert_not_forwarded(by, re.compile(marker))
        self.assert_serves(server, by)


class TimedReader:
    """Reads a LineSocket and notes when each line arrived (monotonic)."""

    def __init__(self, case, conn):
        self.case = case
        self.conn = conn
        self.log = []  # (time, line)
        self.seen = len(conn.received)
        self.log += [(time.monotonic(), l) for l in conn.received]

    def until(self, predicate, timeout, what):
        deadline = time.monotonic() + scaled(timeout)
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.case.fail('timeout (%.1fs): %s; last lines: %r' % (
                    scaled(timeout), what,
                    [l for _, l in self.log[-10:]]))
            if self.conn.eof:
                self.case.fail('%r closed before %s' % (self.conn, what))
            ready, _, _ = select.select([self.conn.sock], [], [],
                                        min(remaining, 0.005))
            if ready:
                self.conn.pump()
            now = time.monotonic()
            for line in self.conn.received[self.seen:]:
                self.log.append((now, line))
            self.seen = len(self.conn.received)

    def has(self, line):
        return any(l == line for _, l in self.log)

    def time_of(self, line):
        for t, l in self.log:
            if l == line:
                return t
        return None

    def lines(self, prefix):
        return [l for _, l in self.log if l.startswith(prefix)]


# ---- hostile bytes --------------------------------------------------------------

class HostileBytesTest(HostileCase):
    """Bytes no client should send, from raw sockets."""

    def test_nul_byte_in_message_refused_with_bad_text(self):
        self.refused_and_not_forwarded(
            [b'nul in \x00 EVIL middle\n', b'\x00EVIL at start\n',
             b'EVIL at end\x00\n'], r'EVIL')

    def test_invalid_utf8_refused_with_bad_text(self):
        self.refused_and_not_forwarded([
            b'overlong slash \xc0\xaf EVIL\n',
            b'overlong 3-byte \xe0\x80\xaf EVIL\n',
            b'surrogate \xed\xa0\x80 EVIL\n',
            b'above U+10FFFF \xf4\x90\x80\x80 EVIL\n',
            b'truncated \xe2\x82 EVIL\n',
            b'lone continuation \x80 EVIL\n',
            b'latin-1 caf\xe9 EVIL\n',
            b'\xff\xfe EVIL bom-like\n',
            b'EVIL truncated at the end \xf0\x9f\x98\n',
        ], r'EVIL')

    def test_c0_controls_and_del_refused_with_bad_text(self):
        codes = [c for c in range(0x20) if c not in (0x09, 0x0a, 0x0d)]
        codes.append(0x7f)
        self.refused_and_not_forwarded(
            [b'EVIL %02x [' % c + bytes([c]) + b']\n' for c in codes],
            r'EVIL')

    def test_escape_sequences_refused_with_bad_text(self):
        self.refused_and_not_forwarded([
            b'EVIL clear \x1b[2J\x1b[H\n',
            b'EVIL colour \x1b[31mred\x1b[0m\n',
            b'EVIL title \x1b]0;pwned\x07\n',
            b'EVIL title st \x1b]2;pwned\x1b\\\n',
            b'EVIL reset \x1bc\n',
            b'\x1b[1AEVIL cursor up\n',
            b'EVIL 8-bit csi \xc2\x9b2J\n',
        ], r'EVIL')

    def test_lone_cr_in_the_middle_of_a_line_refused_with_bad_text(self):
        self.refused_and_not_forwarded([
            b'EVIL hidden\roverwritten\n',
            b'\rEVIL at start\n',
            b'EVIL two before newline\r\r\n',
            b'EVIL cr\rlf in the middle\r\n',
        ], r'EVIL|overwritten')

    def test_cr_ending_a_write_then_more_text_is_one_line_refused(self):
        # "hi\r" must not be taken for a line: the CR waits for what follows,
        # and "hi\rmore" has a lone CR in the middle
        self.refused_and_not_forwarded(
            [b'hi EVIL\r', b'more EVIL text', b'\n'], r'EVIL', delay=0.1,
            lines=1)

    def test_crlf_split_across_writes_forwarded_without_cr(self):
        server = self.start_server()
        by = self.bystanders(server)
        evil = self.connect(server.port, 'evil')
        evil.send_raw(b'split crlf\r')
        time.sleep(0.1)
        evil.send_raw(b'\n')
        self.assertEqual(by[1].wait_line(re.compile(r'^evil: ')),
                         'evil: split crlf')
        by[0].wait_for('evil: split crlf')
        self.assertEqual(self.answers(evil), [])
        self.assert_serves(server, by)

    @harness.slow
    def test_100mb_line_without_newline_gets_line_too_long_rss_bounded(self):
        server = self.start_server()
        by = self.bystanders(server)
        big = self.connect(server.port, 'big')
        total = (20 if WRAPPED else 100) * MIB
        chunk = b'A' * MIB
        base = peak = rss_kib(server.pid)
        read_before = read_chars(server.pid)
        big.sock.settimeout(scaled(60))
        sent = 0
        began = time.monotonic()
        try:
            while sent < total:
                big.sock.sendall(chunk)
                sent += len(chunk)
                peak = max(peak, rss_kib(server.pid))
        except socket.timeout:
            self.fail('the server stopped reading the long line after %d '
                      'MiB\n%s' % (sent // MIB, server.describe()))
        big.sock.settimeout(None)
        elapsed = time.monotonic() - began
        big.send_raw(b'\n')
        big.send('after the flood')
        for b in by:
            b.wait_for('big: after the flood', timeout=30)
        errors = self.answers(big)
        read_after = read_chars(server.pid)
        read = (None if read_before is None or read_after is None
                else read_after - read_before)
        report('%d MiB line' % (total // MIB), seconds=elapsed,
               server_read_bytes=read, rss_before_kib=base,
               rss_peak_kib=peak, rss_growth_kib=peak - base)
        if read is not None:
            self.assertGreaterEqual(read, total, 'the server did not read '
                                    'the whole line')
        self.assertEqual(len(errors), 1, 'expected exactly one answer to the '
                         'long line, got %r' % errors)
        self.assertRegex(errors[0], r'^! line-too-long( |$)')
        self.assert_not_forwarded(by, re.compile(r'AAAA'))
        if harness.memory_is_measurable(server.pid):
            self.assertLess(peak, 64 * KIB,
                            'server RSS reached %d KiB during the flood' %
                            peak)
        self.assert_serves(server, by)

    def test_silent_peer_gets_register_timeout_and_is_closed(self):
        server = self.start_server('--register-timeout', '2')
        by = self.bystanders(server)
        began = time.monotonic()
        silent = self.connect(server.port)
        line = silent.wait_line(re.compile(r'^! '), timeout=6)
        silent.wait_eof(timeout=3)
        closed = time.monotonic() - began
        report('register-timeout 2', closed_after_s=closed)
        self.assertRegex(line, r'^! register-timeout( |$)')
        self.assertGreaterEqual(closed, 1.5, 'closed too early')
        self.assertLessEqual(closed, scaled(4.0), 'closed too late')
        self.assertEqual([l for l in silent.received if l.strip()], [line],
                         'the silent peer got more than the one error')
        self.assert_serves(server, by)

    def test_peer_naming_itself_in_time_unaffected_by_register_timeout(self):
        server = self.start_server('--register-timeout', '2')
        by = self.bystanders(server)
        silent = self.connect(server.port)
        punctual = self.connect(server.port)
        time.sleep(1.0)
        self.register(punctual, 'punctual')
        silent.wait_eof(timeout=6)  # the deadline has passed for both
        time.sleep(1.5)
        self.barrier(punctual, by, 'still here')
        self.barrier(by[1], [punctual], 'hello punctual')
        self.assertNoLine(punctual, re.compile(r'^! '))
        self.assertFalse(punctual.eof, 'the punctual client was closed')
        self.assert_serves(server, by + [punctual])

    @staticmethod
    def reset_report(server, what):
        log = server.stderr_text()
        return ('%s. Every one of them closed with RST, but the server '
                'logged %d "closed by peer" and %d "connection reset by '
                'peer" disconnects: a reset that arrives together with the '
                'data is reported as EOF, and the unterminated tail is then '
                'handed out as if it were a line' % (
                    what, len(re.findall(r'disconnected: closed by peer',
                                         log)),
                    len(re.findall(r'disconnected: connection reset', log))))

    def test_resets_mid_line_many_in_a_row(self):
        server = self.start_server()
        by = self.bystanders(server)
        count = 40
        for i in range(count):
            r = self.connect(server.port, 'rst%d' % i)
            r.send_raw(b'partial EVIL line %d' % i)
            r.reset()
        for i in range(count):
            for b in by:
                b.wait_for('* rst%d left' % i, start=0)
        self.assert_serves(server, by)
        leaked = [l for l in by[1].pump() if 'EVIL' in l]
        self.assertEqual(leaked, [], self.reset_report(
            server, 'of %d peers that sent an unterminated line and then '
            'reset (RST), %d had it forwarded as a message' % (
                count, len(leaked))))
        self.assert_not_forwarded(by[:1], re.compile(r'EVIL'))

    def test_resets_mid_name_many_in_a_row(self):
        server = self.start_server()
        by = self.bystanders(server)
        for i in range(40):
            r = self.connect(server.port)
            if i % 4 == 0:
                pass  # reset with no byte sent
            elif i % 4 == 1:
                r.send_raw(b'\x01RELAY 0123')
            else:
                r.send_raw(b'halfname%d' % i)
            r.reset()
        self.assert_serves(server, by)
        joined = [l for l in by[1].pump() if re.match(r'^\* halfname\d+ '
                                                      r'joined$', l)]
        self.assertEqual(joined, [], self.reset_report(
            server, 'of 20 peers that sent part of a name (no newline) and '
            'then reset (RST), %d were registered under it (joined/left '
            'notices)' % len(joined)))
        self.assert_not_forwarded(by, re.compile(r'halfname|left|RELAY'))
        self.assertTrue(server.alive(), server.describe())

    def test_absurd_control_arguments_each_get_an_error_line(self):
        server = self.start_server()
        by = self.bystanders(server)
        lines = [
            '\x01GET 99999999999999999999 bob f',
            '\x01GET 1 ' + 'a' * 5000,
            '\x01FILEPORT 99999',
            '\x01SERVE-OK zzz',
        ]
        answer = re.compile(r'^(! |\x01GET-FAIL |\x01RELAY-FAIL )')
        missing = []
        conns = []
        for n, text in enumerate(lines):
            # one connection each, so that a missing answer cannot be
            # confused with the answer to another line
            c = self.connect(server.port, 'ctl%d' % n)
            c.send(text)
            conns.append((c, text))
        for c, text in conns:
            try:
                got = c.wait_line(answer, timeout=3)
            except AssertionError:
                missing.append(text[:60])
                continue
            self.assertRegex(got, r'^(! bad-command |\x01GET-FAIL )',
                             'answer to %r' % text[:60])
            # the connection stays usable
            self.barrier(c, by, 'after absurd control')
        self.assertTrue(server.alive(), server.describe())
        self.assert_serves(server, by)
        self.assertEqual(missing, [], 'control lines that got no error '
                         'line within 3 s (expected "! bad-command")')

    def test_relay_with_malformed_token_on_fresh_connection_gets_error(self):
        server = self.start_server()
        by = self.bystanders(server)
        fresh = self.connect(server.port)
        fresh.send('\x01RELAY x fetch')
        got = fresh.wait_line(re.compile(r'^(! |\x01RELAY-FAIL )'), timeout=3)
        self.assertRegex(got, r'^(! bad-command |\x01RELAY-FAIL )')
        if got.startswith('! '):
            # refused as a command, not as a leg: it may still register
            self.register(fresh, 'latecomer')
            self.barrier(fresh, by, 'registered after a bad relay')
        else:
            fresh.wait_eof()
        self.assert_serves(server, by)


# ---- connection limits ------------------------------------------------------------

class ConnectionLimitTest(HostileCase):
    """--max-clients and --max-per-ip."""

    def test_connection_over_max_clients_gets_server_full_and_is_closed(self):
        server = self.start_server('--max-clients', '3')
        a = self.connect(server.port, 'a')
        b = self.connect(server.port, 'b')
        c = self.connect(server.port, 'c')
        fourth = self.connect(server.port)
        line = fourth.wait_line(re.compile(r'^! '))
        self.assertRegex(line, r'^! server-full( |$)')
        fourth.wait_eof()
        self.barrier(a, [b, c], 'full but fine')
        b.close()
        c.close()
        a.wait_for('* b left', start=0)
        a.wait_for('* c left', start=0)
        self.assert_serves(server, [a])

    def test_slot_freed_by_leaving_client_lets_a_new_one_in(self):
        server = self.start_server('--max-clients', '3')
        a = self.connect(server.port, 'a')
        b = self.connect(server.port, 'b')
        c = self.connect(server.port, 'c')
        refused = self.connect(server.port)
        self.assertRegex(refused.wait_line(re.compile(r'^! ')),
                         r'^! server-full( |$)')
        refused.wait_eof()
        a.close()
        b.wait_for('* a left', start=0)
        d = self.connect(server.port, 'd')
        self.barrier(d, [b, c], 'got in')
        self.barrier(b, [d], 'welcome d')

    def test_third_connection_from_one_address_gets_too_many_connections(self):
        server = self.start_server('--max-per-ip', '2')
        a = self.connect(server.port, 'a', source='127.0.0.1')
        b = self.connect(server.port, 'b', source='127.0.0.1')
        third = self.connect(server.port, source='127.0.0.1')
        line = third.wait_line(re.compile(r'^! '))
        self.assertRegex(line, r'^! too-many-connections( |$)')
        third.wait_eof()
        self.assert_serves(server, [a, b],
                           sources=('127.0.0.3', '127.0.0.4'))

    def test_connection_from_another_address_accepted_at_per_ip_limit(self):
        server = self.start_server('--max-per-ip', '2')
        a = self.connect(server.port, 'a', source='127.0.0.1')
        b = self.connect(server.port, 'b', source='127.0.0.1')
        other = self.connect(server.port, 'other', source='127.0.0.2')
        self.barrier(other, [a, b], 'from another address')
        self.barrier(a, [other], 'hello other')
        self.assert_serves(server, [a, b, other],
                           sources=('127.0.0.3', '127.0.0.4'))


# ---- flood control ------------------------------------------------------------------

class FloodControlTest(HostileCase):
    """--rate/--burst pause reading a flooding client; nothing is dropped."""

    def start_flood(self, server, count, third=False):
        recv = self.connect(server.port, 'recv')
        extra = self.connect(server.port, 'third') if third else None
        flooder = self.connect(server.port, 'flooder')
        recv.wait_for('* flooder joined', start=0)
        texts = ['flooder: flood %04d' % i for i in range(count)]
        reader = TimedReader(self, recv)
        flooder.send_raw(''.join(t[len('flooder: '):] + '\n'
                                 for t in texts).encode())
        return reader, flooder, extra, texts

    @harness.slow
    def test_throttled_flood_delivered_complete_in_order_and_delayed(self):
        server = self.start_server('--rate', '10', '--burst', '5')
        reader, flooder, _, texts = self.start_flood(server, 40)
        reader.until(lambda: reader.has(texts[-1]), 20, 'the whole flood')
        got = reader.lines('flooder: ')
        self.assertEqual(got, texts, 'the flood arrived incomplete or out '
                         'of order')
        span = reader.time_of(texts[-1]) - reader.time_of(texts[0])
        report('rate 10 burst 5, 40 lines', first_to_last_s=span)
        self.assertGreaterEqual(span, 2.0, 'the flood was not slowed down')
        self.assertTrue(server.alive())

    @harness.slow
    def test_server_serves_others_while_a_flood_is_throttled(self):
        server = self.start_server('--rate', '10', '--burst', '5')
        reader, flooder, third, texts = self.start_flood(server, 40,
                                                         third=True)
        reader.until(lambda: reader.has(texts[9]), 20, 'ten flood lines')
        sent_at = time.monotonic()
        third.send('urgent')
        reader.until(lambda: reader.has('third: urgent'), 5,
                     'the third client\'s message')
        delay = reader.time_of('third: urgent') - sent_at
        flood_done = reader.has(texts[-1])
        report('message during a throttled flood', delay_s=delay,
               flood_already_done=flood_done)
        self.assertLess(delay, scaled(1.0), 'the server was slow to forward '
                        'another client\'s message during a flood')
        if not WRAPPED:
            self.assertFalse(flood_done, 'the flood was over before the '
                             'message went through: not a test of '
                             '"meanwhile"')
        reader.until(lambda: reader.has(texts[-1]), 20, 'the whole flood')
        self.assertEqual(reader.lines('flooder: '), texts)

    def test_rate_0_delivers_2000_lines_quickly_in_order(self):
        server = self.start_server('--rate', '0')
        reader, flooder, _, texts = self.start_flood(server, 2000)
        began = time.monotonic()
        reader.until(lambda: reader.has(texts[-1]), 10, 'all 2000 lines')
        report('rate 0, 2000 lines', seconds=time.monotonic() - began)
        self.assertEqual(reader.lines('flooder: '), texts)

    def test_piped_client_memory_bounded_while_the_server_throttles_it(self):
        # 30 MB of messages piped into a client whose server reads one line
        # a second: the client stops reading its stdin instead of queueing
        # it all for the server.
        server = self.start_server('--rate', '1', '--burst', '1')
        path = os.path.join(self.tmpdir, 'input.txt')
        text = 'x' * 1000
        with open(path, 'w', encoding='utf-8') as f:
            f.write('piper\n')
            for _ in range(30000):
                f.write('m\n%s\n' % text)
        with open(path, 'rb') as stdin:
            client = self.start_client(server.port, 'piper', register=False,
                                       stdin=stdin)
            client.wait_for(re.compile(r'^\* welcome piper'))
            time.sleep(scaled(2.0))
            self.assertIsNone(client.popen.poll(), client.describe())
            rss = rss_kib(client.pid)
            report('piped client under flood control', rss_kib=rss)
            if harness.memory_is_measurable(client.pid):
                self.assertLess(rss, 16 * 1024, 'the client holds %d KiB: it '
                                'queued its whole input' % rss)
            client.kill()


# ---- slow consumers -----------------------------------------------------------------

class SlowConsumerTest(HostileCase):
    """A client that does not read is dropped once --sendq is exceeded;
    everyone else gets everything, and the server's memory stays bounded."""

    COUNT = 10000  # per sender, 1000 bytes each: 20 MB in all
    SIZE = 1000
    WINDOW = 200  # messages a sender may be ahead of its receivers

    def never_reading_scenario(self):
        """Two senders flood 2 x COUNT x SIZE bytes; 'reader' reads all,
        'slow' (4 KiB receive buffer) never reads. Returns a dict."""
        server = self.start_server('--rate', '0', '--sendq', '1048576')
        reader = self.connect(server.port, 'reader', rcvbuf=4 * MIB)
        slow = self.connect(server.port, 'slow', rcvbuf=4096)
        s1 = self.connect(server.port, 's1')
        s2 = self.connect(server.port, 's2')
        reader.wait_for('* s2 joined', start=0)
        s1.wait_for('* s2 joined', start=0)
        last = [expected_lines(t, self.COUNT, self.SIZE)[-1]
                for t in (b's1', b's2')]
        rd = self.thread(SocketReader(reader.sock, initial=reader.buf,
                                      watch=last + [b'* slow left']))
        drains = {}
        for s in (s1, s2):
            s.sock.settimeout(scaled(60))
            drains[s.name.encode()] = self.thread(SocketReader(
                s.sock, keep=False, initial=s.buf))
        base = rss_kib(server.pid)
        sampler = self.thread(RssSampler(server.pid))
        began = time.monotonic()

        # The server has no back-pressure from receivers to senders (by
        # design), so the test holds each sender to at most WINDOW messages
        # ahead of what the reader and the other sender have read: a
        # reading client then never has much queued, whatever the
        # scheduling of this process; the never-reading one gets it all.
        def gate(tag, other):
            return lambda i: (rd.counts.get(tag, 0) >= i - self.WINDOW and
                              drains[other].counts.get(tag, 0) >=
                              i - self.WINDOW)
        senders = [self.thread(Sender(s.sock, t, self.COUNT, self.SIZE,
                                      per_chunk=100, gate=gate(t, o),
                                      gate_timeout=scaled(30)))
                   for s, t, o in ((s1, b's1', b's2'), (s2, b's2', b's1'))]
        for s in senders:
            s.join(scaled(120))
            self.assertFalse(s.is_alive(), 'a sender is stuck after %d '
                             'messages\n%s' % (s.sent, server.describe()))
        self.wait_until('the reader got the last lines of both senders',
                        lambda: set(last) <= rd.seen or rd.eof, 60,
                        lambda: server.describe())
        elapsed = time.monotonic() - began
        self.wait_until('the reader saw "* slow left"',
                        lambda: b'* slow left' in rd.seen or rd.eof, 10,
                        lambda: server.describe())
        peak = sampler.stop()
        result = dict(server=server, reader=rd, senders=senders, base=base,
                      peak=peak, elapsed=elapsed, slow=slow)
        report('slow consumer, %d MB sent' % (
            2 * self.COUNT * self.SIZE // 1000000), seconds=elapsed,
            rss_before_kib=base, rss_peak_kib=peak,
            rss_growth_kib=peak - base, samples=sampler.samples)
        for s in senders:
            self.assertIsNone(s.error, 'a sender failed: %r' % s.error)
        self.assertFalse(rd.eof, 'the reading client was disconnected\n' +
                         server.describe())
        return result

    @harness.slow
    def test_never_reading_client_disconnected_as_slow_consumer(self):
        r = self.never_reading_scenario()
        log = r['server'].stderr_text()
        self.assertRegex(log, r'slow disconnected: .*slow consumer',
                         'no "slow consumer" disconnect in the server log')
        self.assertIn(b'* slow left', r['reader'].seen)

    @harness.slow
    def test_reading_client_gets_every_message_while_another_is_dropped(self):
        r = self.never_reading_scenario()
        lines = r['reader'].lines
        for tag in (b's1', b's2'):
            got = [l for l in lines if l.startswith(tag + b': ')]
            want = expected_lines(tag, self.COUNT, self.SIZE)
            if got != want:
                first = next((i for i, (g, w) in enumerate(zip(got, want))
                              if g != w), min(len(got), len(want)))
                self.fail('reader got %d of %d messages from %s; first '
                          'difference at #%d: %r' % (
                              len(got), len(want), tag.decode(), first,
                              got[first][:40] if first < len(got) else None))
        self.assertNotIn(b'* s1 left', lines)
        self.assertNotIn(b'* s2 left', lines)

    @harness.slow
    def test_server_rss_bounded_while_a_client_never_reads(self):
        r = self.never_reading_scenario()
        growth = r['peak'] - r['base']
        if harness.memory_is_measurable(r['server'].pid):
            self.assertLess(growth, 32 * KIB, 'server RSS grew by %d KiB '
                            '(from %d to %d KiB)' % (growth, r['base'],
                                                     r['peak']))

    @harness.slow
    def test_slow_reader_within_budget_not_dropped(self):
        server = self.start_server('--rate', '0', '--sendq', '1048576')
        slowreader = self.connect(server.port, 'slowreader', rcvbuf=16384)
        sender = self.connect(server.port, 'sender')
        slowreader.wait_for('* sender joined', start=0)
        count, size = 4000, 1000  # 4 MB at about 1 MB/s
        last = expected_lines(b'sender', count, size)[-1]
        rd = self.thread(SocketReader(slowreader.sock, pause=0.3,
                                      chunk=65536, initial=slowreader.buf,
                                      watch=[last]))
        sender.sock.settimeout(scaled(60))
        tx = self.thread(Sender(sender.sock, b'sender', count, size,
                                per_chunk=100, pace=0.1))
        began = time.monotonic()
        tx.join(scaled(120))
        self.assertFalse(tx.is_alive(), 'the sender is stuck')
        self.wait_until('the slow reader got the last message',
                        lambda: last in rd.seen or rd.eof, 30,
                        lambda: server.describe())
        report('slow but keeping-up reader, 4 MB',
               seconds=time.monotonic() - began)
        self.assertIsNone(tx.error)
        self.assertFalse(rd.eof, 'the slow reader was disconnected\n' +
                         server.describe())
        self.assertNotRegex(server.stderr_text(), r'slow consumer')
        got = [l for l in rd.lines if l.startswith(b'sender: ')]
        self.assertEqual(len(got), count)
        self.assertTrue(got == expected_lines(b'sender', count, size),
                        'messages out of order or altered')
        self.assertNoLine(sender, '* slowreader left')


# ---- graceful shutdown --------------------------------------------------------------

class ShutdownTest(HostileCase):
    """SIGINT: everyone is told, the server exits 0."""

    def sigint_scenario(self):
        server = self.start_server()
        clients = [self.start_client(server.port, n)
                   for n in ('alice', 'bob')]
        raws = [self.connect(server.port, 'rawcarol'),
                self.connect(server.port)]  # one never named
        self.barrier(raws[0], clients, 'before the end')
        server.send_signal(signal.SIGINT)
        return server, clients, raws

    def test_sigint_chat_clients_exit_1_saying_server_closed(self):
        server, clients, _ = self.sigint_scenario()
        for c in clients:
            self.assertEqual(c.wait_exit(10), 1, c.describe())
            self.assertRegex(c.stderr_text(), r'server closed the connection')

    def test_sigint_server_exits_0(self):
        server, _, _ = self.sigint_scenario()
        self.assertEqual(server.wait_exit(10), 0, server.describe())

    def test_sigint_raw_clients_get_shutting_down_notice_before_eof(self):
        server, _, raws = self.sigint_scenario()
        for r in raws:
            r.wait_eof(10)
            lines = [l for l in r.received if l.strip()]
            self.assertTrue(lines, '%r got nothing before EOF' % r)
            self.assertEqual(lines[-1], '* server shutting down',
                             '%r: last lines %r' % (r, lines[-5:]))


# ---- churn ----------------------------------------------------------------------------

def churn_cycle(port, name, mode, out):
    """One connection; mode 0: part of a name, then RST; 1: nothing, FIN;
    2: name, welcome, message, RST; 3-5: the same, then a clean FIN (write
    side shut, everything read up to the server's close, so that no unread
    byte turns the close into an RST)."""
    sock = socket.create_connection((LOOPBACK, port), timeout=scaled(10))
    try:
        if mode == 0:
            sock.sendall(b'half' + name.encode())
        elif mode >= 2:
            sock.sendall(name.encode() + b'\n')
            buf = b''
            while b'\n' not in buf:
                data = sock.recv(4096)
                if not data:
                    break
                buf += data
            first = buf.split(b'\n', 1)[0].decode('utf-8', 'replace')
            if not welcome_re(name).search(first):
                out['errors'].append('%s: answer %r' % (name, first))
                return
            out['registered'].append(name)
            sock.sendall(b'msg from ' + name.encode() + b'\n')
            if mode >= 3:
                out['fin'].append(name)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        if mode in (0, 2):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
    finally:
        sock.close()


def churn_worker(port, wid, cycles, out):
    for i in range(cycles):
        n = wid * cycles + i
        name = 'ch%d_%d' % (wid, i)
        try:
            churn_cycle(port, name, n % 6, out)
        except OSError as e:
            out['errors'].append('%s: %r' % (name, e))
        with out['lock']:
            out['done'] += 1


class ChurnTest(HostileCase):
    """Many short connections and killed transfers; afterwards the server
    serves, its memory is back, and SIGTERM still exits 0."""

    WORKERS = 20
    CYCLES = 5 if WRAPPED else 100  # per worker: 100 or 2000 in all
    FILE_SIZE = 20 * MIB

    def file_client(self, server, name, share, extra=()):
        home = os.path.join(self.tmpdir, 'home-%s' % name)
        downloads = os.path.join(home, 'downloads')
        os.makedirs(downloads, exist_ok=True)
        args = ['-l', str(free_port()), '-p', str(server.port),
                '-s', LOOPBACK, '--share', share, '--downloads', downloads]
        client = Client(self, server.port, name=name,
                        args=args + list(extra), label='client-%s' % name)
        client.downloads = downloads
        client.register()
        return client

    def transfer_pair(self, server, k, share):
        """Owner ownK and requester reqK (which always relays through the
        server in rounds 2 and 3). Started before the churn, so that no
        churn connection can hold the owner's listening port."""
        relay = k % 4 >= 2
        owner = self.file_client(server, 'own%d' % k, share)
        req = self.file_client(server, 'req%d' % k, share,
                               ['--transfer', 'relay'] if relay else [])
        self.barrier(owner, [req], 'sync')  # the server has the FILEPORT
        return k, owner, req

    def kill_mid_transfer(self, pair):
        """reqK asks ownK for big.bin; once it is under way the owner (even
        k) or the requester (odd k) is SIGKILLed. The survivor must go on
        and exit 0 on x. Returns whether the kill came mid-transfer."""
        k, owner, req = pair
        start = len(req.lines())
        req.send('f')
        req.send(owner.name)
        req.send('big.bin')
        sending = 'sending big.bin to %s' % req.name
        outcome = re.compile(r'^(received big\.bin|file transfer of big\.bin)')
        deadline = time.monotonic() + scaled(15)
        while True:
            if sending in owner.lines() or any(
                    n.startswith('.big.bin.part-')
                    for n in os.listdir(req.downloads)):
                break
            if any(outcome.search(l) for l in req.lines()[start:]):
                break
            if time.monotonic() > deadline:
                self.fail('transfer round %d never started\n%s\n%s' % (
                    k, owner.describe(), req.describe()))
            time.sleep(0.005)
        victim, survivor = (owner, req) if k % 2 == 0 else (req, owner)
        finished = any(outcome.search(l) for l in req.lines()[start:])
        victim.kill(signal.SIGKILL)
        survivor.wait_for('* %s left' % victim.name, timeout=10)
        if survivor is req:
            req.wait_for(outcome, timeout=30, start=start)
        self.assertEqual(survivor.exit(), 0, survivor.describe())
        if survivor is req:
            leftovers = [n for n in os.listdir(req.downloads)
                         if '.part-' in n]
            self.assertEqual(leftovers, [], 'temporary files left')
        return not finished

    @harness.slow
    def test_churn_and_killed_transfers_leave_server_serving_rss_back(self):
        server = self.start_server('--max-per-ip', '0',
                                   '--relay-rate', '8000000')
        share = os.path.join(self.tmpdir, 'share')
        os.makedirs(share)
        with open(os.path.join(share, 'big.bin'), 'wb') as f:
            for _ in range(self.FILE_SIZE // MIB):
                f.write(os.urandom(MIB))
        # warm up (buffers touched once), then take the baseline
        self.assert_serves(server)
        pairs = [self.transfer_pair(server, k, share) for k in range(4)]
        watcher = self.connect(server.port, 'watcher')
        time.sleep(0.2)
        base = rss_kib(server.pid)
        sampler = self.thread(RssSampler(server.pid, interval=0.02))
        wr = self.thread(SocketReader(watcher.sock, initial=watcher.buf))
        out = {'errors': [], 'registered': [], 'fin': [], 'done': 0,
               'lock': threading.Lock()}
        began = time.monotonic()
        workers = [self.thread(threading.Thread(
            target=churn_worker, args=(server.port, w, self.CYCLES, out),
            daemon=True)) for w in range(self.WORKERS)]
        mid = [self.kill_mid_transfer(p) for p in pairs]
        for w in workers:
            w.join(scaled(60))
        churn_s = time.monotonic() - began
        self.assertEqual(out['done'], self.WORKERS * self.CYCLES,
                         'workers did not finish')
        self.assertEqual(out['errors'], [], 'churn connections failed')
        # every message sent before a FIN arrived; every registered one left
        want = set(b'%s: msg from %s' % (n.encode(), n.encode())
                   for n in out['fin'])
        want |= set(b'* %s left' % n.encode() for n in out['registered'])
        self.wait_until('the watcher saw every churn message and departure',
                        lambda: want <= set(wr.lines), 30,
                        lambda: repr(sorted(want - set(wr.lines))[:10]))
        self.assertFalse(wr.eof, 'the watcher was disconnected')
        self.assert_serves(server)
        time.sleep(0.5)
        after = rss_kib(server.pid)
        peak = sampler.stop()
        report('churn: %d cycles, %d registered, %d kills mid-transfer of 4' %
               (self.WORKERS * self.CYCLES, len(out['registered']),
                sum(mid)), seconds=churn_s, rss_before_kib=base,
               rss_peak_kib=peak, rss_after_kib=after,
               rss_after_minus_before_kib=after - base)
        if harness.memory_is_measurable(server.pid):
            self.assertLess(after - base, 6 * KIB,
                            'server RSS not back after churn: %d -> %d KiB'
                            % (base, after))
        wr.stop()
        rc = server.stop(timeout=10)
        self.assertEqual(rc, 0, 'server exit status after SIGTERM\n' +
                         server.describe())


# ---- resource exhaustion --------------------------------------------------------------

class ResourceExhaustionTest(HostileCase):
    """Out of descriptors (server), out of file size (client)."""

    @harness.slow
    def test_out_of_descriptors_server_does_not_spin_and_recovers(self):
        server = LimitedServer(self, ['0'], 'RLIMIT_NOFILE', 64)
        server.wait_listening()
        alice = self.connect(server.port, 'alice')
        conns = []
        for _ in range(100):
            s = socket.create_connection((LOOPBACK, server.port),
                                         timeout=scaled(10))
            conns.append(s)
        time.sleep(scaled(0.5))
        c0 = cpu_seconds(server.pid)
        time.sleep(2.0)
        c1 = cpu_seconds(server.pid)
        dropped = 0
        for s in conns:
            ready, _, _ = select.select([s], [], [], 0)
            if ready:
                try:
                    if s.recv(4096) == b'':
                        dropped += 1
                except OSError:
                    dropped += 1
        report('EMFILE: 100 connections at RLIMIT_NOFILE 64',
               dropped=dropped, cpu_in_2s_idle=c1 - c0)
        self.assertTrue(server.alive(), server.describe())
        self.assertLess(c1 - c0, 0.5, 'the server used %.2f s of CPU in 2 s '
                        'while out of descriptors (spinning?)' % (c1 - c0))
        for s in conns:
            s.close()
        time.sleep(0.2)
        self.assert_serves(server, [alice])

    def test_download_over_file_size_limit_fails_cleanly_client_chats_on(self):
        server = self.start_server()
        dirs = {}
        for n in ('owner', 'req'):
            home = os.path.join(self.tmpdir, 'home-%s' % n)
            dirs[n] = (os.path.join(home, 'share'),
                       os.path.join(home, 'downloads'))
            for d in dirs[n]:
                os.makedirs(d)
        with open(os.path.join(dirs['owner'][0], 'big5.bin'), 'wb') as f:
            f.write(os.urandom(5 * MIB))

        def args(n):
            return ['-l', str(free_port()), '-p', str(server.port),
                    '--share', dirs[n][0], '--downloads', dirs[n][1]]
        owner = Client(self, server.port, name='owner', args=args('owner'),
                       label='client-owner')
        owner.register()
        req = LimitedClient(self, server.port, 'req', args('req'),
                            'RLIMIT_FSIZE', MIB, 'client-req')
        req.register()
        self.barrier(owner, [req], 'sync')
        start = len(req.lines())
        req.send('f')
        req.send('owner')
        req.send('big5.bin')
        line = req.wait_line(re.compile(
            r'^(received big5\.bin|file transfer of big5\.bin from owner)'),
            timeout=30, start=start)
        report('download at RLIMIT_FSIZE 1 MiB', outcome=repr(line))
        self.assertRegex(line, r'^file transfer of big5\.bin from owner '
                         r'failed: ', req.describe())
        downloads = dirs['req'][1]
        self.assertFalse(os.path.lexists(os.path.join(downloads, 'big5.bin')),
                         'a file under the final name exists')
        deadline = time.monotonic() + scaled(1)
        while time.monotonic() < deadline and os.listdir(downloads):
            time.sleep(0.02)
        self.assertEqual(os.listdir(downloads), [],
                         'files left in the download dir')
        self.barrier(req, [owner], 'still chatting')
        self.barrier(owner, [req], 'good')
        self.assertEqual(req.exit(), 0, req.describe())


if __name__ == '__main__':
    harness.main()
