#!/usr/bin/env python3
"""End-to-end tests of file transfers relayed through the server.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_relay.py -v
Run one:   ... python3 test/e2e/test_relay.py -v \
               RelayFallbackTest.test_unreachable_owner_falls_back_to_relay_once
Check that meson.build registers every test (as 'relay:Class.test_method'):
           python3 test/e2e/test_relay.py --check-meson test/e2e/meson.build

What is checked (see docs/PROTOCOL.md, "The relay", and README.md):

  * with --transfer=auto (the default) a requester that cannot connect to
    the owner prints, once,
        direct connection to <owner> failed (<reason>); relaying through the server
    and for an owner that announced port 0 (chat-client -l 0)
        <owner> accepts no connections; relaying through the server
    then the file arrives through the server, size and SHA-256 verified;
  * --transfer=relay always relays, --transfer=direct never does;
  * the server logs 'relay of "<file>" from <owner> to <requester> started'
    and '... ended: <N> bytes in <T> s', stores nothing and holds a bounded
    few hundred KiB per relay however large the file;
  * a relay leg with an unknown or used token gets "\\x01RELAY-FAIL
    bad-token" and no byte of a file; --max-relays, --relay-rate,
    --relay-wait and --no-relay do what they say;
  * a leg that dies mid-relay ends the other one: the requester fails
    cleanly (no file, no .part file), everybody keeps chatting, the server
    keeps relaying.

Owners are real chat-clients, or are played by the test over raw sockets
(RelayFakeOwner) when the test needs an owner that cannot be reached, or
one that misbehaves on purpose. Helpers come from test_files.py.
"""

import hashlib
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import WRAPPER, LineSocket, scaled  # noqa: E402
from test_files import (  # noqa: E402
    MIB, FileTestCase, RawOwner, fetch, outcome_re, write_random,
    write_sparse)



def fallback_re(owner):
    """The one line auto mode prints when the direct connection failed."""
    return re.compile(r'^direct connection to %s failed \((.+)\); relaying '
                      r'through the server$' % re.escape(owner))


def no_port_line(owner):
    return '%s accepts no connections; relaying through the server' % owner


ANY_RELAY_NOTE = re.compile(r'(?:^direct connection to .* failed \(|'
                            r' accepts no connections; relaying through)')


def relay_started_re(file, owner, requester):
    return re.compile(r'relay of "%s" from %s to %s started$' % (
        re.escape(file), re.escape(owner), re.escape(requester)))


def relay_ended_re(file, owner, requester):
    return re.compile(r'relay of "%s" from %s to %s ended: (\d+) bytes in '
                      r'([0-9.]+) s$' % (re.escape(file), re.escape(owner),
                                         re.escape(requester)))


ANY_RELAY_LOG = re.compile(r'relay of ".*" from ')


def relay_serve_re(token=None):
    """The server's "\\x01RELAY-SERVE <token> <key>" (for token, or any)."""
    return re.compile('^\x01RELAY-SERVE %s [0-9a-f]{32}$' % (
        re.escape(token) if token is not None else '[0-9a-f]{32}'))


def relay_fetch_payload(token, chatfile=True):
    data = b'\x01RELAY %s fetch\n' % token.encode()
    if chatfile:
        data += b'CHATFILE 1 %s\n' % token.encode()
    return data


def vm_rss_kib(pid):
    """The VmRSS of pid in KiB, or None when it cannot be read."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler:
    """Samples a process's VmRSS every interval seconds in a thread."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = vm_rss_kib(self.pid)
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.samples


