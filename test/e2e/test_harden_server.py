#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the server: per-requester arrangements, canonical owner names, a neutralised log, the slow consumer's last line, errors never swallowed.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_server.py -v

What is checked (docs/PROTOCOL.md):

  * a GET whose owner is found is answered with "\\x01GET-OWNER <id>
    <owner>" (the name as registered) before its GET-OK or GET-FAIL;
  * one requester's unanswered GETs (at most 16) never make the server
    refuse another requester;
  * the server's log holds no raw control, bidi or invalid byte that a peer
    sent, and one line per event;
  * a slow consumer is sent "! slow-consumer ..." as its last line before
    the server closes it;
  * SIGTERM with clients in every state (registering, registered, throttled,
    lingering, relay legs, pending GETs) ends in exit 0 with no handle left
    open; a start-up that cannot get what it needs fails with exit 1.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import LOG_LINE, Server, scaled  # noqa: E402
from test_files import FileTestCase, RawOwner  # noqa: E402
from test_relay import relay_serve_re  # noqa: E402

LOOPBACK = '127.0.0.1'
GET_ANSWER = re.compile('^\x01GET-(?:OK|FAIL) ')
SLOW_LINE = re.compile(r'^! slow-consumer you were disconnected: (\d+) bytes '
                       r'of output were waiting$')
# Bytes that must never reach the log raw: C0 controls but TAB (the line
# feed ends each line and is checked apart), DEL, C1 controls, bidi
# controls (U+202A-U+202E, U+2066-U+2069) and invalid UTF-8.
RAW_CONTROL = re.compile(r'[\x00-\x08\x0a-\x1f\x7f\x80-\x9f'
                         '\u202a-\u202e\u2066-\u2069\udc80-\udcff]')


class ServerCase(FileTestCase):
    """Helpers: raw requesters and owners, and reading the log."""

    def requester(self, server, name='rawreq'):
        raw = self.raw_client(server.port, name, host=LOOPBACK)
        raw.send('\x01FILEPORT 0')
        return raw

    def get(self, raw, rid, owner, file):
        """Sends GET; returns the lines about rid up to its answer."""
        if isinstance(file, str):
            file = file.encode('utf-8')
        raw.send(b'\x01GET %d %s %s' % (rid, owner.encode(), file))
        mine = re.compile('^\x01GET-[A-Z]+ %d(?: |$)' % rid)
        start = raw._next
        end = raw.wait_for(re.compile('^\x01GET-(?:OK|FAIL) %d(?: |$)' % rid),
                           start=start)
        return [line for line in raw.received[start:end + 1]
                if mine.search(line)]

    def wait_log(self, server, pattern, timeout=10):
        i = server.wait_stderr(pattern, timeout)
        return server.stderr_lines()[i]

    def stop_server(self, server, timeout=10):
        server.send_signal(signal.SIGTERM)
        return server.wait_exit(timeout)


# ---- item 1: the owner's name as registered --------------------------------

class CanonicalOwnerTest(ServerCase):
    """GET-OWNER names the owner as it registered, whatever case the
    requester typed, before the answer to that GET."""

    def test_get_owner_names_the_owner_as_registered_before_get_ok(self):
        server = self.start_server()
        owner = RawOwner(self, server, 'AliCe', 0)
        req = self.requester(server)
        self.sync_raw(owner.chat, req)
        req.send('\x01GET 7 aLICE notes.txt')
        token, who, file = owner.wait_serve()
        self.assertEqual((who, file), ('rawreq', 'notes.txt'))
        owner.serve_ok(token)
        req.wait_for(GET_ANSWER, start=0)
        lines = [l for l in req.received if l.startswith('\x01GET')]
        self.assertEqual(lines[0], '\x01GET-OWNER 7 AliCe',
                         'no GET-OWNER before the answer: %r' % lines)
        self.assertRegex(lines[1], '^\x01GET-OK 7 ')
        self.assertEqual(len(lines), 2, lines)

    def test_get_owner_precedes_each_failure_once_the_owner_is_found(self):
        server = self.start_server()
        self.raw_client(server.port, 'PlainNc', host=LOOPBACK)  # no FILEPORT
        req = self.requester(server, 'RawReq')
        cases = [
            (1, 'plainnc', 'a.txt', 'no-file-port', 'PlainNc'),
            (2, 'RAWREQ', 'a.txt', 'self', 'RawReq'),
            (3, 'nobody', 'a.txt', 'no-such-user', None),
            (4, 'PLAINNC', '.hidden', 'bad-name', None),
        ]
        for rid, owner, file, code, canonical in cases:
            lines = self.get(req, rid, owner, file)
            want = [] if canonical is None else [
                '\x01GET-OWNER %d %s' % (rid, canonical)]
            self.assertEqual(lines[:-1], want, 'GET %d %s %s: %r' % (
                rid, owner, file, lines))
            self.assertRegex(lines[-1], '^\x01GET-FAIL %d %s ' % (rid, code))

    def test_chat_client_fetches_through_get_owner_unbothered(self):
        """A chat-client (which ignores control verbs it does not know)
        still fetches a file from an owner named in another case."""
        server = self.start_server()
        alice = self.file_client(server, 'Alice')
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        self.share(alice, 'hello.txt', b'hello, bob\n')
        start = len(bob.lines())
        self.request(bob, 'alice', 'hello.txt')
        bob.wait_for(re.compile(r'^received hello\.txt \(11 bytes\) from '
                                r'(?i:alice), SHA-256 verified$'), 15,
                     start=start)
        with open(os.path.join(bob.downloads, 'hello.txt'), 'rb') as f:
            self.assertEqual(f.read(), b'hello, bob\n')
        self.assertNoLine(bob, re.compile('GET-OWNER'))

    def sync_raw(self, *conns):
        for c in conns:
            self.barrier(c, [o for o in conns if o is not c], 'sync')


