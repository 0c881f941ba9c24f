#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the server's relay: per-user and per-address limits, short unpaired legs, half-close, reasons given at once.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_relay.py -v

What is checked:

  * two colluding users (an owner that says SERVE-OK to everything and a
    requester that opens relay fetch legs and waits) hold at most
    --max-relays-per-user relays, and one address at most
    --max-relays-per-ip; the extra leg gets "\\x01RELAY-FAIL busy <why>";
    only the requester is charged, so one requester holding relays with an
    owner never shuts that owner out for others;
  * only the owner opens a relay's serve leg: "\\x01RELAY-SERVE <token>
    <key>" reaches the owner alone and its leg presents the key; a leg
    presenting the token (as a requester could) or any other key gets
    "\\x01RELAY-FAIL bad-token ...";
  * an owner that leaves the chat fails its waiting fetch legs at once with
    "\\x01RELAY-FAIL owner-left the owner left the chat";
  * an unpaired leg may send 1 KiB and gives up after 5 s by default;
    one more byte gets "\\x01RELAY-FAIL too-much-data ..." at once;
  * a ticket relays within 15 s; a requester keeps at most 16 and a flood
    of tickets from others never pushes out a requester's own;
  * a requester that half-closes after its header (nc -N) gets the whole
    file through the relay, and the owner sees the EOF;
  * an owner's "\\x01RELAY-SERVE-FAIL <token> <code> <text>" fails the
    waiting fetch leg at once with its (sanitised) text and frees the
    slot; from anybody else it is ignored.