class RelayFakeOwner(RawOwner):
    """A raw owner that announces a file port nobody listens on (or the
    port it is given, e.g. 0), answers SERVE with SERVE-OK and, when asked
    with RELAY-SERVE, opens its relay leg to the server by hand."""

    def __init__(self, case, server, name='fakeowner', port=None):
        if port is None:
            port = case.unused_port()  # bound, not listening: refused
        self.announced = port
        self.legs = []
        self.keys = {}  # token -> the key of its RELAY-SERVE
        super().__init__(case, server, name, port)

    def wait_relay_serve(self, token, timeout=10):
        """Waits for "\\x01RELAY-SERVE <token> <key>"; returns the key (the
        secret the owner's leg presents), remembered for open_leg()."""
        i = self.chat.wait_for(relay_serve_re(token), timeout, start=0)
        key = self.chat.received[i].split(' ')[2]
        self.keys[token] = key
        return key

    def open_leg(self, token, timeout=10):
        """Connects to the chat port as the owner's relay leg (presenting
        the key the server sent with RELAY-SERVE for token) and reads the
        requester's file-connection header through it; returns the
        socket."""
        key = self.keys.get(token) or self.wait_relay_serve(token, timeout)
        sock = socket.create_connection(('127.0.0.1', self.server.port),
                                        timeout=scaled(timeout))
        self.legs.append(sock)
        sock.sendall(b'\x01RELAY %s serve\n' % key.encode())
        header = b''
        try:
            while not header.endswith(b'\n') and len(header) < 300:
                chunk = sock.recv(1)
                if not chunk:
                    break
                header += chunk
        except socket.timeout:
            pass
        self.case.assertEqual(
            header, b'CHATFILE 1 %s\n' % token.encode(),
            'the owner\'s relay leg did not get the requester\'s header')
        return sock

    def send_file(self, sock, data):
        """Answers like an owner: OK, the bytes, the digest; then closes."""
        sock.sendall(b'OK %d\n' % len(data) + data +
                     hashlib.sha256(data).digest())
        sock.close()

    def close(self):
        for s in self.legs:
            try:
                s.close()
            except OSError:
                pass