# ---- item 2: unanswered GETs are bounded per requester ---------------------

class PendingPerRequesterTest(ServerCase):
    """At most 16 GETs per requester wait for an owner's answer; one
    requester at its bound never makes the server refuse another."""

    MAX_PENDING = 16

    def test_one_requester_at_its_bound_never_refuses_another(self):
        server = self.start_server()
        owner = RawOwner(self, server, 'owner', 0)
        greedy = self.requester(server, 'greedy')
        other = self.requester(server, 'other')
        self.barrier(greedy, [owner.chat, other], 'sync')
        for rid in range(1, self.MAX_PENDING + 1):
            greedy.send('\x01GET %d owner f%d.txt' % (rid, rid))
        serves = [owner.wait_serve() for _ in range(self.MAX_PENDING)]
        self.assertEqual({s[1] for s in serves}, {'greedy'})
        answer = self.get(greedy, 99, 'owner', 'one-too-many.txt')[-1]
        self.assertRegex(answer, '^\x01GET-FAIL 99 busy ')
        # Another requester is served as if greedy were not there, each time.
        for rid in range(1, 4):
            other.send('\x01GET %d owner mine%d.txt' % (rid, rid))
            token, who, file = owner.wait_serve()
            self.assertEqual((who, file), ('other', 'mine%d.txt' % rid))
            owner.serve_ok(token)
            other.wait_for(re.compile('^\x01GET-OK %d ' % rid), start=0)
        # An answer frees one of greedy's slots, and only one.
        owner.serve_ok(serves[0][0])
        greedy.wait_for(re.compile('^\x01GET-OK 1 '), start=0)
        greedy.send('\x01GET 100 owner again.txt')
        self.assertEqual(owner.wait_serve()[1:], ('greedy', 'again.txt'))
        self.assertRegex(self.get(greedy, 101, 'owner', 'no.txt')[-1],
                         '^\x01GET-FAIL 101 busy ')
        # When greedy leaves, its requests go with it and the owner's late
        # answers are ignored; other is still served.
        greedy.close()
        owner.chat.wait_for('* greedy left', start=0)
        for token, _, _ in serves[1:]:
            owner.serve_ok(token)
        other.send('\x01GET 9 owner last.txt')
        token, who, _ = owner.wait_serve()
        self.assertEqual(who, 'other')
        owner.serve_ok(token)
        other.wait_for(re.compile('^\x01GET-OK 9 '), start=0)
        self.assertTrue(server.alive())

# ---- item 3: the log neutralises what it writes ----------------------------

