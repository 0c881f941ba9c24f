#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the requester's terminal: every foreign byte neutralised, deceptive names refused, long names saved, names trimmed, refused names explained.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_output.py -v

Most tests put the client in front of a fake server (or a fake owner) that
sends what a real one never would: escape sequences in every place a
foreign text reaches the requester's stdout or stderr. The client must
print them escaped ("^[" for ESC, "^G" for BEL, "\\u200b" for a zero-width
space), never raw, and each message on one line.
"""

import hashlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Client  # noqa: E402
from test_files import (  # noqa: E402
    R_INVALID, R_REFUSED, FakeOwner, FileTestCase, failed_re, received_re)

# What a hostile peer sends, and how the client must show it.
RETITLE = b'\x1b]0;pwned\x07'          # OSC 0: sets the terminal's title
RETITLE_SHOWN = '^[]0;pwned^G'
RED = b'\x1b[31m'                      # CSI: red text
RED_SHOWN = '^[[31m'
ZWSP = '\u200b'                        # zero-width space
ZWSP_SHOWN = '\\u200b'
BOM = '\ufeff'
BOM_SHOWN = '\\ufeff'

# Bytes that must never reach the requester's terminal raw.
# Also the soft hyphen, the Arabic letter mark, the line and paragraph
# separators, the word joiner and the invisible operators.
MORE_DECEPTIVE = ['\u00ad', '\u061c', '\u2028', '\u2029', '\u2060', '\u2061',
                  '\u2062', '\u2063', '\u2064']
RAW_FORBIDDEN = [b'\x1b', b'\x07', b'\xc2\x9b', '\u202e'.encode(),
                 ZWSP.encode(), BOM.encode()] + [
                     c.encode() for c in MORE_DECEPTIVE]

TOKEN = '0123456789abcdef0123456789abcdef'


class OutputTestCase(FileTestCase):
    """A chat-client in front of a fake server played by the test."""

    def fake_session(self, name='bob'):
        """Starts a client connected to a fake server and registers it;
        returns (fake server, client, the client's connection)."""
        fake = self.fake_server()
        home = os.path.join(self.tmpdir, 'home-%s' % name)
        os.makedirs(home, exist_ok=True)
        client = Client(self, fake.port, name=name,
                        args=['-l', '0', '-p', str(fake.port),
                              '-s', '127.0.0.1', '--share', home,
                              '--downloads', home],
                        label='client-%s' % name)
        client.downloads = home
        conn = fake.accept()
        client.send(name)
        conn.wait_for(re.compile(r'^%s\r?$' % re.escape(name)))
        conn.send('* welcome %s, 1 other user(s) online' % name)
        client.wait_registered()
        conn.wait_for(re.compile('^\x01FILEPORT '))
        return fake, client, conn

    def fake_get(self, client, conn, owner, file):
        """Requests file from owner; returns the GET's request id."""
        start = self.request(client, owner, file)
        line = conn.wait_line(re.compile('^\x01GET '))
        rid, got_owner, got_file = line[len('\x01GET '):].split(' ', 2)
        self.assertEqual((got_owner, got_file), (owner.strip(), file.strip()),
                         'the GET line: %r' % line)
        return int(rid), start

    def assert_nothing_raw(self, proc):
        """Neither stdout nor stderr holds a control byte, a bidi override
        or an invisible character."""
        for stream, data in (('stdout', proc.stdout_bytes()),
                             ('stderr', proc.stderr_bytes())):
            for bad in RAW_FORBIDDEN:
                self.assertNotIn(bad, data, '%r printed %r raw on %s\n%s' % (
                    proc, bad, stream, proc.describe()))

    def assert_shown(self, proc, pattern, start=0, stream='stdout'):
        """A line matching the regex pattern was printed (waits for it)."""
        if stream == 'stdout':
            return proc.wait_line(re.compile(pattern), start=start)
        i = proc.wait_stderr(re.compile(pattern), start=start)
        return proc.stderr_lines()[i]


class ForeignTextTest(OutputTestCase):
    """Every path by which someone else's text reaches the requester."""

    def test_owner_err_code_and_text_printed_escaped(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'nope.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'ERR bad\x1bcode ' + RETITLE + b' and ' + RED +
                     b' red\n')
        conn.close()
        line = self.expect_failure(bob, 'nope.bin', fake.name, R_REFUSED,
                                   start)
        self.assertIn('bad^[code', line)
        self.assertIn(RETITLE_SHOWN + ' and ' + RED_SHOWN + ' red', line)
        self.assert_nothing_raw(bob)

    def test_long_owner_text_cut_on_a_character_with_dots(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'long.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(('ERR no-way x' + '\u00e9' * 55 + '\n').encode())  # 122 bytes
        conn.close()
        line = self.expect_failure(bob, 'long.bin', fake.name, R_REFUSED,
                                   start)
        self.assertIn('(no-way: x' + '\u00e9' * 49 + '...)', line)
        self.assert_nothing_raw(bob)

    def test_relay_fail_text_printed_escaped(self):
        fake, bob, conn = self.fake_session()
        rid, start = self.fake_get(bob, conn, 'alice', 'f.txt')
        conn.send('\x01GET-OK %d 127.0.0.1 0 %s' % (rid, TOKEN))
        leg = fake.accept()  # the relay leg, to the "server" again
        leg.wait_for('\x01RELAY %s fetch' % TOKEN)
        leg.send_raw(b'\x01RELAY-FAIL busy no ' + RETITLE + b' relay ' + RED +
                     ZWSP.encode() + b'\n')
        line = bob.wait_line(failed_re('f.txt', 'alice'), start=start)
        self.assertIn('the relay failed: no %s relay %s%s' % (
            RETITLE_SHOWN, RED_SHOWN, ZWSP_SHOWN), line)
        self.assert_nothing_raw(bob)

    def test_get_fail_unknown_code_and_text_printed_escaped(self):
        fake, bob, conn = self.fake_session()
        rid, start = self.fake_get(bob, conn, 'alice', 'f.txt')
        conn.send_raw(b'\x01GET-FAIL %d odd\x1bcode ' % rid + RETITLE +
                      b' ' + RED + b'\n')
        line = bob.wait_line(failed_re('f.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of f.txt from alice failed: '
                         'refused (odd^[code: %s %s)' % (RETITLE_SHOWN,
                                                          RED_SHOWN))
        # a known code keeps our own words; its text is not shown
        rid, start = self.fake_get(bob, conn, 'alice', 'g.txt')
        conn.send_raw(b'\x01GET-FAIL %d no-such-file ' % rid + RETITLE + b'\n')
        line = bob.wait_line(failed_re('g.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of g.txt from alice failed: '
                         'no such file')
        self.assert_nothing_raw(bob)

    def test_server_notices_errors_and_chat_printed_escaped(self):
        fake, bob, conn = self.fake_session()
        conn.send_raw(b'* notice ' + RETITLE + b' zero' + ZWSP.encode() +
                      b'width ' + BOM.encode() + b'\n')
        conn.send_raw(b'! odd-code ' + RED + b'error' + ZWSP.encode() + b'\n')
        conn.send_raw(b'evil: hi' + ZWSP.encode() + b' ' + RETITLE + b'\n')
        conn.send('* end marker')
        bob.wait_for('* end marker')
        lines = bob.lines()
        self.assertIn('* notice %s zero%swidth %s' % (
            RETITLE_SHOWN, ZWSP_SHOWN, BOM_SHOWN), lines, bob.describe())
        self.assertIn('! odd-code %serror%s' % (RED_SHOWN, ZWSP_SHOWN), lines,
                      bob.describe())
        self.assertIn('evil: hi%s %s' % (ZWSP_SHOWN, RETITLE_SHOWN), lines,
                      bob.describe())
        self.assert_nothing_raw(bob)

    def test_owner_name_and_file_name_echoed_escaped(self):
        # the file name typed is echoed in the failure line; the owner's
        # name the server sends back (GET-OWNER) is checked first
        fake, bob, conn = self.fake_session()
        start = self.request(bob, 'alice', 'a' + ZWSP + 'b.txt')
        line = bob.wait_line(failed_re(None, 'alice'), start=start)
        self.assertEqual(line, 'file transfer of a%sb.txt from alice failed: '
                         'invalid file name' % ZWSP_SHOWN)
        rid, start = self.fake_get(bob, conn, 'alice', 'c.txt')
        conn.send_raw(b'\x01GET-OWNER %d al\x1b[31mice\n' % rid)
        conn.send('\x01GET-FAIL %d no-such-file nope' % rid)
        line = bob.wait_line(failed_re('c.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of c.txt from alice failed: '
                         'no such file')
        self.assert_nothing_raw(bob)


class DeceptiveNameTest(OutputTestCase):
    """File names with bidi controls or invisible characters are refused
    like control characters, by the requester, the server and the owner."""

    NAMES = ['invoice\u202etxt.exe', 'a\u200bb.txt', '\ufeffnotes.txt',
             'x\u2066y', 'z\u200f'] + ['n%sme.txt' % c for c in MORE_DECEPTIVE]

    def test_requester_refuses_deceptive_names_without_asking(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        for name in self.NAMES:
            start = self.request(bob, fake.name, name)
            self.expect_failure(bob, name, fake.name, R_INVALID, start,
                                shown=None)
        self.barrier(bob, [fake.chat])
        self.assertNoLine(fake.chat, re.compile('^\x01SERVE'),
                          'a deceptive name reached the owner')
        self.assert_nothing_raw(bob)

    def test_server_refuses_deceptive_names_with_bad_name(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        raw = self.raw_requester(server)
        self.barrier(alice, [raw])
        for rid, name in enumerate(self.NAMES, 1):
            answer = self.raw_get(raw, rid, 'alice', name)
            self.assertEqual(answer[:3], ['GET-FAIL', str(rid), 'bad-name'],
                             'GET of %r' % name)
        self.assertNoLine(alice, re.compile(r'^sending '))


class LongNameTest(OutputTestCase):
    """A valid name of up to 255 bytes arrives under its full name, though
    ".<name>.part-XXXXXX" would be longer than 255 bytes."""

    NAMES = ['\u00e9' * 127 + 'x', 'x' + '\u00e9' * 127, 'n' * 255,
             'y' + '\U0001f600' * 63 + 'zw']

    def test_255_byte_names_download_under_full_name(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        for i, name in enumerate(self.NAMES):
            self.assertEqual(len(name.encode()), 255, repr(name))
            data = ('file %d\n' % i).encode() * (i + 1)
            self.share(alice, name, data)
            start = self.request(bob, 'alice', name)
            self.expect_success(bob, name, 'alice', data, start)
        self.assert_no_part_files(bob)
        self.assertEqual(sorted(os.listdir(bob.downloads)),
                         sorted(self.NAMES))

    def test_long_name_part_file_fits_and_is_removed_on_failure(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        name = 'x' + '\u00e9' * 127
        start = self.request(bob, fake.name, name)
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        parts = self.part_files(bob)
        self.assertEqual(len(parts), 1, 'temporary files: %r' % parts)
        part = parts[0].encode()
        self.assertLessEqual(len(part), 255)
        # cut on a character boundary: "." + "x" + 120 x "é" + ".part-XXXXXX"
        self.assertTrue(part.startswith(b'.x' + '\u00e9'.encode() * 120 +
                                        b'.part-'), part)
        conn.sendall(b'OK 10\nabc')
        conn.close()
        self.expect_failure(bob, name, fake.name, 'connection', start)
        self.assertEqual(os.listdir(bob.downloads), [])


class TrimmedNameTest(OutputTestCase):
    """Blanks around typed names go; empty names are refused at once; the
    owner is named as the server knows it."""

    def test_blanks_around_owner_and_file_name_trimmed(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        self.share(alice, 'a b.txt', b'inner space kept\n')
        start = self.request(bob, ' \talice  ', '  a b.txt\t ')
        line = bob.wait_line(received_re('a b.txt', 'alice'), start=start)
        self.assertTrue(line)
        self.assertTrue(os.path.isfile(os.path.join(bob.downloads,
                                                    'a b.txt')))

    def test_empty_names_refused_without_asking_the_server(self):
        fake, bob, conn = self.fake_session()
        # an empty owner is refused before the file name is asked for
        start = len(bob.lines())
        bob.send('f')
        bob.send('  \t')
        bob.wait_for('file request not sent: no owner name given', start=start)
        self.assertNotIn(harness.FILE_PROMPT, ''.join(bob.lines()[start:]))
        start = self.request(bob, 'alice', ' \t ')
        bob.wait_for('file request not sent: no file name given', start=start)
        bob.message('after the empty requests')
        conn.wait_for('after the empty requests')
        self.assertNoLine(conn, re.compile('^\x01GET '),
                          'an empty name was sent to the server')
        self.assertTrue(bob.alive())

    def test_owner_named_as_the_server_says(self):
        fake, bob, conn = self.fake_session()
        rid, start = self.fake_get(bob, conn, 'ALICE', 'a.txt')
        conn.send('\x01GET-OWNER %d alice' % rid)
        conn.send('\x01GET-FAIL %d no-such-file no such file' % rid)
        line = bob.wait_line(failed_re('a.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of a.txt from alice failed: '
                         'no such file')
        # without GET-OWNER (an older server) the typed name is used; an
        # invalid name or one for another request is ignored
        rid, start = self.fake_get(bob, conn, 'ALICE', 'b.txt')
        conn.send('\x01GET-OWNER %d bad name' % rid)
        conn.send('\x01GET-OWNER %d other' % (rid + 100))
        conn.send('\x01GET-FAIL %d no-such-file no such file' % rid)
        line = bob.wait_line(failed_re('b.txt', 'ALICE'), start=start)
        self.assertEqual(line, 'file transfer of b.txt from ALICE failed: '
                         'no such file')

    def test_owner_name_from_server_used_through_relay_success(self):
        fake, bob, conn = self.fake_session()
        rid, start = self.fake_get(bob, conn, 'ALICE', 'r.txt')
        conn.send('\x01GET-OWNER %d Alice' % rid)
        conn.send('\x01GET-OK %d 127.0.0.1 0 %s' % (rid, TOKEN))
        bob.wait_for('Alice accepts no connections; relaying through the '
                     'server', start=start)
        leg = fake.accept()
        leg.wait_for('CHATFILE 1 %s' % TOKEN)
        data = b'relayed bytes\n'
        leg.send_raw(b'OK %d\n' % len(data) + data +
                     hashlib.sha256(data).digest())
        leg.close()
        self.expect_success(bob, 'r.txt', 'Alice', data, start)


class RefusedNameTest(OutputTestCase):
    """With stdin not a terminal, a refused name ends the client with one
    clear line on stderr and status 1."""

    def refused(self, answer):
        fake = self.fake_server()
        client = Client(self, fake.port, name='alice',
                        args=['-l', '0', '-p', str(fake.port),
                              '-s', '127.0.0.1'])
        conn = fake.accept()
        client.send('alice')
        conn.wait_for(re.compile(r'^alice\r?$'))
        conn.send_raw(answer + b'\n')
        self.assertEqual(client.wait_exit(), 1, client.describe())
        self.assert_nothing_raw(client)
        self.assertNoLine(client, re.compile('send another name'))
        return client.stderr_lines()

    def test_name_taken_explained(self):
        err = self.refused(b'! name-taken the name "alice" is already in use; '
                           b'send another name')
        self.assertIn('chat-client: the name "alice" was refused: someone in '
                      'the chat already uses it (names are compared ignoring '
                      'case)', err)

    def test_name_invalid_explained(self):
        err = self.refused(b'! name-invalid names are 1-32 characters from '
                           b'A-Z a-z 0-9 _ . -; send another name')
        self.assertIn('chat-client: the name "alice" was refused: use 1-32 '
                      'characters from A-Z a-z 0-9 _ . -', err)

    def test_unknown_code_shows_server_text_escaped_without_advice(self):
        err = self.refused(b'! odd-code go ' + RED + b'away; send another '
                           b'name')
        self.assertIn('chat-client: the name "alice" was refused: go %saway'
                      % RED_SHOWN, err)
        self.assertFalse([line for line in err if 'send another' in line],
                         err)

    def test_real_server_taken_name_explained(self):
        server = self.start_server()
        self.start_client(server.port, 'alice')
        client = self.start_client(server.port)
        client.send('ALICE')
        self.assertEqual(client.wait_exit(), 1)
        self.assertEqual(client.stderr_lines(),
                         ['chat-client: the name "ALICE" was refused: '
                          'someone in the chat already uses it (names are '
                          'compared ignoring case)'])

    def test_locally_invalid_name_explained(self):
        server = self.start_server()
        client = self.start_client(server.port)
        client.send('bad name\x1b')
        self.assertEqual(client.wait_exit(), 1)
        self.assertEqual(client.stderr_lines(),
                         ['chat-client: the name "bad name^[" was refused: '
                          'use 1-32 characters from A-Z a-z 0-9 _ . -'])



class BusyRetryTest(OutputTestCase):
    """An owner lets one requester hold half its slots: a GET answered busy
    while another transfer from that owner is in flight waits (silently)
    and is asked again when one ends; busy is reported only when none is in
    flight, with the owner's words, escaped."""

    def marker(self, bob, conn, text):
        conn.send('* ' + text)
        bob.wait_for('* ' + text)

    def test_busy_parked_while_another_in_flight_then_asked_again(self):
        fake, bob, conn = self.fake_session()
        rid1, start = self.fake_get(bob, conn, 'alice', 'a.txt')
        # typed in another case: the owner is the same (GET-OWNER says)
        rid2, _ = self.fake_get(bob, conn, 'ALICE', 'b.txt')
        conn.send('\x01GET-OWNER %d alice' % rid1)
        conn.send('\x01GET-OWNER %d alice' % rid2)
        gets = len([l for l in conn.received if l.startswith('\x01GET ')])
        conn.send('\x01GET-FAIL %d busy bob has too many uncollected requests'
                  % rid2)
        self.marker(bob, conn, 'parked')
        time.sleep(0.2)
        conn.pump()
        self.assertNoLine(bob, re.compile(r'b\.txt'),
                          'a request parked for a busy owner printed a line')
        self.assertTrue(self.part_files(bob, 'b.txt'),
                        'the parked request lost its temporary file')
        self.assertEqual(
            len([l for l in conn.received if l.startswith('\x01GET ')]), gets,
            'asked again before another transfer from the owner ended')
        # a.txt ends (a failure counts): b.txt is asked for again, fresh id
        conn.send('\x01GET-FAIL %d no-such-file gone' % rid1)
        bob.wait_line(failed_re('a.txt', 'alice'), start=start)
        line = conn.wait_line(re.compile('^\x01GET \\d+ alice b\\.txt$'),
                              start=0)
        rid3 = int(line.split(' ')[1])
        self.assertNotIn(rid3, (rid1, rid2), 'the retry reused an id')
        # busy again, and nothing else in flight: now it is reported, with
        # the owner's words neutralised
        conn.send_raw(b'\x01GET-FAIL %d busy bob has too many ' % rid3 + RED +
                      b'requests\n')
        line = bob.wait_line(failed_re('b.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of b.txt from alice failed: '
                         'refused: the owner is busy (bob has too many %s'
                         'requests)' % RED_SHOWN)
        self.assert_no_part_files(bob)
        self.assert_nothing_raw(bob)

    def test_busy_with_nothing_in_flight_reported_at_once(self):
        fake, bob, conn = self.fake_session()
        rid, start = self.fake_get(bob, conn, 'alice', 'c.txt')
        conn.send('\x01GET-FAIL %d busy' % rid)
        line = bob.wait_line(failed_re('c.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of c.txt from alice failed: '
                         'refused: the owner is busy')
        # another owner's transfer in flight does not make it wait
        rid1, _ = self.fake_get(bob, conn, 'carol', 'd.txt')
        rid2, start = self.fake_get(bob, conn, 'alice', 'e.txt')
        conn.send('\x01GET-FAIL %d busy the owner has too many requests '
                  'waiting' % rid2)
        line = bob.wait_line(failed_re('e.txt', 'alice'), start=start)
        self.assertEqual(line, 'file transfer of e.txt from alice failed: '
                         'refused: the owner is busy (the owner has too many '
                         'requests waiting)')

    def test_parked_request_cancelled_on_exit(self):
        fake, bob, conn = self.fake_session()
        rid1, start = self.fake_get(bob, conn, 'alice', 'p.txt')
        rid2, _ = self.fake_get(bob, conn, 'alice', 'q.txt')
        conn.send('\x01GET-FAIL %d busy bob has too many uncollected requests'
                  % rid2)
        self.marker(bob, conn, 'parked')
        self.assertTrue(self.part_files(bob, 'q.txt'))
        self.assertEqual(bob.exit(), 0)
        self.assertNoLine(bob, re.compile(r'[pq]\.txt'),
                          'a request cancelled by the exit printed a line')
        self.assert_no_part_files(bob)


if __name__ == '__main__':
    harness.main()