class RelayTestCase(FileTestCase):
    """Helpers for checking what went through the relay."""

    def owner_without_port(self, server, name='alice', **kw):
        """A real chat-client started with -l 0."""
        return self.file_client(server, name, lport=0, **kw)

    def wait_log(self, server, pattern, timeout=10, start=0):
        """Index of the first server log line matching pattern."""
        return server.wait_stderr(pattern, timeout, start)

    def log_match(self, server, pattern):
        for line in server.stderr_lines():
            m = pattern.search(line)
            if m:
                return m
        return None

    def assert_relay_logged(self, server, file, owner, requester, size=None,
                            timeout=10):
        """The server logged this relay's start and end; returns (bytes,
        seconds) from the end line. With size, the byte count must cover the
        file plus at most the OK line and the 32-byte digest, and what TLS
        adds (our clients encrypt end to end through the relay): the
        handshake and tickets, under 8 KiB, and 32 bytes per 16 KiB
        record."""
        s = self.wait_log(server, relay_started_re(file, owner, requester),
                          timeout)
        e = self.wait_log(server, relay_ended_re(file, owner, requester),
                          timeout, start=s + 1)
        m = relay_ended_re(file, owner, requester).search(
            server.stderr_lines()[e])
        n, secs = int(m.group(1)), float(m.group(2))
        if size is not None:
            self.assertGreaterEqual(n, size, 'bytes in the log line')
            self.assertLessEqual(n, size + 64 + 8192 + (size // 16384 + 1) * 32,
                                 'bytes in the log line')
        return n, secs

    def assert_no_relay_notes(self, client, start=0):
        bad = [l for l in client.lines()[start:] if ANY_RELAY_NOTE.search(l)]
        if bad:
            self.fail('%r said it relays: %r\n%s' % (client, bad,
                                                     client.describe()))

    def assert_no_relay_logged(self, server):
        bad = [l for l in server.stderr_lines() if ANY_RELAY_LOG.search(l)]
        if bad:
            self.fail('the server relayed: %r' % bad)

    def wait_relay_running(self, server, file, owner, requester,
                           timeout=10):
        """Waits until the server logs that the relay is paired; returns
        the index of that log line."""
        s = self.wait_log(server, relay_started_re(file, owner, requester),
                          timeout)
        return s


class RelayFallbackTest(RelayTestCase):
    """auto mode: direct first, the relay when that fails."""

    def test_unreachable_owner_falls_back_to_relay_once(self):
        server = self.start_server()
        fake = RelayFakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])  # its FILEPORT is handled
        data = os.urandom(300000) + bytes(range(256))
        start = self.request(bob, fake.name, 'fb.bin')
        token, requester, file = fake.wait_serve()
        self.assertEqual((requester, file), ('bob', 'fb.bin'))
        fake.serve_ok(token)
        fake.wait_relay_serve(token)
        leg = fake.open_leg(token)
        fake.send_file(leg, data)
        self.expect_success(bob, 'fb.bin', fake.name, data, start)
        lines = bob.lines()[start:]
        notes = [i for i, l in enumerate(lines)
                 if fallback_re(fake.name).search(l)]
        self.assertEqual(len(notes), 1, 'exactly one fallback line expected'
                         '\n' + bob.describe())
        reason = fallback_re(fake.name).search(lines[notes[0]]).group(1)
        self.assertRegex(reason, 'refused', 'the fallback reason')
        done = [i for i, l in enumerate(lines)
                if outcome_re('fb.bin', fake.name).search(l)]
        self.assertLess(notes[0], done[0],
                        'the fallback line must come before the outcome')
        self.assertNotIn(no_port_line(fake.name), lines)
        self.assertEqual(os.listdir(bob.downloads), ['fb.bin'])
        self.assert_relay_logged(server, 'fb.bin', fake.name, 'bob',
                                 len(data))

    def test_owner_closing_before_it_answers_falls_back_to_relay(self):
        """A direct connection that the owner closes before it answers
        (as an owner does with handshakes over its budget while a flood
        from the requester's own address goes on) is not the end in auto
        mode: the relay is tried, once."""
        server = self.start_server()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(('127.0.0.1', 0))
        listener.listen(4)
        listener.settimeout(scaled(10))
        fake = RelayFakeOwner(self, server, name='flaky',
                              port=listener.getsockname()[1])
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        data = os.urandom(100000)
        start = self.request(bob, fake.name, 'cl.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn, _ = listener.accept()
        conn.close()  # no OK, no ERR: closed before the header is read
        fake.send_file(fake.open_leg(token), data)
        self.expect_success(bob, 'cl.bin', fake.name, data, start)
        lines = bob.lines()[start:]
        notes = [fallback_re(fake.name).search(l) for l in lines]
        notes = [m.group(1) for m in notes if m]
        # closing with the header unread resets the connection, and the
        # requester may see that as a reset or as a failed write
        self.assertEqual(len(notes), 1, bob.describe())
        self.assertIn(notes[0], ('closed before it answered',
                                 'connection reset by peer', 'broken pipe'),
                      bob.describe())

    def test_owner_without_listen_port_served_through_relay(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        src = os.path.join(alice.share, 'nat.bin')
        write_random(src, 3 * MIB + 12345)
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'nat.bin')
        self.expect_success(bob, 'nat.bin', 'alice', src, start, timeout=60)
        lines = bob.lines()[start:]
        self.assertEqual(lines.count(no_port_line('alice')), 1,
                         bob.describe())
        i = lines.index(no_port_line('alice'))
        j = [k for k, l in enumerate(lines)
             if outcome_re('nat.bin', 'alice').search(l)][0]
        self.assertLess(i, j, 'the relay note must precede the outcome')
        self.assertFalse([l for l in lines if fallback_re('alice').search(l)],
                         'no direct attempt is made to a port-0 owner\n'
                         + bob.describe())
        alice.wait_for('sending nat.bin to bob')
        alice.wait_for('sent nat.bin to bob', timeout=30)
        self.assert_relay_logged(server, 'nat.bin', 'alice', 'bob',
                                 os.path.getsize(src))
        self.assertEqual(os.listdir(bob.downloads), ['nat.bin'])

    @harness.slow
    def test_chat_flows_during_large_relay(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        dave = self.file_client(server, 'dave')
        # Under valgrind the relay's TLS runs some fifty times slower: 128
        # MiB still outlasts the chat round there, and 1 GiB would hold a
        # core for minutes and starve the tests beside it.
        size = (128 if harness.WRAPPER else 1024) * MIB
        write_sparse(os.path.join(alice.share, 'big.bin'), size)
        self.sync(alice, bob, carol, dave)
        start = self.request(bob, 'alice', 'big.bin')
        self.wait_relay_running(server, 'big.bin', 'alice', 'bob')
        self.wait_part(bob, 'big.bin', 'alice', start)
        t0 = time.monotonic()
        for k in range(10):
            carol.message('carol says %d' % k)
            dave.message('dave says %d' % k)
        for k in range(10):
            dave.wait_for('carol: carol says %d' % k)
            carol.wait_for('dave: dave says %d' % k)
            bob.wait_for('dave: dave says %d' % k)
        self.barrier(bob, [alice, carol, dave], 'from the requester')
        self.barrier(alice, [bob, carol, dave], 'from the owner')
        chatted = time.monotonic() - t0
        ended = self.log_match(server, relay_ended_re('big.bin', 'alice',
                                                      'bob'))
        done = self.count_outcomes(bob, 'big.bin', 'alice')
        sys.stdout.write('\n  chat round took %.3f s during the relay\n'
                         % chatted)
        self.assertTrue(ended is None and done == 0,
                        'the relay finished before the chat did (%.3f s): '
                        'the test proves nothing; use a larger file'
                        % chatted)
        self.assertEqual([l for l in carol.chat_lines('dave')
                          if ' says ' in l],
                         ['dave: dave says %d' % k for k in range(10)],
                         'dave\'s messages reach carol in order')
        self.expect_success(bob, 'big.bin', 'alice',
                            os.path.join(alice.share, 'big.bin'), start,
                            timeout=240)
        self.assert_relay_logged(server, 'big.bin', 'alice', 'bob', size)
        self.assert_chat_works(carol, dave)


class RelayModeTest(RelayTestCase):
    """--transfer=relay always relays; --transfer=direct never does."""

    def test_transfer_relay_relays_even_when_owner_reachable(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')  # listens on a free port
        bob = self.file_client(server, 'bob', extra=['--transfer', 'relay'])
        content = os.urandom(500000)
        self.share(alice, 'r.bin', content)
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'r.bin')
        self.expect_success(bob, 'r.bin', 'alice', content, start)
        self.assert_relay_logged(server, 'r.bin', 'alice', 'bob',
                                 len(content))
        self.assert_no_relay_notes(bob, start)
        alice.wait_for('sent r.bin to bob')

    def test_transfer_direct_unreachable_owner_fails_without_relay(self):
        server = self.start_server()
        fake = RelayFakeOwner(self, server)
        bob = self.file_client(server, 'bob', extra=['--transfer', 'direct'])
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'd.bin')
        token, requester, file = fake.wait_serve()
        self.assertEqual((requester, file), ('bob', 'd.bin'))
        fake.serve_ok(token)
        line = self.expect_failure(bob, 'd.bin', fake.name,
                                   'connection to the owner failed', start)
        self.assertIn('--transfer=direct', line)
        self.assert_no_relay_notes(bob, start)
        self.barrier(bob, [fake.chat])
        self.assertNoLine(fake.chat, re.compile('^\x01RELAY-SERVE'),
                          'the requester asked for a relay')
        self.assert_no_relay_logged(server)
        self.assertEqual(os.listdir(bob.downloads), [])

    def test_transfer_direct_owner_without_port_fails(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob', extra=['--transfer', 'direct'])
        self.share(alice, 'n.txt', b'not for direct\n')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'n.txt')
        self.expect_failure(bob, 'n.txt', 'alice',
                            'the owner accepts no connections and '
                            '--transfer=direct rules out the relay', start)
        self.assert_no_relay_notes(bob, start)
        self.assert_chat_works(alice, bob)
        self.assertNoLine(alice, re.compile(r'^sen(?:ding|t) n\.txt'))
        self.assert_no_relay_logged(server)
        self.assertEqual(os.listdir(bob.downloads), [])


class RelayFailureTest(RelayTestCase):
    """Relays that cannot finish: a failure line, nothing left behind, and
    the server and everybody else carry on."""

    def test_no_relay_server_owner_without_port_fails(self):
        server = self.start_server('--no-relay')
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        self.share(alice, 'x.txt', b'unreachable\n')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'x.txt')
        self.expect_failure(bob, 'x.txt', 'alice',
                            'the owner does not serve files', start)
        self.assert_no_relay_notes(bob, start)
        self.assert_no_relay_logged(server)
        self.assert_chat_works(alice, bob)

    def test_no_relay_server_fallback_fails_with_relay_failed(self):
        server = self.start_server('--no-relay')
        fake = RelayFakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'y.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        line = self.expect_failure(bob, 'y.bin', fake.name,
                                   'the relay failed', start)
        lines = bob.lines()[start:]
        notes = [i for i, l in enumerate(lines)
                 if fallback_re(fake.name).search(l)]
        self.assertEqual(len(notes), 1, 'one fallback line expected\n'
                         + bob.describe())
        self.assertLess(notes[0], lines.index(line))
        self.assertNoLine(fake.chat, re.compile('^\x01RELAY-SERVE'))
        self.assert_no_relay_logged(server)

    def test_owner_never_opening_leg_fails_after_relay_wait(self):
        server = self.start_server('--relay-wait', '1')
        fake = RelayFakeOwner(self, server, port=0)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'w.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        key = fake.wait_relay_serve(token)
        t0 = time.monotonic()
        self.expect_failure(bob, 'w.bin', fake.name, 'the relay failed',
                            start, timeout=6)
        waited = time.monotonic() - t0
        self.assertGreater(waited, 0.5, 'failed before --relay-wait 1 ran '
                           'out (%.2f s)' % waited)
        bob.wait_for(no_port_line(fake.name), start=start)
        self.assertFalse(self.log_match(server, relay_started_re(
            'w.bin', fake.name, 'bob')), 'a relay without owner started')
        # the relay is over: the owner's late leg is turned away
        data = fetch(self, '127.0.0.1', server.port,
                     b'\x01RELAY %s serve\n' % key.encode())
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token'),
                        'a late owner leg got %r' % data[:200])

    def _huge_relay(self, server, carol=True):
        """alice (-l 0) shares a 1 GiB sparse file; bob requests it and the
        relay is under way when this returns (server rate-capped so that it
        surely is). Returns (alice, bob, carol, start)."""
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        write_sparse(os.path.join(alice.share, 'huge.bin'), 1024 * MIB)
        self.sync(alice, bob, carol)
        start = self.request(bob, 'alice', 'huge.bin')
        self.wait_relay_running(server, 'huge.bin', 'alice', 'bob')
        self.wait_part(bob, 'huge.bin', 'alice', start)
        time.sleep(0.3)  # some bytes flow
        return alice, bob, carol, start

    @harness.slow
    def test_requester_killed_mid_relay_server_keeps_serving(self):
        server = self.start_server('--relay-rate', str(32 * MIB))
        alice, bob, carol, start = self._huge_relay(server)
        bob.kill()
        carol.wait_for('* bob left')
        e = self.wait_log(server, relay_ended_re('huge.bin', 'alice', 'bob'))
        n = int(relay_ended_re('huge.bin', 'alice', 'bob').search(
            server.stderr_lines()[e]).group(1))
        self.assertLess(n, 1024 * MIB, 'the relay cannot have finished')
        self.assertTrue(alice.alive(), alice.describe())
        self.assertNoLine(alice, 'sent huge.bin to bob')
        # the owner notices (or at least keeps chatting)
        self.assert_chat_works(alice, carol, 'after the kill')
        if not [l for l in alice.lines()
                if l.startswith('sending huge.bin to bob failed')]:
            sys.stdout.write('\n  note: the owner did not report the '
                             'failed send\n')
        # a new relay through the same server works
        content = os.urandom(200000)
        self.share(alice, 'again.bin', content)
        s2 = self.request(carol, 'alice', 'again.bin')
        self.expect_success(carol, 'again.bin', 'alice', content, s2,
                            timeout=20)
        self.assert_relay_logged(server, 'again.bin', 'alice', 'carol',
                                 len(content))
        self.assertTrue(server.alive(), server.describe())

    @harness.slow
    def test_owner_killed_mid_relay_requester_fails_cleanly(self):
        server = self.start_server('--relay-rate', str(32 * MIB))
        alice, bob, carol, start = self._huge_relay(server)
        alice.kill()
        self.expect_failure(bob, 'huge.bin', 'alice', '.', start,
                            timeout=15)
        self.assertEqual(os.listdir(bob.downloads), [])
        e = self.wait_log(server, relay_ended_re('huge.bin', 'alice', 'bob'))
        carol.wait_for('* alice left')
        bob.wait_for('* alice left')
        self.assert_chat_works(bob, carol)
        self.assertTrue(server.alive(), server.describe())