class LogNeutralisedTest(ServerCase):
    """Peers' bytes in names, file names and error texts never reach the
    log raw, and every event is one log line."""

    def test_hostile_file_names_and_texts_never_reach_the_log_raw(self):
        server = self.start_server()
        owner = RawOwner(self, server, 'owner', 0)
        req = self.requester(server, 'req')
        self.barrier(req, [owner.chat], 'sync')
        # Refused before any lookup: ESC, CR and a bidi override.
        esc = 'evil\x1b[31mred\r\u202etxt.exe'
        self.assertRegex(self.get(req, 1, 'owner', esc)[-1],
                         '^\x01GET-FAIL 1 bad-name ')
        # Bidi and invisible characters are refused in names too (they
        # would reach the log escaped all the same).
        for rid, name in ((5, 'report\u202egpj.exe'),
                          (6, 'say \u2067x\u2069.txt'), (7, 'zero\u200bwidth')):
            self.assertRegex(self.get(req, rid, 'owner', name)[-1],
                             '^\x01GET-FAIL %d bad-name ' % rid)
        # Accepted names that try to forge a log line: quotes, words.
        names = {2: 'report.exe', 3: 'say "hi" x.txt',
                 4: '"forged" from x to y arranged (direct)'}
        tokens = {}
        for rid, name in names.items():
            req.send(b'\x01GET %d owner %s' % (rid, name.encode()))
            tokens[rid] = owner.wait_serve()[0]
        # A refusal whose text holds controls is malformed and dropped...
        owner.chat.send(b'\x01SERVE-FAIL %s no-such-file gone\x1b[2J\r'
                        b'\xc2\x9bforged' % tokens[2].encode())
        owner.chat.wait_for(re.compile(r'^! bad-command '))
        # ...a clean one is answered and logged.
        owner.chat.send('\x01SERVE-FAIL %s no-such-file gone \u202e'
                        % tokens[2])
        owner.serve_ok(tokens[3])
        owner.serve_ok(tokens[4])
        for rid in (2, 3, 4):
            req.wait_for(re.compile('^\x01GET-(?:OK|FAIL) %d ' % rid),
                         start=0)
        # Relay lines with control bytes, and a relay of a hostile name.
        leg = self.raw_client(server.port, host=LOOPBACK)
        leg.send(b'\x01RELAY \x1b]0;title\x07\r fetch')
        leg.wait_for(re.compile(r'^! bad-command '))
        relay = self.raw_client(server.port, host=LOOPBACK)
        relay.send('\x01RELAY %s fetch' % tokens[3])
        owner.chat.wait_for(relay_serve_re(tokens[3]), start=0)
        relay.close()
        # Names with controls are refused, never logged.
        nc = self.raw_client(server.port, host=LOOPBACK)
        nc.send(b'bad\x1b[1mname\r')
        nc.wait_for(re.compile(r'^! name-invalid '))
        self.wait_log(server, re.compile(r'relay of .* never paired'))
        self.assertEqual(self.stop_server(server), 0, server.describe())
        log = server.stderr_bytes()
        text = harness.decode(log)
        for line in text.split('\n')[:-1]:
            self.assertRegex(line, LOG_LINE, 'not one line per event')
            bad = RAW_CONTROL.search(line)
            self.assertIsNone(bad, 'raw %r in the log line %r' % (
                bad and bad.group(0), line))
        self.assertTrue(log.endswith(b'\n'))
        transfer = [l for l in text.split('\n') if ' transfer of ' in l]
        self.assertEqual(len(transfer), 3, transfer)
        self.assertTrue(any('report.exe' in l and 'refused' in l
                            for l in transfer), transfer)
        self.assertTrue(any('"\\"forged\\" from x to y arranged '
                            '(direct)" from owner to req arranged' in l
                            for l in transfer), transfer)


class OwnerAnswersUnthrottledTest(ServerCase):
    """An owner's SERVE-OK and SERVE-FAIL answers are not charged to its
    flood control: requesters who each stay within their own limits must
    not use up the owner's lines and so hold up another user's answer."""

    def test_many_requesters_do_not_delay_another_requesters_answer(self):
        server = self.start_server('--rate', '1', '--burst', '10')
        owner = RawOwner(self, server, 'owner', 0)
        spammers = [self.requester(server, 'spam%d' % i) for i in range(8)]
        bob = self.requester(server, 'bob')
        self.barrier(bob, [owner.chat] + spammers, 'sync')
        for s in spammers:
            for k in range(4):
                s.send('\x01GET %d owner f%d.txt' % (k + 1, k))
        # 32 answers at once: more than three times the owner's burst
        for k in range(32):
            token = owner.wait_serve()[0]
            if k % 2:
                owner.serve_ok(token)
            else:
                owner.chat.send('\x01SERVE-FAIL %s no-such-file gone' % token)
        for s in spammers:
            for k in range(4):
                s.wait_for(re.compile('^\x01GET-(?:OK|FAIL) %d ' % (k + 1)),
                           start=0)
        bob.send('\x01GET 9 owner mine.txt')
        token, who, _ = owner.wait_serve()
        self.assertEqual(who, 'bob')
        owner.serve_ok(token)
        # At --rate 1 a charged answer would wait about 24 s for its turn.
        bob.wait_for(re.compile('^\x01GET-OK 9 '), timeout=5, start=0)


