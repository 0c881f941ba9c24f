#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the owner's file port: unauthenticated connections under their own budget, quickly lapsing offers bounded per requester, half-closing requesters, the file-port warning.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_owner.py -v

What is checked (the owner is always a real chat-client; attackers and
requesters that misbehave are raw sockets):

  * a connection to the -l port takes a transfer slot only once it has
    presented a valid token; until then it is a *handshake*: at most
    --max-handshakes (default 32) of them, at most 4 from one address, each
    for --header-timeout seconds (default 5); when full, the oldest (of that
    address, or of all) is closed to make room. Silent connections thus
    never make the owner answer busy;
  * a valid token over --max-transfers active senders gets "ERR busy";
  * offers last 15 s; one requester holds at most max(1, max_transfers/2)
    offers and senders (over that: SERVE-FAIL busy "<requester> has too
    many uncollected requests", for that requester only); at most
    4 * max_transfers offers in all, the oldest dropped to make room;
  * a requester that half-closes after its header still gets the file;
  * "\\x01RELAY-SERVE <token> <key>" for an offer the owner holds opens a
    relay leg presenting the key ("\\x01RELAY <key> serve"); for an offer
    the owner no longer holds it gets "\\x01RELAY-SERVE-FAIL <token>
    bad-token no such offer: expired or already used"; one without a key,
    or with a malformed one, is ignored;
  * a taken -l port is reported as what it is: files go only through the
    server's relay, if it relays.

Every attack test also checks that a legitimate transfer between real
chat-clients other than the attacker succeeds while the attack runs.
"""

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import CHAT_CLIENT, Client, free_port, scaled  # noqa: E402
from test_files import (  # noqa: E402
    MIB, FileTestCase, fetch, write_file, write_random)

# a handshake younger than this is spared when the oldest make room (up to
# twice the budget), so that simultaneous requesters all get through
GRACE = 0.7

BAD_TOKEN_FAIL = 'bad-token no such offer: expired or already used'


def connect_from(source, port, dest='127.0.0.1'):
    """A TCP connection to dest:port from the loopback address source (any
    127.0.0.0/8 address is ours on Linux), as a second host would make."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(scaled(10))
    sock.connect((dest, port))
    return sock


def closed_by_peer(sock, timeout=0.0):
    """True when the peer has closed sock (EOF or reset) within timeout
    seconds; the bytes it sent before are discarded."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.0001))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except OSError:
            return True
        if not data:
            return True
        if time.monotonic() >= deadline:
            return False


class SilentFlood:
    """An attacker that keeps `per_addr` silent connections open to port
    from each of `sources`, and every `every` seconds replaces those the
    owner closed (in a thread, so the test goes on meanwhile)."""

    def __init__(self, port, sources, per_addr, every=1.0):
        self.port = port
        self.sources = sources
        self.per_addr = per_addr
        self.every = every
        self.socks = []  # (source, socket)
        self.opened = 0
        self.closed = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _fill(self):
        for src in self.sources:
            have = len([1 for s, _ in self.socks if s == src])
            for _ in range(self.per_addr - have):
                try:
                    self.socks.append((src, connect_from(src, self.port)))
                    self.opened += 1
                except OSError as e:
                    self.errors.append(repr(e))

    def _reap(self):
        alive = []
        for src, sock in self.socks:
            if closed_by_peer(sock):
                self.closed += 1
                sock.close()
            else:
                alive.append((src, sock))
        self.socks = alive

    def _run(self):
        while not self._stop.is_set():
            self._reap()
            self._fill()
            self._stop.wait(self.every)

    def start(self):
        self._fill()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        for _, sock in self.socks:
            sock.close()
        self.socks = []


class HardenOwnerTestCase(FileTestCase):

    def owner(self, server, name='alice', extra=()):
        return self.file_client(server, name, extra=extra)

    def legit_transfer(self, owner, requester, name='legit.bin', size=300000):
        """requester (a real chat-client) fetches a fresh file from owner
        (another real one); it must arrive whole."""
        src = os.path.join(owner.share, name)
        write_random(src, size)
        start = self.request(requester, owner.name, name)
        self.expect_success(requester, name, owner.name, src, start,
                            timeout=30)
        owner.wait_for('sent %s to %s' % (name, requester.name), 10)

    def header(self, token):
        return b'CHATFILE 1 %s\n' % token.encode()

    def fill_handshakes(self, port, sources, per_addr):
        """Opens per_addr silent connections from each source, in order;
        returns them oldest first."""
        socks = []
        for src in sources:
            for _ in range(per_addr):
                socks.append(connect_from(src, port))
                self._holders.append(socks[-1])
                time.sleep(0.02)  # accepted in this order
        return socks

    def raw_gets(self, raw, owner, file, first_id, count):
        """count GETs of file from owner, at most 8 awaiting an answer at a
        time; returns the answers (split as raw_get does) by id."""
        answers = {}
        ids = list(range(first_id, first_id + count))
        for i in range(0, len(ids), 8):
            batch = ids[i:i + 8]
            for rid in batch:
                raw.send('\x01GET %d %s %s' % (rid, owner, file))
            for rid in batch:
                line = raw.wait_line(re.compile(
                    '^\x01GET-(?:OK|FAIL) %d(?: |$)' % rid), 10, start=0)
                answers[rid] = line[1:].split(' ')
        return answers


class HandshakeBudgetTest(HardenOwnerTestCase):
    """Connections without a valid token never take a transfer slot."""

    def test_silent_connections_do_not_make_owner_busy(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        # ten "hosts", five silent connections each, renewed when closed:
        # more than the per-address and the overall handshake budgets
        flood = SilentFlood(alice.lport,
                            ['127.0.0.%d' % i for i in range(2, 12)], 5)
        flood.start()
        try:
            time.sleep(2 * GRACE)
            for n in range(3):
                self.legit_transfer(alice, bob, 'legit%d.bin' % n)
            self.assert_chat_works(alice, bob)
            deadline = time.monotonic() + 3 * flood.every
            while flood.closed == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreater(flood.closed, 0,
                               'the owner closed none of the silent '
                               'connections to make room')
        finally:
            flood.stop()
        self.assertEqual(flood.errors, [], 'the attacker could not connect')
        self.assertTrue(alice.alive(), alice.describe())

    def test_oldest_handshake_of_an_address_closed_for_a_fifth(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        socks = self.fill_handshakes(alice.lport, ['127.0.0.3'], 4)
        time.sleep(GRACE)
        socks.append(connect_from('127.0.0.3', alice.lport))
        self._holders.append(socks[-1])
        # the first makes room for the fifth, long before any deadline
        self.assertTrue(closed_by_peer(socks[0], scaled(3)),
                        'the oldest of 5 silent connections from one address '
                        'was not closed')
        for i, sock in enumerate(socks[1:], 2):
            self.assertFalse(closed_by_peer(sock),
                             'silent connection %d of 5 was closed, not the '
                             'oldest' % i)
        # another address is not affected by this one's budget
        other = connect_from('127.0.0.4', alice.lport)
        self._holders.append(other)
        self.legit_transfer(alice, bob)
        self.assertFalse(closed_by_peer(other), 'a connection from another '
                         'address was closed for this one')
        for i, sock in enumerate(socks[1:], 2):
            self.assertFalse(closed_by_peer(sock),
                             'silent connection %d of 5 was closed' % i)

    def assert_oldest_made_room(self, socks, newcomer, what):
        self.assertTrue(closed_by_peer(socks[0], scaled(3)),
                        'the oldest handshake was not closed when %s was '
                        'full' % what)
        for i, sock in enumerate(socks[1:], 2):
            self.assertFalse(closed_by_peer(sock),
                             'handshake %d of %d was closed, not the oldest'
                             % (i, len(socks)))
        self.assertFalse(closed_by_peer(newcomer), 'the newcomer was closed')

    def test_simultaneous_requesters_from_one_address_all_served(self):
        # six connections from one address at once, over its budget of 4:
        # none is closed before it could present its token
        server = self.start_server()
        alice = self.owner(server)
        content = b'six at once\n' * 100
        self.share(alice, 's.txt', content)
        r1 = self.raw_requester(server, 'r1')
        r2 = self.raw_requester(server, 'r2')
        self.barrier(alice, [r1, r2])
        tokens = [self.raw_get_ok(r1, i, 'alice', 's.txt') for i in (1, 2, 3)]
        tokens += [self.raw_get_ok(r2, i, 'alice', 's.txt') for i in (1, 2, 3)]
        socks = []
        for host, port, token in tokens:
            socks.append(socket.create_connection((host, port),
                                                  timeout=scaled(10)))
            self._holders.append(socks[-1])
        for sock, (_, _, token) in zip(socks, tokens):
            sock.sendall(self.header(token))
        for sock in socks:
            data = bytearray()
            while True:
                chunk = sock.recv(MIB)
                if not chunk:
                    break
                data += chunk
            self.assert_ok_reply(bytes(data), content)

    def test_max_handshakes_full_closes_oldest_overall(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        # the default budget: 32, four from each of eight addresses
        socks = self.fill_handshakes(
            alice.lport, ['127.0.0.%d' % i for i in range(2, 10)], 4)
        time.sleep(GRACE)
        newcomer = connect_from('127.0.0.10', alice.lport)
        self._holders.append(newcomer)
        self.assert_oldest_made_room(socks, newcomer, 'the default budget')
        # bob's own connection makes room the same way and gets its file
        self.legit_transfer(alice, bob)
        # --max-handshakes sets the budget
        carol = self.owner(server, 'carol', extra=['--max-handshakes', '6'])
        self.sync(carol, bob)
        socks = self.fill_handshakes(carol.lport, ['127.0.0.2', '127.0.0.3'],
                                     3)
        time.sleep(GRACE)
        newcomer = connect_from('127.0.0.4', carol.lport)
        self._holders.append(newcomer)
        self.assert_oldest_made_room(socks, newcomer, '--max-handshakes 6')
        self.legit_transfer(carol, bob)

    def test_silent_connection_closed_at_header_timeout(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        # default 5 s (was 10 s)
        a = connect_from('127.0.0.5', alice.lport)
        self._holders.append(a)
        self.assertTrue(closed_by_peer(a, scaled(5 + 3)),
                        'the default 5 s header timeout did not close a '
                        'silent connection')
        self.legit_transfer(alice, bob)
        # and what --header-timeout says
        carol = self.owner(server, 'carol', extra=['--header-timeout', '2'])
        c = connect_from('127.0.0.5', carol.lport)
        self._holders.append(c)
        self.assertTrue(closed_by_peer(c, scaled(2 + 3)),
                        '--header-timeout 2 did not close a silent '
                        'connection')

    def test_valid_token_over_max_transfers_gets_err_busy(self):
        server = self.start_server()
        alice = self.owner(server, extra=['--max-transfers', '1'])
        bob = self.file_client(server, 'bob')
        with open(os.path.join(alice.share, 'huge.bin'), 'wb') as f:
            f.truncate(256 * MIB)
        self.share(alice, 'small.txt', b'small file\n')
        hog = self.raw_requester(server, 'hog')
        raw2 = self.raw_requester(server, 'raw2')
        self.sync(alice, bob)
        self.barrier(alice, [hog, raw2])
        # hog takes the one slot and does not read
        host, port, token = self.raw_get_ok(hog, 1, 'alice', 'huge.bin')
        leg = socket.create_connection((host, port), timeout=scaled(10))
        self._holders.append(leg)
        leg.sendall(self.header(token))
        alice.wait_for('sending huge.bin to hog')
        # offers do not count: raw2 gets its token, but no slot
        host, port, token2 = self.raw_get_ok(raw2, 1, 'alice', 'small.txt')
        data = fetch(self, host, port, self.header(token2))
        self.assertTrue(data.startswith(b'ERR busy '), repr(data[:200]))
        self.assert_err_only(data, b'small file')
        # the slot comes back when hog goes
        leg.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack('ii', 1, 0))
        leg.close()  # a reset
        alice.wait_for(re.compile(r'^sending huge\.bin to hog failed: '))
        self.legit_transfer(alice, bob)


class OfferBudgetTest(HardenOwnerTestCase):
    """Uncollected offers lapse quickly and never lock anyone else out."""

    def test_uncollected_gets_of_one_requester_do_not_refuse_others(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        content = b'wanted by everyone\n' * 50
        self.share(alice, 'pop.txt', content)
        mallory = self.raw_requester(server, 'mallory')
        self.sync(alice, bob)
        self.barrier(alice, [mallory])
        answers = self.raw_gets(mallory, 'alice', 'pop.txt', 1, 24)
        ok = [a for a in answers.values() if a[0] == 'GET-OK']
        fail = [a for a in answers.values() if a[0] == 'GET-FAIL']
        self.assertGreater(len(ok), 0, answers)
        self.assertLessEqual(len(ok), 4, 'one requester held more than '
                             'max_transfers/2 offers: %r' % ok)
        for a in fail:
            self.assertEqual(a[2], 'busy', a)
            self.assertRegex(' '.join(a[3:]),
                             'mallory has too many uncollected requests')
        # bob asks for the same file of the same owner: it arrives
        start = self.request(bob, 'alice', 'pop.txt')
        self.expect_success(bob, 'pop.txt', 'alice', content, start)
        self.legit_transfer(alice, bob)
        # the same requester under another case of its name is still over
        mallory.close()
        bob.wait_for('* mallory left')
        mal2 = self.raw_requester(server, 'MALLORY')
        self.barrier(alice, [mal2])
        answer = self.raw_get(mal2, 1, 'alice', 'pop.txt')
        self.assertEqual(answer[:3], ['GET-FAIL', '1', 'busy'], answer)
        self.assertRegex(' '.join(answer[3:]),
                         'MALLORY has too many uncollected requests')

    def test_oldest_offer_dropped_when_all_offers_are_taken(self):
        server = self.start_server()
        # one transfer: one offer per requester, four in all
        alice = self.owner(server, extra=['--max-transfers', '1'])
        bob = self.file_client(server, 'bob')
        content = b'first come\n' * 20
        self.share(alice, 'o.txt', content)
        raws = [self.raw_requester(server, 'r%d' % i) for i in range(5)]
        self.sync(alice, bob)
        self.barrier(alice, raws)
        got = [self.raw_get_ok(r, 1, 'alice', 'o.txt') for r in raws]
        # r0's offer, the oldest, made room for r4's
        host, port, token = got[0]
        self.assert_err_only(fetch(self, host, port, self.header(token)),
                             b'first come')
        for host, port, token in got[4:0:-1]:
            self.assert_ok_reply(fetch(self, host, port, self.header(token)),
                                 content)
        self.legit_transfer(alice, bob)

    def test_uncollected_offer_lapses_after_15_seconds(self):
        server = self.start_server()
        alice = self.owner(server)
        bob = self.file_client(server, 'bob')
        self.share(alice, 'late.txt', b'too late\n')
        raw = self.raw_requester(server)
        self.sync(alice, bob)
        self.barrier(alice, [raw])
        host, port, token = self.raw_get_ok(raw, 1, 'alice', 'late.txt')
        time.sleep(16)
        data = fetch(self, host, port, self.header(token))
        self.assertTrue(data.startswith(b'ERR bad-token '), repr(data[:200]))
        self.assert_err_only(data, b'too late')
        self.assertNoLine(alice, re.compile(r'^sen(?:ding|t) late\.txt'))
        # a fresh token works
        host, port, token = self.raw_get_ok(raw, 2, 'alice', 'late.txt')
        self.assert_ok_reply(fetch(self, host, port, self.header(token)),
                             b'too late\n')



class BackToBackTest(HardenOwnerTestCase):
    """One requester may hold only half an owner's slots, yet a user who
    asks one owner for more files than that at once (a piped script) gets
    them all: the client asks again for those refused busy as its earlier
    transfers from that owner end."""

    def back_to_back(self, size, extra=(), count=8, timeout=60):
        server = self.start_server()
        alice = self.owner(server)  # --max-transfers 8: 4 per requester
        bob = self.file_client(server, 'bob', extra=extra)
        srcs = {}
        for i in range(count):
            name = 'f%d.bin' % i
            srcs[name] = os.path.join(alice.share, name)
            write_random(srcs[name], size)
        self.sync(alice, bob)
        start = len(bob.lines())
        # the whole script in one write, as a pipe delivers it
        bob.send_raw(''.join('f\nalice\n%s\n' % name
                             for name in sorted(srcs)).encode())
        for name in sorted(srcs):
            self.expect_success(bob, name, 'alice', srcs[name], start,
                                timeout)
        for name in sorted(srcs):
            alice.wait_for('sent %s to bob' % name, 30)
            self.assertEqual(self.count_outcomes(bob, name, 'alice'), 1)
        self.assertNoLine(bob, re.compile('busy'))
        self.assert_no_part_files(bob)
        self.assert_chat_works(alice, bob)
        return alice, bob

    def test_eight_files_back_to_back_from_one_owner_all_arrive(self):
        self.back_to_back(300000)

    def test_eight_files_back_to_back_all_arrive_through_the_relay(self):
        self.back_to_back(300000, extra=['--transfer', 'relay'])

    @harness.slow
    def test_eight_2mib_files_back_to_back_all_arrive(self):
        self.back_to_back(2 * MIB, timeout=120)

    @harness.slow
    def test_eight_2mib_files_back_to_back_all_arrive_through_the_relay(self):
        self.back_to_back(2 * MIB, extra=['--transfer', 'relay'], timeout=120)


class HalfCloseTest(HardenOwnerTestCase):

    def test_half_closed_requester_gets_the_whole_file(self):
        server = self.start_server()
        alice = self.owner(server)
        src = os.path.join(alice.share, 'half.bin')
        write_random(src, 4 * MIB + 17)
        with open(src, 'rb') as f:
            content = f.read()
        raw = self.raw_requester(server)
        self.barrier(alice, [raw])
        host, port, token = self.raw_get_ok(raw, 1, 'alice', 'half.bin')
        sock = socket.create_connection((host, port), timeout=scaled(10))
        self._holders.append(sock)
        sock.sendall(self.header(token))
        sock.shutdown(socket.SHUT_WR)  # as nc -N does
        data = bytearray()
        sock.settimeout(scaled(30))
        while True:
            chunk = sock.recv(MIB)
            if not chunk:
                break
            data += chunk
        self.assert_ok_reply(bytes(data), content)
        alice.wait_for('sent half.bin to rawreq')
        # before the header, EOF still ends the connection, with no byte
        host, port, token = self.raw_get_ok(raw, 2, 'alice', 'half.bin')
        early = socket.create_connection((host, port), timeout=scaled(10))
        self._holders.append(early)
        early.shutdown(socket.SHUT_WR)
        early.settimeout(scaled(10))
        self.assertEqual(early.recv(100), b'', 'bytes after an early EOF')
        self.assert_ok_reply(fetch(self, host, port, self.header(token)),
                             content)


class RelayServeFailTest(HardenOwnerTestCase):
    """The owner says at once when it cannot serve a relay."""

    def start_against_fake(self):
        fake = self.fake_server()
        home = os.path.join(self.tmpdir, 'home-alice')
        share = os.path.join(home, 'share')
        os.makedirs(share)
        lport = free_port()
        alice = Client(self, fake.port, name='alice', label='client-alice',
                       args=['-l', str(lport), '-p', str(fake.port),
                             '-s', '127.0.0.1', '--share', share,
                             '--downloads', home])
        conn = fake.accept()
        alice.send('alice')
        conn.wait_for('alice')
        conn.send('* welcome alice, 1 other user online')
        line = conn.wait_line(re.compile('^\x01FILEPORT '))
        self.assertRegex(line, '^\x01FILEPORT %d [0-9a-f]{64}$' % lport)
        alice.wait_registered()
        return fake, conn, alice, share, lport

    def test_relay_serve_for_offer_not_held_gets_relay_serve_fail(self):
        fake, conn, alice, share, lport = self.start_against_fake()
        write_file(os.path.join(share, 'r.txt'), b'relay me\n')
        key = os.urandom(16).hex()
        # unknown token
        unknown = os.urandom(16).hex()
        conn.send('\x01RELAY-SERVE %s %s' % (unknown, key))
        conn.wait_for('\x01RELAY-SERVE-FAIL %s %s' % (unknown, BAD_TOKEN_FAIL))
        # a token already used directly
        used = os.urandom(16).hex()
        conn.send('\x01SERVE %s bob r.txt' % used)
        conn.wait_for('\x01SERVE-OK ' + used)
        self.assert_ok_reply(fetch(self, '127.0.0.1', lport,
                                   self.header(used)), b'relay me\n')
        alice.wait_for('sent r.txt to bob')
        conn.send('\x01RELAY-SERVE %s %s' % (used, key))
        conn.wait_for('\x01RELAY-SERVE-FAIL %s %s' % (used, BAD_TOKEN_FAIL))
        # an offer still held: without a key (or with a malformed one) the
        # line is ignored; with one the owner opens its leg presenting the
        # key, not the token, and says no FAIL
        held = os.urandom(16).hex()
        conn.send('\x01SERVE %s bob r.txt' % held)
        conn.wait_for('\x01SERVE-OK ' + held)
        start = len(alice.lines())
        conn.send('\x01RELAY-SERVE ' + held)
        conn.send('\x01RELAY-SERVE %s %s' % (held, key.upper()))
        conn.send('\x01RELAY-SERVE %s %s extra' % (held, key))
        conn.send('\x01RELAY-SERVE %s %s' % (held, key))
        leg = fake.accept()
        leg.wait_for('\x01RELAY %s serve' % key)
        leg.send('CHATFILE 1 ' + held)
        leg.wait_for('OK 9')
        alice.wait_for('sent r.txt to bob', start=start)
        self.assertNoLine(conn, re.compile('^\x01RELAY-SERVE-FAIL %s' % held))
        self.assertEqual(leg.received[0], '\x01RELAY %s serve' % key)
        # a malformed token is not echoed
        conn.send('\x01RELAY-SERVE not-a-token ' + key)
        conn.send('\x01RELAY-SERVE %s %s' % (unknown, key))
        conn.wait_for('\x01RELAY-SERVE-FAIL %s %s' % (unknown,
                                                     BAD_TOKEN_FAIL))
        self.assertNoLine(conn, re.compile('^\x01RELAY-SERVE-FAIL not'))
        self.assertTrue(alice.alive(), alice.describe())
        # only one leg was opened, for the line with the key
        fake.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            self._holders.append(fake.sock.accept()[0])


class TakenPortTest(HardenOwnerTestCase):

    def _taken_port(self):
        try:
            holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            holder.bind(('::', 0))
        except OSError:
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.bind(('', 0))
        self._holders.append(holder)
        holder.listen(1)
        return holder.getsockname()[1]

    def _wait_warning(self, alice, taken):
        alice.wait_stderr(
            'chat-client: cannot listen on port %d (address already in use); '
            'others can get your files only through the server\'s relay, if '
            'it relays' % taken)
        self.assertNotIn('will fail', alice.stderr_text())
        self.assertNotIn('will get', alice.stderr_text())
        self.assertNotIn('cannot listen', alice.stdout_text())

    def test_taken_listen_port_warning_says_files_go_through_relay(self):
        server = self.start_server()
        taken = self._taken_port()
        alice = self.file_client(server, 'alice', lport=taken)
        bob = self.file_client(server, 'bob')
        self._wait_warning(alice, taken)
        self.sync(alice, bob)
        self.legit_transfer(alice, bob)
        bob.wait_for('alice accepts no connections; relaying through the '
                     'server')

    def test_taken_listen_port_warning_holds_without_relay(self):
        server = self.start_server('--no-relay')
        taken = self._taken_port()
        alice = self.file_client(server, 'alice', lport=taken)
        bob = self.file_client(server, 'bob')
        self._wait_warning(alice, taken)
        self.sync(alice, bob)
        self.share(alice, 'n.txt', b'no relay\n')
        start = self.request(bob, 'alice', 'n.txt')
        self.expect_failure(bob, 'n.txt', 'alice',
                            'the owner does not serve files', start)


class HelpTest(HardenOwnerTestCase):

    def test_help_describes_handshake_options(self):
        proc = harness.Process(self, [CHAT_CLIENT, '--help'], 'client-help',
                               stdin=subprocess.DEVNULL)
        self.assertEqual(proc.wait_exit(), 0)
        text = proc.stdout_text()
        self.assertRegex(text, r'\n  --max-handshakes N +connections to the '
                         r'file port that have not yet\n')
        self.assertIn('(default 32, at most 4', text)
        self.assertRegex(text, r'\n  --header-timeout S +seconds a '
                         r'connection to the file port may take\n')
        self.assertIn('to present its token (default 5)', text)
        for bad in (['--max-handshakes', '0'], ['--max-handshakes', 'x'],
                    ['--header-timeout', '0'], ['--header-timeout=-1']):
            p = harness.Process(self, [CHAT_CLIENT, '-l', '0', '-p', '1'] +
                                bad, 'client-bad', stdin=subprocess.DEVNULL)
            self.assertEqual(p.wait_exit(), 2, bad)
            self.assertIn('takes 1-', p.stderr_text())


if __name__ == '__main__':
    harness.main()