class RelaySecurityTest(RelayTestCase):
    """A relay leg needs a token this server issued, once."""

    def test_made_up_token_gets_bad_token_and_is_closed(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        self.share(alice, 'secret.txt', b'TOPSECRET' * 10)
        for verb in ('fetch', 'serve'):
            token = os.urandom(16).hex()
            data = fetch(self, '127.0.0.1', server.port,
                         b'\x01RELAY %s %s\n' % (token.encode(),
                                                 verb.encode()))
            self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token'),
                            '%s leg with a made-up token got %r'
                            % (verb, data[:200]))
            self.assertEqual(data.count(b'\n'), 1, 'one line only: %r' % data)
            self.assertTrue(data.endswith(b'\n'))
            self.assertNotIn(b'TOPSECRET', data)
        # with the CHATFILE line right behind it, as a requester sends it
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(os.urandom(16).hex()))
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token'), data)
        self.assertEqual(data.count(b'\n'), 1, 'one line only: %r' % data)
        self.assertNoLine(alice, re.compile(r'^sen(?:ding|t) '))
        self.assert_no_relay_logged(server)
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'secret.txt')
        self.expect_success(bob, 'secret.txt', 'alice', b'TOPSECRET' * 10,
                            start)

    def test_relayed_token_cannot_be_replayed(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        content = b'TOKENFILE' + os.urandom(20000)
        self.share(alice, 'tok.bin', content)
        raw = self.raw_requester(server)
        self.barrier(alice, [raw])
        host, port, token = self.raw_get_ok(raw, 1, 'alice', 'tok.bin')
        self.assertEqual(port, 0, 'an -l 0 owner must be announced as port 0')
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(token))
        self.assert_ok_reply(data, content)
        alice.wait_for('sent tok.bin to rawreq')
        self.assert_relay_logged(server, 'tok.bin', 'alice', 'rawreq',
                                 len(content))
        # replayed: same token, second relay leg
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(token))
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token'),
                        'a replayed token got %r' % data[:200])
        self.assertEqual(data.count(b'\n'), 1, 'one line only: %r'
                         % data[:200])
        self.assertNotIn(b'TOKENFILE', data)
        self.barrier(raw, [alice])
        self.assertEqual(alice.lines().count('sending tok.bin to rawreq'), 1)
        self.assertTrue(alice.alive(), alice.describe())