class LongRefusalTest(ServerCase):
    """An owner's long refusal text reaches the requester cut to 200 bytes
    on a character boundary: still valid UTF-8."""

    def test_long_multibyte_serve_fail_text_cut_on_a_character(self):
        server = self.start_server()
        owner = RawOwner(self, server, 'owner', 0)
        req = self.requester(server, 'req')
        self.barrier(req, [owner.chat], 'sync')
        req.send('\x01GET 1 owner a.txt')
        token = owner.wait_serve()[0]
        # 'x' then 150 two-byte characters: byte 200 is inside one
        owner.chat.send(('\x01SERVE-FAIL %s no-such-file x' % token) +
                        '\u00e9' * 150)
        i = req.wait_for(re.compile('^\x01GET-FAIL 1 '), start=0)
        text = req.received[i].split(' ', 3)[3]
        self.assertEqual(text, 'x' + '\u00e9' * 99, repr(text))


# ---- item 4: the slow consumer's last line ---------------------------------

class SlowConsumerLastLineTest(ServerCase):
    """A client dropped for not reading gets one last line saying so."""

    SENDQ = 65536
    # A backlog far beyond what the kernel's buffers take (4 MB at most
    # here): the slow consumer keeps lingering until it reads.
    BIG_SENDQ = 4 << 20
    LINE = 1000

    def connect(self, server, name, rcvbuf=None):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(scaled(10))
        sock.connect((LOOPBACK, server.port))
        sock.settimeout(None)
        conn = harness.LineSocket(self, sock, 'raw-' + name)
        conn.name = name
        conn.send(name)
        conn.wait_for(harness.welcome_re(name))
        return conn

    def flood_until_dropped(self, server, slow, sender):
        """sender floods until it sees slow leave (slow never reads)."""
        batch = b''.join(b'%s: %06d %s\n' % (b'x', i, b'y' * self.LINE)
                         for i in range(64))
        sender.sock.settimeout(scaled(10))
        for _ in range(2000):  # at most 128 MB
            sender.send_raw(batch)
            sender.pump()
            if '* %s left' % slow.name in sender.received:
                return
        self.fail('the never-reading client was not dropped\n' +
                  server.describe())

    def test_dropped_slow_consumer_reads_slow_consumer_line_last(self):
        server = self.start_server('--rate', '0', '--sendq', str(self.SENDQ))
        slow = self.connect(server, 'slow', rcvbuf=4096)
        sender = self.connect(server, 'sender')
        slow.wait_for('* sender joined')
        self.flood_until_dropped(server, slow, sender)
        slow.wait_eof(10)  # reads everything the kernels and server held
        self.assertEqual(slow.buf, b'', 'a partial line before the end')
        last = slow.received[-1] if slow.received else None
        m = SLOW_LINE.match(last or '')
        self.assertIsNotNone(m, 'the last line was %r, not the slow-consumer '
                             'notice' % (last or '')[:80])
        self.assertGreater(int(m.group(1)), 0)
        self.assertLessEqual(int(m.group(1)), self.SENDQ)
        self.assertEqual(len([l for l in slow.received
                              if l.startswith('! ')]), 1)
        self.assertRegex(server.stderr_text(),
                         r'slow disconnected: slow consumer')
        self.assert_chat_still_works(server, sender)

    def test_sigterm_while_a_slow_consumer_lingers_exits_0(self):
        server = self.start_server('--rate', '0', '--sendq',
                                   str(self.BIG_SENDQ))
        slow = self.connect(server, 'slow', rcvbuf=4096)
        sender = self.connect(server, 'sender')
        slow.wait_for('* sender joined')
        self.flood_until_dropped(server, slow, sender)
        self.assertEqual(self.stop_server(server), 0, server.describe())
        self.assertNotIn('handles left open', server.stderr_text())

    def test_slow_consumer_that_still_never_reads_is_closed_at_the_deadline(
            self):
        server = self.start_server('--rate', '0', '--sendq',
                                   str(self.BIG_SENDQ))
        slow = self.connect(server, 'slow', rcvbuf=4096)
        sender = self.connect(server, 'sender')
        slow.wait_for('* sender joined')
        self.flood_until_dropped(server, slow, sender)
        # slow reads nothing: its backlog and last line never go out, and
        # the server closes it anyway after the linger (2 s).
        self.wait_log(server, re.compile(
            r'#\d+ did not take its last line within 2000 ms; closed$'), 10)
        self.assert_chat_still_works(server, sender)
        self.assertEqual(self.stop_server(server), 0, server.describe())
        self.assertNotIn('handles left open', server.stderr_text())

    def assert_chat_still_works(self, server, sender):
        # The server has handled all of the flood once it answers this.
        sender.send('\x01NOSUCHVERB')
        sender.wait_for(re.compile(r'^! unknown-command '), 30)
        other = self.connect(server, 'other')
        self.barrier(other, [sender], 'after the drop')