Attacks are driven over raw sockets; while each runs, a fresh relay
between other users (real chat-clients with --transfer relay) must work.
"""

import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import LineSocket, scaled  # noqa: E402
from test_files import MIB, fetch, write_sparse  # noqa: E402
from test_relay import (  # noqa: E402
    RelayFakeOwner, RelayTestCase, fetch_rest, relay_ended_re,
    relay_fetch_payload, relay_serve_re, relay_started_re)


def busy(why):
    return b'\x01RELAY-FAIL busy ' + why.encode() + b'\n'


TOO_MUCH = (b'\x01RELAY-FAIL too-much-data a relay leg may send at most '
            b'1024 bytes before it is paired\n')


class HardenRelayCase(RelayTestCase):
    """Helpers: tickets arranged by hand, fetch legs, a legitimate relay."""

    _legit = 0

    def arrange(self, raw, owner, count, first_id=1, prefix='h'):
        """raw GETs count files from owner (a RelayFakeOwner), which says
        SERVE-OK to each; returns the tokens in order."""
        tokens = []
        for rid in range(first_id, first_id + count):
            raw.send('\x01GET %d %s %s%d.bin' % (rid, owner.name, prefix, rid))
            token, requester, _ = owner.wait_serve()
            self.assertEqual(requester, raw.name)
            owner.serve_ok(token)
            answer = raw.wait_line(re.compile(
                '^\x01GET-(?:OK|FAIL) %d ' % rid))[1:].split(' ')
            self.assertEqual(answer[0], 'GET-OK', 'GET %d: %r' % (rid, answer))
            self.assertEqual(answer[-1], token)
            tokens.append(token)
        return tokens

    def fetch_leg(self, server, token, source=None, label='fetch-leg'):
        """Opens a requester's relay leg (from source, an IPv4 address)
        and sends its two lines; returns the LineSocket."""
        src = (source, 0) if source is not None else None
        sock = socket.create_connection(('127.0.0.1', server.port),
                                        timeout=scaled(10),
                                        source_address=src)
        leg = LineSocket(self, sock, label)
        leg.send_raw(relay_fetch_payload(token))
        return leg

    def refused(self, server, token, source=None):
        """Every byte a fetch leg for token gets before it is closed."""
        leg = self.fetch_leg(server, token, source, 'refused-leg')
        return fetch_rest(self, leg)

    def assert_waiting(self, legs):
        """The legs got nothing and are still open."""
        for leg in legs:
            leg.pump()
            self.assertFalse(leg.eof or leg.received or leg.buf,
                             '%r was answered or closed: %r %r'
                             % (leg, leg.received, leg.buf))

    def legit_relay(self, server, host=None):
        """A fresh relay between two new real chat-clients (the requester
        with --transfer relay) succeeds."""
        HardenRelayCase._legit += 1
        k = HardenRelayCase._legit
        owner, req = 'lowner%d' % k, 'lreq%d' % k
        via = ['-s', host] if host is not None else []
        alice = self.file_client(server, owner, extra=via)
        bob = self.file_client(server, req,
                               extra=via + ['--transfer', 'relay'])
        content = os.urandom(200000)
        self.share(alice, 'legit.bin', content)
        self.sync(alice, bob)
        start = self.request(bob, owner, 'legit.bin')
        self.expect_success(bob, 'legit.bin', owner, content, start,
                            timeout=20)
        self.assert_relay_logged(server, 'legit.bin', owner, req,
                                 len(content))
        return alice, bob


class RelaySlotLimitTest(HardenRelayCase):
    """Hoarded relay slots: per-user and per-address limits."""

    def test_colluding_pair_holds_at_most_four_relays(self):
        server = self.start_server('--max-relays', '6', '--relay-wait', '60')
        fake = RelayFakeOwner(self, server, name='hoardowner', port=0)
        raw = self.raw_requester(server, 'hoarder')
        self.barrier(fake.chat, [raw])
        tokens = self.arrange(raw, fake, 6)
        legs = []
        for token in tokens[:4]:
            legs.append(self.fetch_leg(server, token))
            fake.wait_relay_serve(token)
        for token in tokens[4:]:
            self.assertEqual(self.refused(server, token),
                             busy('you have 4 relays running'),
                             'a fifth relay of the same requester')
        self.barrier(raw, [fake.chat])
        for token in tokens[4:]:
            self.assertNoLine(fake.chat, relay_serve_re(token),
                              'the owner was asked for a refused relay')
        # another requester of the same owner: only requesters are
        # charged, so the owner is never shut out by one of them
        raw2 = self.raw_requester(server, 'hoarder2')
        token = self.arrange(raw2, fake, 1, first_id=7)[0]
        leg = self.fetch_leg(server, token)
        fake.wait_relay_serve(token)
        content = os.urandom(5000)
        fake.send_file(fake.open_leg(token), content)
        self.assert_ok_reply(fetch_rest(self, leg), content)
        # the attack still holds its four legs, and others relay
        self.assert_waiting(legs)
        self.legit_relay(server)
        self.assert_waiting(legs)
        # a refused token stays good: once a slot is free it relays
        fake.send_file(fake.open_leg(tokens[0]), content)
        self.assert_ok_reply(fetch_rest(self, legs[0]), content)
        leg = self.fetch_leg(server, tokens[4])
        fake.wait_relay_serve(tokens[4])
        fake.send_file(fake.open_leg(tokens[4]), content)
        self.assert_ok_reply(fetch_rest(self, leg), content)

    def test_idle_paired_relays_give_their_slots_to_a_new_relay(self):
        """A colluding pair that pairs its legs and then sends nothing
        does not hold every slot for the 60 s idle limit: once all are
        taken, one idle for 5 s goes to a new relay."""
        server = self.start_server('--max-relays', '2',
                                   '--max-relays-per-user', '0',
                                   '--max-relays-per-ip', '0')
        fake = RelayFakeOwner(self, server, name='idleowner', port=0)
        raw = self.raw_requester(server, 'idler')
        self.barrier(fake.chat, [raw])
        tokens = self.arrange(raw, fake, 2)
        legs = []
        for token in tokens:
            legs.append(self.fetch_leg(server, token))
            fake.open_leg(token)  # paired, then silent both ways
        self.assert_waiting(legs)
        # full, and nothing idle for 5 s yet: a newcomer is refused
        raw2 = self.raw_requester(server, 'early')
        token = self.arrange(raw2, fake, 1, first_id=3)[0]
        self.assertEqual(self.refused(server, token),
                         busy('the server runs 2 relays already'))
        # The server's 5 s is wall-clock time, valgrind or not; a scaled
        # wait (55 s) would run into the 60 s idle limit, which closes the
        # pair on its own before the new relay can take its slot.
        time.sleep(5.5)
        self.legit_relay(server)
        self.assertEqual(
            len([l for l in server.stderr_lines()
                 if 'closed to make room' in l]), 1, server.describe())

    def test_relay_still_delivering_to_a_slow_reader_is_not_idle(self):
        """Bytes going out count as activity: a relay paused on its budget
        while its requester reads slowly keeps its slot."""
        server = self.start_server('--max-relays', '1',
                                   '--max-relays-per-user', '0',
                                   '--max-relays-per-ip', '0')
        fake = RelayFakeOwner(self, server, name='bigowner', port=0)
        raw = self.raw_requester(server, 'slowreq')
        self.barrier(fake.chat, [raw])
        tokens = self.arrange(raw, fake, 2)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', server.port))
        sock.sendall(relay_fetch_payload(tokens[0]))
        serve = fake.open_leg(tokens[0])
        content = os.urandom(3 * MIB)
        sender = threading.Thread(target=fake.send_file,
                                  args=(serve, content), daemon=True)
        sender.start()
        got = bytearray()
        sock.settimeout(scaled(5))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6.5:  # about 16 KB/s for 6.5 s
            got += sock.recv(4096)
            time.sleep(0.25)
        self.assertEqual(self.refused(server, tokens[1]),
                         busy('the server runs 1 relays already'))
        while True:
            chunk = sock.recv(MIB)
            if not chunk:
                break
            got += chunk
        self.assert_ok_reply(bytes(got), content)
        self.assertFalse([l for l in server.stderr_lines()
                          if 'closed to make room' in l], server.describe())

    def test_one_address_holds_at_most_max_relays_per_ip(self):
        server = self.start_server('--max-relays', '5', '--max-relays-per-ip',
                                   '3', '--max-relays-per-user', '0',
                                   '--relay-wait', '60')
        if not any('IPv6' in l for l in server.stderr_lines()):
            self.skipTest('the server does not listen on IPv6')
        fake = RelayFakeOwner(self, server, name='ipowner', port=0)
        raw = self.raw_requester(server, 'iphoarder')
        self.barrier(fake.chat, [raw])
        tokens = self.arrange(raw, fake, 5)
        legs = []
        for token in tokens[:3]:
            legs.append(self.fetch_leg(server, token))
            fake.wait_relay_serve(token)
        self.assertEqual(self.refused(server, tokens[3]),
                         busy('too many relays from your address'),
                         'a fourth relay from 127.0.0.1')
        # from another address: only the requester's address counts, not
        # the owner's (at 127.0.0.1 too)
        legs.append(self.fetch_leg(server, tokens[4], source='127.0.0.2'))
        fake.wait_relay_serve(tokens[4])
        self.assert_waiting(legs)
        self.legit_relay(server, host='::1')
        self.assert_waiting(legs)

    def test_unpaired_leg_holds_1_kib_and_gives_up_after_5_s(self):
        server = self.start_server()
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        token = self.arrange(raw, fake, 1)[0]
        payload = relay_fetch_payload(token)
        head = len(payload) - len(b'\x01RELAY %s fetch\n' % token.encode())
        leg = self.fetch_leg(server, token)
        leg.send_raw(b'x' * (1024 - head))  # exactly 1 KiB before pairing
        fake.wait_relay_serve(token)
        t0 = time.monotonic()
        leg.wait_eof(timeout=9)  # --relay-wait 5 by default
        waited = time.monotonic() - t0
        self.assertEqual(leg.received, ['\x01RELAY-FAIL timeout the owner '
                                        'did not connect to the relay'])
        self.assertGreater(waited, 3, 'gave up before 5 s (%.2f s)' % waited)


class RelayEarlyDataTest(HardenRelayCase):
    """A leg over 1 KiB before pairing is told why."""

    def test_too_much_early_data_gets_too_much_data(self):
        server = self.start_server('--relay-wait', '60')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        tokens = self.arrange(raw, fake, 3)
        for token in tokens:
            data = fetch(self, '127.0.0.1', server.port,
                         relay_fetch_payload(token) + b'x' * 2000)
            self.assertEqual(data, TOO_MUCH)
        # the slots are free again: a relay between others works, and one
        # more byte than allowed is told too
        self.legit_relay(server)
        token = self.arrange(raw, fake, 1, first_id=4)[0]
        leg = self.fetch_leg(server, token)
        fake.wait_relay_serve(token)
        head = len(relay_fetch_payload(token)) - len(
            b'\x01RELAY %s fetch\n' % token.encode())
        leg.send_raw(b'y' * (1024 - head))
        time.sleep(0.2)
        self.assert_waiting([leg])
        leg.send_raw(b'y')
        self.assertEqual(fetch_rest(self, leg), TOO_MUCH)


class RelayTicketTest(HardenRelayCase):
    """Tickets: 15 s, 16 per requester, nobody loses one to a flood."""

    def test_ticket_expires_after_15_s(self):
        server = self.start_server('--relay-wait', '2')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        token = self.arrange(raw, fake, 1)[0]
        time.sleep(16)
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(token))
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token '),
                        'a 16 s old ticket got %r' % data[:200])
        self.assertNoLine(fake.chat, relay_serve_re(token))

    def test_requester_keeps_its_16_newest_tickets(self):
        server = self.start_server('--relay-wait', '2')
        fake = RelayFakeOwner(self, server, port=0)
        victim = self.raw_requester(server, 'victim')
        raw = self.raw_requester(server, 'flooder')
        self.barrier(fake.chat, [raw, victim])
        mine = self.arrange(victim, fake, 1, prefix='v')[0]
        tokens = self.arrange(raw, fake, 17)
        data = fetch(self, '127.0.0.1', server.port,
                     relay_fetch_payload(tokens[0]))
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token '),
                        'the 17th ticket did not replace the first: %r'
                        % data[:200])
        content = os.urandom(3000)
        for token in (tokens[1], tokens[16], mine):
            leg = self.fetch_leg(server, token)
            fake.wait_relay_serve(token)
            fake.send_file(fake.open_leg(token), content)
            self.assert_ok_reply(fetch_rest(self, leg), content)

    @harness.slow
    def test_ticket_flood_never_drops_another_requesters_ticket(self):
        server = self.start_server('--rate', '0', '--max-per-ip', '0',
                                   '--relay-wait', '5')
        fake = RelayFakeOwner(self, server, port=0)
        victim = self.raw_requester(server, 'victim')
        flooders = [self.raw_client(server.port, 'fl%d' % k)
                    for k in range(257)]
        self.barrier(fake.chat, [victim])
        mine = self.arrange(victim, fake, 1, prefix='v')[0]
        # 257 requesters x 16 tickets: 4112, more than the 4096 kept
        for k, f in enumerate(flooders):
            f.send_raw(b''.join(b'\x01GET %d %s fl%d-%d.bin\n'
                                % (i, fake.name.encode(), k, i)
                                for i in range(1, 17)))
        want, seen = 16 * len(flooders), 0
        deadline = time.monotonic() + scaled(60)
        chat = fake.chat
        while seen < want:
            self.assertLess(time.monotonic(), deadline,
                            'only %d SERVE lines arrived' % seen)
            chat._fill(0.2)
            batch = []
            for line in chat.received[chat._next:]:
                if line.startswith('\x01SERVE '):
                    batch.append(line.split(' ')[1])
            chat._next = len(chat.received)
            fake._serve_next = chat._next
            seen += len(batch)
            if batch:
                chat.send_raw(b''.join(b'\x01SERVE-OK %s\n' % t.encode()
                                       for t in batch))
        self.barrier(fake.chat, [victim])  # every SERVE-OK was handled
        self.legit_relay(server)
        content = os.urandom(3000)
        leg = self.fetch_leg(server, mine)
        fake.wait_relay_serve(mine)
        fake.send_file(fake.open_leg(mine), content)
        self.assert_ok_reply(fetch_rest(self, leg), content)


class RelayHalfCloseTest(HardenRelayCase):
    """A requester that shuts its write side down still gets the file."""

    def _half_closed_relay(self, early):
        server = self.start_server()
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        token = self.arrange(raw, fake, 1)[0]
        sock = socket.create_connection(('127.0.0.1', server.port),
                                        timeout=scaled(10))
        LineSocket(self, sock, 'half-closed-leg')  # closed at cleanup
        sock.sendall(relay_fetch_payload(token))
        if early:
            sock.shutdown(socket.SHUT_WR)  # as nc -N does
        fake.wait_relay_serve(token)
        owner_leg = fake.open_leg(token)
        if not early:
            time.sleep(0.2)
            sock.shutdown(socket.SHUT_WR)
        owner_leg.settimeout(scaled(10))
        try:
            rest = owner_leg.recv(100)
        except socket.timeout:
            self.fail('the owner leg saw no EOF after the CHATFILE line')
        self.assertEqual(rest, b'', 'the owner leg got more than the header')
        content = os.urandom(300000)
        fake.send_file(owner_leg, content)
        data = bytearray()
        sock.settimeout(scaled(15))
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assert_ok_reply(bytes(data), content)
        self.assert_relay_logged(server, 'h1.bin', fake.name, 'rawreq',
                                 len(content))

    def test_half_close_before_owner_connects_still_gets_file(self):
        self._half_closed_relay(early=True)

    def test_half_close_after_pairing_still_gets_file(self):
        self._half_closed_relay(early=False)


class RelayServeFailTest(HardenRelayCase):
    """RELAY-SERVE-FAIL: the requester hears at once why."""

    def test_owner_relay_serve_fail_fails_fetch_leg_at_once(self):
        server = self.start_server('--max-relays', '1', '--relay-wait', '60')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        other = self.raw_client(server.port, 'meddler')
        self.barrier(fake.chat, [raw, other])
        token = self.arrange(raw, fake, 1)[0]
        leg = self.fetch_leg(server, token)
        fake.wait_relay_serve(token)
        # from someone else, or for an unknown token: silently ignored
        other.send('\x01RELAY-SERVE-FAIL %s bad-token not mine' % token)
        fake.chat.send('\x01RELAY-SERVE-FAIL %s bad-token unknown'
                       % os.urandom(16).hex())
        # malformed: like any other verb
        fake.chat.send('\x01RELAY-SERVE-FAIL %s' % token)
        fake.chat.wait_for(re.compile('^! bad-command '))
        self.barrier(other, [fake.chat, raw])
        self.barrier(fake.chat, [other, raw])
        self.assertNoLine(other, re.compile('^! '))
        self.assertEqual([l for l in fake.chat.received if l.startswith('!')],
                         [l for l in fake.chat.received
                          if l.startswith('! bad-command ')])
        self.assert_waiting([leg])
        # the owner's own: the leg is told at once, the text neutralised
        fake.chat.send_raw(b'\x01RELAY-SERVE-FAIL %s bad-token already '
                           b'sent \x1b[31mdirectly\n' % token.encode())
        self.assertEqual(fetch_rest(self, leg),
                         b'\x01RELAY-FAIL bad-token the owner no longer holds '
                         b'this transfer (already sent ^[[31mdirectly)\n')
        # the one slot is free again
        self.legit_relay(server)

    def test_long_owner_reason_still_fits_a_header_line(self):
        """A reason that escaping makes four times longer is cut so that
        the requester can still read the line (its header limit is 128
        bytes), not taken for a protocol error."""
        server = self.start_server('--relay-wait', '60')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        token = self.arrange(raw, fake, 1)[0]
        leg = self.fetch_leg(server, token)
        fake.wait_relay_serve(token)
        fake.chat.send_raw(b'\x01RELAY-SERVE-FAIL %s bad-token ' %
                           token.encode() + b'\x1b' * 150 + b'\n')
        line = fetch_rest(self, leg)
        self.assertLessEqual(len(line), 128, line)
        self.assertTrue(line.startswith(
            b'\x01RELAY-FAIL bad-token the owner no longer holds this '
            b'transfer (^[^['), line)
        self.assertTrue(line.endswith(b'...\n'), line)


def first_line(case, sock, timeout=10):
    """The bytes a socket receives up to and including its first newline
    (or all of them, when it is closed first)."""
    data = b''
    sock.settimeout(scaled(timeout))
    try:
        while not data.endswith(b'\n') and len(data) < 4096:
            chunk = sock.recv(1)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        case.fail('timeout: no line and no end; got %r' % data[:200])
    return data


class RelayServeKeyTest(HardenRelayCase):
    """Only the owner opens a relay's serve leg: RELAY-SERVE carries a key
    that the requester never sees, and a serve leg must present it."""

    def test_requester_cannot_pair_its_own_serve_leg(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        contents = {}
        for k in (1, 2, 3):
            contents[k] = os.urandom(30000 + k)
            self.share(alice, 'm%d.bin' % k, contents[k])
        mallory = self.raw_requester(server, 'mallory')
        self.barrier(alice, [mallory])
        for k in (1, 2, 3):
            _, port, token = self.raw_get_ok(mallory, k, 'alice',
                                             'm%d.bin' % k)
            self.assertEqual(port, 0)
            # the serve leg is connected first, so that its line follows
            # the fetch leg's at once, well before the real owner's leg
            serve = socket.create_connection(('127.0.0.1', server.port),
                                             timeout=scaled(10))
            self._sockets.append(serve)
            leg = self.fetch_leg(server, token, label='mallory-fetch')
            serve.sendall(b'\x01RELAY %s serve\n' % token.encode())
            line = first_line(self, serve)
            self.assertTrue(line.startswith(b'\x01RELAY-FAIL bad-token '),
                            'a serve leg opened with the token got %r'
                            % line[:200])
            self.assertNotIn(b'CHATFILE', line)
            # the real owner serves the requester's own fetch leg
            self.assert_ok_reply(fetch_rest(self, leg), contents[k])
            alice.wait_for('sent m%d.bin to mallory' % k)
            self.assert_relay_logged(server, 'm%d.bin' % k, 'alice',
                                     'mallory', len(contents[k]))
        # mallory never saw a key: nothing but its own lines
        self.assertNoLine(mallory, re.compile('^\x01RELAY-SERVE'))

    def test_serve_leg_must_present_the_key_of_relay_serve(self):
        server = self.start_server('--relay-wait', '60')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        self.barrier(fake.chat, [raw])
        token = self.arrange(raw, fake, 1)[0]
        leg = self.fetch_leg(server, token)
        key = fake.wait_relay_serve(token)
        self.assertRegex(key, '^[0-9a-f]{32}$')
        self.assertNotEqual(key, token)
        near = key[:-1] + ('0' if key[-1] != '0' else '1')
        for wrong in (token, os.urandom(16).hex(), near):
            data = fetch(self, '127.0.0.1', server.port,
                         b'\x01RELAY %s serve\n' % wrong.encode())
            self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token '),
                            'a serve leg with %r got %r' % (wrong, data[:200]))
            self.assertEqual(data.count(b'\n'), 1, data)
        self.assert_waiting([leg])
        content = os.urandom(20000)
        fake.send_file(fake.open_leg(token), content)
        self.assert_ok_reply(fetch_rest(self, leg), content)
        self.assertNoLine(raw, re.compile(re.escape(key)))
        # the key served once: the relay is over
        data = fetch(self, '127.0.0.1', server.port,
                     b'\x01RELAY %s serve\n' % key.encode())
        self.assertTrue(data.startswith(b'\x01RELAY-FAIL bad-token '), data)

    def test_requester_holding_relays_does_not_shut_the_owner_out(self):
        server = self.start_server()
        alice = self.owner_without_port(server)
        write_sparse(os.path.join(alice.share, 'big.bin'), 1 << 30)
        mallory = self.raw_requester(server, 'mallory')
        self.barrier(alice, [mallory])
        legs, tokens = [], []
        # as many as alice lets one requester hold (half its 8 transfers)
        for k in range(1, 5):
            tokens.append(self.raw_get_ok(mallory, k, 'alice', 'big.bin')[2])
        # four relays with alice that mallory does not read: paired, full
        for token in tokens:
            legs.append(self.fetch_leg(server, token, label='mallory-leg'))
        pattern = relay_started_re('big.bin', 'alice', 'mallory')
        deadline = time.monotonic() + scaled(30)
        while True:
            started = [l for l in server.stderr_lines() if pattern.search(l)]
            if len(started) >= 4:
                break
            self.assertLess(time.monotonic(), deadline,
                            'only %d of mallory\'s relays paired' % len(started))
            time.sleep(0.1)
        self.assertEqual(len(started), 4, started)
        # carol still gets alice's files through the relay
        content = os.urandom(100000)
        self.share(alice, 'c.bin', content)
        carol = self.file_client(server, 'carol')
        self.sync(alice, carol)
        at = self.request(carol, 'alice', 'c.bin')
        self.expect_success(carol, 'c.bin', 'alice', content, at, timeout=30)
        self.assert_relay_logged(server, 'c.bin', 'alice', 'carol',
                                 len(content))
        self.assertFalse(self.log_match(server, relay_ended_re(
            'big.bin', 'alice', 'mallory')), 'a relay of mallory ended')


class RelayOwnerLeftTest(HardenRelayCase):
    """An owner that leaves fails its waiting fetch legs at once."""

    def test_owner_leaving_fails_waiting_fetch_legs_at_once(self):
        server = self.start_server('--relay-wait', '60')
        fake = RelayFakeOwner(self, server, port=0)
        raw = self.raw_requester(server)
        other = self.raw_requester(server, 'otherreq')
        self.barrier(fake.chat, [raw, other])
        tokens = self.arrange(raw, fake, 2)
        tokens += self.arrange(other, fake, 1, first_id=3)
        # one relay paired, mid-file; two fetch legs waiting for the owner
        paired = self.fetch_leg(server, tokens[0], label='paired-leg')
        fake.wait_relay_serve(tokens[0])
        owner_leg = fake.open_leg(tokens[0])
        waiting = []
        for token in tokens[1:]:
            waiting.append(self.fetch_leg(server, token, label='waiting-leg'))
            fake.wait_relay_serve(token)
        self.assert_waiting(waiting)
        fake.chat.close()
        for leg in waiting:
            self.assertEqual(fetch_rest(self, leg, timeout=20),
                             b'\x01RELAY-FAIL owner-left the owner left the '
                             b'chat\n')
        # the paired relay runs on over its own connection
        content = os.urandom(50000)
        fake.send_file(owner_leg, content)
        self.assert_ok_reply(fetch_rest(self, paired), content)
        self.legit_relay(server)


if __name__ == '__main__':
    harness.main()