class RelayLimitsTest(RelayTestCase):
    """Bounded memory, --relay-rate and --max-relays."""

    @harness.slow
    def test_256_mib_relay_keeps_server_memory_bounded(self):
        size = 256 * MIB
        limit_kib = 16 * 1024
        server = self.start_server()
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        src = os.path.join(alice.share, 'big.bin')
        write_random(src, size)
        self.sync(alice, bob)
        before = vm_rss_kib(server.pid)
        self.assertIsNotNone(before, 'cannot read /proc/%d/status'
                             % server.pid)
        sampler = RssSampler(server.pid).start()
        try:
            start = self.request(bob, 'alice', 'big.bin')
            self.expect_success(bob, 'big.bin', 'alice', src, start,
                                timeout=240)
        finally:
            samples = sampler.stop()
        n, secs = self.assert_relay_logged(server, 'big.bin', 'alice', 'bob',
                                           size)
        peak = max(samples + [before])
        growth = peak - before
        sys.stdout.write('\n  server VmRSS: %d KiB before, %d KiB peak, '
                         'growth %d KiB (%d samples; relay %.2f s, %d bytes)'
                         '\n' % (before, peak, growth, len(samples), secs, n))
        sys.stdout.flush()
        self.assertGreater(len(samples), 3, 'too few RSS samples')
        if not harness.memory_is_measurable(server.pid):
            return  # valgrind's or ASan's own memory swamps the bound
        self.assertLess(growth, limit_kib,
                        'the server grew by %d KiB while relaying %d MiB; a '
                        'relay should cost a few hundred KiB'
                        % (growth, size // MIB))

    def test_relay_rate_caps_throughput(self):
        size = 3000000
        server = self.start_server('--relay-rate', '1000000')
        alice = self.owner_without_port(server)
        bob = self.file_client(server, 'bob')
        content = os.urandom(size)
        self.share(alice, 'slow.bin', content)
        self.sync(alice, bob)
        t0 = time.monotonic()
        start = self.request(bob, 'alice', 'slow.bin')
        bob.wait_for(outcome_re('slow.bin', 'alice'), 30, start)
        elapsed = time.monotonic() - t0
        self.expect_success(bob, 'slow.bin', 'alice', content, start)
        n, secs = self.assert_relay_logged(server, 'slow.bin', 'alice', 'bob',
                                           size)
        sys.stdout.write('\n  3 MB at --relay-rate 1000000: %.2f s wall, '
                         'server says %.2f s\n' % (elapsed, secs))
        self.assertGreaterEqual(elapsed, 1.5,
                                '3 MB at 1 MB/s arrived in %.2f s' % elapsed)
        self.assertGreaterEqual(secs, 1.5, 'the relay took %.2f s' % secs)

    def test_max_relays_refuses_extra_leg_with_busy(self):
        server = self.start_server('--max-relays', '1')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        tokens = []
        for rid in (1, 2):
            raw.send('\x01GET %d %s f%d.bin' % (rid, fake.name, rid))
            token, requester, file = fake.wait_serve()
            self.assertEqual((requester, file), ('rawreq', 'f%d.bin' % rid))
            fake.serve_ok(token)
            answer = raw.wait_line(
                re.compile('^\x01GET-(?:OK|FAIL) %d ' % rid))[1:].split(' ')
            self.assertEqual(answer[0], 'GET-OK', 'GET %d: %r' % (rid, answer))
            self.assertEqual(answer[3:], ['0', token],
                             'GET %d: %r' % (rid, answer))
            tokens.append(token)
        # first relay: the requester's leg waits for the owner
        sock = socket.create_connection(('127.0.0.1', server.port),
                                        timeout=scaled(10))
        leg1 = LineSocket(self, sock, 'fetch-leg-1')
        leg1.send_raw(relay_fetch_payload(tokens[0]))
        fake.wait_relay_serve(tokens[0])
        # second relay while the first is open: busy
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(tokens[1]))
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL busy'),
                        'second relay leg got %r' % data[:200])
        self.assertEqual(data.count(b'\n'), 1, 'one line only: %r' % data)
        # the first one still works
        content = os.urandom(100000)
        fake.send_file(fake.open_leg(tokens[0]), content)
        got = fetch_rest(self, leg1)
        self.assert_ok_reply(got, content)
        self.assert_relay_logged(server, 'f1.bin', fake.name, 'rawreq',
                                 len(content))
        self.barrier(raw, [fake.chat])
        self.assertNoLine(fake.chat, relay_serve_re(tokens[1]),
                          'the owner was asked for the refused relay')
        # once it ended, a new relay fits again
        raw.send('\x01GET 3 %s f3.bin' % fake.name)
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        raw.wait_line(re.compile('^\x01GET-OK 3 '))
        sock = socket.create_connection(('127.0.0.1', server.port),
                                        timeout=scaled(10))
        leg3 = LineSocket(self, sock, 'fetch-leg-3')
        leg3.send_raw(relay_fetch_payload(token))
        fake.wait_relay_serve(token)
        fake.send_file(fake.open_leg(token), content)
        self.assert_ok_reply(fetch_rest(self, leg3), content)


def fetch_rest(case, leg, timeout=15):
    """Every byte a LineSocket receives until the peer closes it."""
    data = bytearray()
    sock = leg.sock
    deadline = time.monotonic() + scaled(timeout)
    sock.settimeout(0.5)
    while True:
        if time.monotonic() > deadline:
            case.fail('timeout: %r not closed; got %r' % (leg,
                                                          bytes(data[:200])))
        try:
            chunk = sock.recv(MIB)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


if __name__ == '__main__':
    harness.main()