# ---- item 6: start-up and shutdown -----------------------------------------

class StartStopTest(ServerCase):
    """Whatever state the clients are in, SIGTERM ends the server with exit
    0 and every handle closed; a start-up short of descriptors fails with
    exit 1 and says why."""

    def test_sigterm_with_clients_in_every_state_exits_0_all_closed(self):
        server = self.start_server()
        person = self.start_client(server.port, 'person')
        bob = self.raw_client(server.port, 'bob', host=LOOPBACK)
        midname = self.raw_client(server.port, host=LOOPBACK)
        midname.send_raw(b'half-a-na')  # no newline: still registering
        self.raw_client(server.port, host=LOOPBACK)  # silent
        owner = RawOwner(self, server, 'owner', 0)
        req = self.requester(server, 'req')
        # Over its burst at once: paused by flood control, bytes held.
        flooder = self.raw_client(server.port, 'flooder', host=LOOPBACK)
        flooder.send_raw(b''.join(b'flood %d\n' % i for i in range(300)))
        person.wait_for('flooder: flood 99', 10)
        # A GET the owner never answers.
        req.send('\x01GET 1 owner pending.txt')
        owner.wait_serve()
        # A relay whose owner never opens its leg, with early bytes.
        tokens = []
        for rid in (2, 3):
            req.send('\x01GET %d owner relay%d.bin' % (rid, rid))
            token = owner.wait_serve()[0]
            owner.serve_ok(token)
            req.wait_for(re.compile('^\x01GET-OK %d ' % rid), start=0)
            tokens.append(token)
        waiting = self.raw_client(server.port, host=LOOPBACK)
        waiting.send_raw(b'\x01RELAY %s fetch\nCHATFILE 1 %s\n' % (
            tokens[0].encode(), tokens[0].encode()))
        owner.chat.wait_for(relay_serve_re(tokens[0]), start=0)
        # A paired relay in the middle of a file.
        fetch = self.raw_client(server.port, host=LOOPBACK)
        fetch.send_raw(b'\x01RELAY %s fetch\nCHATFILE 1 %s\n' % (
            tokens[1].encode(), tokens[1].encode()))
        key = owner.chat.wait_line(relay_serve_re(tokens[1]),
                                   start=0).split(' ')[2]
        serve = self.raw_client(server.port, host=LOOPBACK)
        serve.send('\x01RELAY %s serve' % key)
        serve.wait_for('CHATFILE 1 ' + tokens[1])
        serve.send_raw(b'OK 1000000\n' + b'z' * 1000)
        fetch.wait_for('OK 1000000')
        self.wait_log(server, re.compile(r'relay of "relay3\.bin" .* started'))
        self.barrier(bob, [person, req], 'all set')
        self.assertEqual(self.stop_server(server), 0, server.describe())
        log = server.stderr_text()
        self.assertNotIn('handles left open', log)
        self.assertRegex(server.stderr_lines()[-1], r': stopped$')

    def test_start_short_of_descriptors_fails_with_exit_1_and_a_reason(self):
        if harness.WRAPPER:
            self.skipTest('the wrapper needs descriptors of its own')
        from test_hostile import LimitedServer
        # Below 6 libuv itself aborts when it cannot make its signal pipe.
        for limit in range(6, 17):
            server = LimitedServer(self, ['0'], 'RLIMIT_NOFILE', limit,
                                   label='server-nofile-%d' % limit)
            deadline = time.monotonic() + scaled(10)
            while (server.alive() and time.monotonic() < deadline and
                   not Server.LISTENING.search(server.stderr_text())):
                time.sleep(0.02)
            if server.alive():
                self.assertRegex(server.stderr_text(), Server.LISTENING)
                rc = self.stop_server(server)
                self.assertEqual(rc, 0, 'limit %d: started, then %s\n%s' % (
                    limit, harness.describe_status(rc), server.describe()))
                self.assertNotIn('handles left open', server.stderr_text())
                continue
            rc = server.wait_exit()
            self.assertEqual(rc, 1, 'limit %d: %s\n%s' % (
                limit, harness.describe_status(rc), server.describe()))
            self.assertRegex(server.stderr_text(), r'^chat-server: cannot ',
                             'limit %d: no reason given' % limit)

if __name__ == '__main__':
    harness.main()
