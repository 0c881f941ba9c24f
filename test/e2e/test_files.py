#!/usr/bin/env python3
"""End-to-end tests of file transfer between chat-clients.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_files.py -v
Run one:   ... python3 test/e2e/test_files.py -v \
               FileTransferTest.test_zero_byte_file_arrives_empty
Check that meson.build registers every test (as 'files:Class.test_method'):
           python3 test/e2e/test_files.py --check-meson test/e2e/meson.build

What is checked (see docs/PROTOCOL.md, "Control lines", "The file
connection", "File names"):

  * the requester prints, each on its own line,
        received <file> (<size> bytes) from <owner>, SHA-256 verified
        file transfer of <file> from <owner> failed: <reason>
    and the owner prints "sending <file> to <requester>" and
    "sent <file> to <requester>";
  * a received file appears under its own name in the download dir only
    once verified; in flight it is ".<file>.part-XXXXXX" there; after a
    failure no file has the final name (an older one is untouched) and no
    ".part-" file is left;
  * the owner serves only regular files directly in its share dir, once per
    token;
  * the menu comes back at once after "f"; chat and more requests go on
    while transfers run.

Every client gets its own home dir <tmp>/home-<name> as working directory,
with share/ and downloads/ in it passed as --share and --downloads (except
in the test of the defaults, where both are the home dir itself).  Some
tests play the owner or the requester by hand over raw sockets.
"""

import hashlib
import os
import re
import select
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import (  # noqa: E402
    CHAT_CLIENT, CHAT_SERVER, FILE_PROMPT, GOODBYE, MENU, OWNER_PROMPT,
    ChatTestCase, Client, Process, free_port, scaled)

MIB = 1024 * 1024

# Key phrases of the failure reasons (matched with re.search).
R_NO_USER = 'no such user'
R_NO_FILE = 'no such file'
R_NOT_REGULAR = 'not a regular file'
R_UNREADABLE = 'unreadable'
R_OWNER_LEFT = 'owner left'
R_TIMED_OUT = 'timed out'
R_SELF = 'you cannot request a file from yourself'
R_INVALID = 'invalid file name'
R_REFUSED = 'refused'
R_CONNECTION = 'connection'
R_STALLED = 'stalled'
R_SIZE = 'size mismatch'
R_DIGEST = 'digest mismatch'

ANY_OUTCOME = re.compile(r'^(?:received .* SHA-256 verified'
                         r'|file transfer of .* failed: .*)$')


def received_re(file, owner, size=None):
    return re.compile(r'^received %s \(%s bytes\) from %s, SHA-256 verified$'
                      % (re.escape(file),
                         r'\d+' if size is None else str(size),
                         re.escape(owner)))


def failed_re(file, owner):
    """The failure line; file None matches any (e.g. a sanitised) name."""
    return re.compile(r'^file transfer of %s from %s failed: '
                      % ('.*' if file is None else re.escape(file),
                         re.escape(owner)))


def outcome_re(file, owner):
    """Either outcome line for this file and owner."""
    f, o = re.escape(file), re.escape(owner)
    return re.compile(r'^(?:received %s \(\d+ bytes\) from %s, '
                      r'|file transfer of %s from %s failed: )' % (f, o, f, o))


def part_re(file):
    return re.compile(r'^\.%s\.part-[^/]{6}$' % re.escape(file))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(MIB), b''):
            h.update(chunk)
    return h.hexdigest()


def write_file(path, data):
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode('utf-8'))
    return path


def write_random(path, size):
    """size random bytes; returns their SHA-256 (hex)."""
    h = hashlib.sha256()
    with open(path, 'wb') as f:
        left = size
        while left:
            chunk = os.urandom(min(left, MIB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


def write_sparse(path, size):
    """A file of size zero bytes that takes no disk space (quick to make)."""
    with open(path, 'wb') as f:
        f.truncate(size)
    return path


def snapshot(root, skip_top=('.stdout', '.stderr')):
    """Everything under root: relpath -> (kind, size, mtime_ns, target). The
    process logs directly in root are left out."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if dirpath == root and name.endswith(skip_top):
                continue
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                snap[rel] = ('dir', None, None, None)
            elif stat.S_ISLNK(st.st_mode):
                snap[rel] = ('link', None, None, os.readlink(path))
            else:
                snap[rel] = ('file', st.st_size, st.st_mtime_ns, None)
    return snap


class working_dir:
    """Changes the test's own working directory for a moment (a started
    process inherits it)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


class CommandClient(Client):
    """A chat-client started through a command prefix (e.g. setpriv)."""

    def __init__(self, case, port, name, argv, label):
        Process.__init__(self, case, argv, label)
        self.name = name
        self.port = port


def fetch(case, host, port, payload, timeout=15):
    """Opens a file connection to host:port, sends payload and reads until
    the peer closes; returns every byte received."""
    sock = socket.create_connection((host, int(port)), timeout=scaled(10))
    data = bytearray()
    try:
        try:
            if payload:
                sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the owner may close before reading everything
        deadline = time.monotonic() + scaled(timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                case.fail('timeout (%.1fs): the file connection to %s:%s was '
                          'not closed by the owner; got %d bytes: %r' % (
                              scaled(timeout), host, port, len(data),
                              bytes(data[:200])))
            ready, _, _ = select.select([sock], [], [], min(remaining, 0.5))
            if not ready:
                continue
            try:
                chunk = sock.recv(MIB)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return bytes(data)


class RawOwner:
    """A chat user played by the test over a raw socket (IPv4, so that the
    host the server hands out is reachable): it announces `port` with
    FILEPORT and answers SERVE by hand. Subclasses add the file side."""

    def __init__(self, case, server, name, port):
        self.case = case
        self.server = server
        self.name = name
        case._sockets.append(self)
        self.chat = case.raw_client(server.port, name, host='127.0.0.1')
        self.chat.send('\x01FILEPORT %s' % port)
        self._serve_next = 0

    def wait_serve(self, timeout=10):
        """The next SERVE line: returns (token, requester, file)."""
        i = self.chat.wait_for(re.compile('^\x01SERVE '), timeout,
                               start=self._serve_next)
        self._serve_next = i + 1
        line = self.chat.received[i]
        parts = line[1:].split(' ', 3)
        self.case.assertEqual(len(parts), 4, 'malformed SERVE: %r' % line)
        self.case.assertRegex(parts[1], r'^[0-9a-f]{32}$',
                              'SERVE token is not 32 lower-case hex digits')
        return parts[1], parts[2], parts[3]

    def serve_ok(self, token):
        self.chat.send('\x01SERVE-OK ' + token)

    def close(self):
        pass


class FakeOwner(RawOwner):
    """A raw owner with a file port of its own: it answers the requester's
    file connection by hand."""

    def __init__(self, case, server, name='fakeowner'):
        self.conns = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        super().__init__(case, server, name, self.port)

    def accept(self, token, timeout=10):
        """Accepts the requester's file connection and checks its header
        line; returns the connected socket."""
        ready, _, _ = select.select([self.listener], [], [], scaled(timeout))
        if not ready:
            self.case.fail('timeout: the requester did not connect to the '
                           'fake owner\'s file port')
        conn, _ = self.listener.accept()
        self.conns.append(conn)
        conn.settimeout(scaled(timeout))
        header = b''
        while not header.endswith(b'\n') and len(header) < 300:
            chunk = conn.recv(1)
            if not chunk:
                break
            header += chunk
        self.case.assertEqual(header, b'CHATFILE 1 %s\n' % token.encode(),
                              'the requester sent a wrong header line')
        return conn

    def close(self):
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        try:
            self.listener.close()
        except OSError:
            pass


class FileTestCase(ChatTestCase):
    """Helpers: clients with a share and a download dir, requests, and the
    checks made after each outcome."""

    def file_client(self, server, name, extra=(), defaults=False, lport=None,
                    register=True, prefix=()):
        """A chat-client whose working directory is <tmp>/home-<name>; it
        shares <home>/share and downloads into <home>/downloads (with
        defaults=True, no --share/--downloads: both are the home dir)."""
        home = os.path.join(self.tmpdir, 'home-%s' % name)
        os.makedirs(home, exist_ok=True)
        if defaults:
            share = downloads = home
        else:
            share = os.path.join(home, 'share')
            downloads = os.path.join(home, 'downloads')
            os.makedirs(share, exist_ok=True)
            os.makedirs(downloads, exist_ok=True)
        if lport is None:
            lport = free_port()
        args = ['-l', str(lport), '-p', str(server.port)]
        if not defaults:
            args += ['--share', share, '--downloads', downloads]
        args += [str(a) for a in extra]
        with working_dir(home):
            if prefix:
                client = CommandClient(self, server.port, name,
                                       list(prefix) + [CHAT_CLIENT] + args,
                                       'client-%s' % name)
            else:
                client = Client(self, server.port, name=name, args=args,
                                label='client-%s' % name)
        client.home, client.share, client.downloads = home, share, downloads
        client.lport = lport
        if register:
            client.register()
        return client

    def sync(self, *clients):
        """Each client sends a line that all the others wait for. Afterwards
        the server has handled everything each sent before (its FILEPORT)."""
        for c in clients:
            others = [o for o in clients if o is not c]
            if others:
                self.barrier(c, others, 'sync')

    def share(self, client, name, data):
        return write_file(os.path.join(client.share, name), data)

    def request(self, client, owner, file):
        """Chooses 'f' and names owner and file; returns the index of the
        first stdout line this request can have caused."""
        start = len(client.lines())
        client.send('f')
        client.send(owner)
        client.send(file)
        return start

    def part_files(self, client, file=None):
        pat = part_re(file) if file is not None else re.compile(r'\.part-')
        return sorted(n for n in os.listdir(client.downloads)
                      if pat.search(n))

    def assert_no_part_files(self, client, grace=1.0):
        """No ".part-" file in client's download dir (allowing grace
        seconds for one being removed right after the outcome line)."""
        deadline = time.monotonic() + scaled(grace)
        while self.part_files(client) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self.part_files(client)
        if left:
            self.fail('%r left temporary files in %s: %r\n%s' % (
                client, client.downloads, left, client.describe()))

    def wait_part(self, client, file, owner, start, timeout=30, min_bytes=0):
        """Polls (every 5 ms) until client's ".<file>.part-" temp file
        exists and holds at least min_bytes; returns its name. Fails when an
        outcome line comes first. The file is made before the request is
        sent, so only min_bytes > 0 means the bytes are flowing."""
        deadline = time.monotonic() + scaled(timeout)
        pat = part_re(file)
        done = outcome_re(file, owner)
        while True:
            names = [n for n in os.listdir(client.downloads) if pat.match(n)]
            for n in names:
                try:
                    size = os.path.getsize(os.path.join(client.downloads, n))
                except FileNotFoundError:
                    continue
                if size >= min_bytes:
                    return n
            lines = client.lines()
            over = [l for l in lines[start:] if done.search(l)]
            if over:
                self.fail('%r: the transfer of %s ended (%r) before its '
                          'temporary file was seen\n%s' % (
                              client, file, over[0], client.describe()))
            if not client.alive() or time.monotonic() >= deadline:
                self.fail('%r: no temporary file .%s.part-XXXXXX appeared in '
                          '%s (have %r)\n%s' % (
                              client, file, client.downloads,
                              os.listdir(client.downloads),
                              client.describe()))
            time.sleep(0.005)

    def expect_success(self, client, file, owner, source, start=0,
                       timeout=10):
        """Waits for this transfer's outcome; it must be the success line
        with source's size, and the downloaded file must equal source (a
        path, or bytes)."""
        line = client.wait_line(outcome_re(file, owner), timeout, start)
        if isinstance(source, bytes):
            size, digest = len(source), hashlib.sha256(source).hexdigest()
        else:
            size, digest = os.path.getsize(source), sha256_file(source)
        self.assertRegex(line, received_re(file, owner, size),
                         'transfer of %s from %s did not succeed\n%s' % (
                             file, owner, client.describe()))
        path = os.path.join(client.downloads, file)
        self.assertTrue(os.path.isfile(path),
                        '%s missing after the success line' % path)
        self.assertEqual(os.path.getsize(path), size, 'size of %s' % path)
        self.assertEqual(sha256_file(path), digest,
                         'SHA-256 of the received %s differs' % path)
        return line

    def expect_failure(self, client, file, owner, reason, start=0,
                       timeout=10, shown=Ellipsis, final_absent=True):
        """Waits for the failure line of this transfer (file as printed:
        shown, by default file itself; None for any name) whose reason
        matches the regex reason; then checks that nothing is left under the
        final name and that no temp file remains."""
        printed = file if shown is Ellipsis else shown
        if printed is not None:
            pat = outcome_re(printed, owner)
        else:
            pat = re.compile(r'^(?:received .* from %s, |file transfer of .* '
                             r'from %s failed: )' % (re.escape(owner),
                                                     re.escape(owner)))
        line = client.wait_line(pat, timeout, start)
        self.assertRegex(line, failed_re(printed, owner),
                         'the transfer of %r from %s should have failed\n%s'
                         % (file, owner, client.describe()))
        self.assertRegex(line, reason, 'wrong failure reason')
        if final_absent and file is not None and '/' not in file and \
                file not in ('.', '..'):
            self.assertFalse(
                os.path.lexists(os.path.join(client.downloads, file)),
                'a file named %r exists in %s after a failed transfer' % (
                    file, client.downloads))
        self.assert_no_part_files(client)
        return line

    def count_outcomes(self, client, file, owner):
        pat = outcome_re(file, owner)
        return len([l for l in client.lines() if pat.search(l)])

    def assert_chat_works(self, a, b, text='still chatting'):
        """a and b (Clients) can still exchange messages both ways."""
        self.barrier(a, [b], text)
        self.barrier(b, [a], text)

    # --- raw socket requester -------------------------------------------

    def raw_requester(self, server, name='rawreq'):
        raw = self.raw_client(server.port, name)
        raw.send('\x01FILEPORT 0')
        return raw

    def raw_get(self, raw, rid, owner, file, timeout=10):
        """Sends GET; returns the answer split: ['GET-OK', id, host, port,
        token, owner's file key] (no key when the owner announced none) or
        ['GET-FAIL', id, code, text...]."""
        raw.send('\x01GET %d %s %s' % (rid, owner, file))
        line = raw.wait_line(re.compile('^\x01GET-(?:OK|FAIL) %d(?: |$)'
                                        % rid), timeout, start=0)
        return line[1:].split(' ')

    def raw_get_ok(self, raw, rid, owner, file):
        answer = self.raw_get(raw, rid, owner, file)
        self.assertEqual(answer[0], 'GET-OK',
                         'GET %s from %s: %r' % (file, owner, answer))
        self.assertIn(len(answer), (5, 6), 'malformed GET-OK %r' % answer)
        self.assertRegex(answer[4], r'^[0-9a-f]{32}$', 'token of %r' % answer)
        if len(answer) == 6:
            self.assertRegex(answer[5], r'^[0-9a-f]{64}$',
                             'owner\'s key of %r' % answer)
        return answer[2], int(answer[3]), answer[4]

    def assert_ok_reply(self, data, content):
        """data is "OK <size>\\n" + content + SHA-256(content)."""
        header, _, rest = data.partition(b'\n')
        self.assertEqual(header, b'OK %d' % len(content),
                         'file connection answer: %r' % data[:100])
        self.assertEqual(rest[:len(content)], content, 'file bytes differ')
        self.assertEqual(rest[len(content):],
                         hashlib.sha256(content).digest(),
                         'the 32-byte SHA-256 trailer is wrong')

    def assert_err_only(self, data, secret=None, need_err=True):
        """data holds no byte of a file: one line starting "ERR" (or, with
        need_err=False, nothing at all)."""
        if not need_err and data == b'':
            return
        self.assertTrue(
            data.startswith(b'ERR') and data.endswith(b'\n')
            and data.count(b'\n') == 1,
            'expected one "ERR ..." line and nothing else, got %r'
            % data[:300])
        if secret is not None:
            self.assertNotIn(secret, data)


class FileTransferTest(FileTestCase):
    """Files that arrive whole, while chat goes on."""

    def _transfer(self, name, data, timeout=10):
        if isinstance(data, str):
            data = data.encode('utf-8')
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.share(alice, name, data)
        self.sync(alice, bob)
        start = self.request(bob, 'alice', name)
        self.expect_success(bob, name, 'alice', data, start, timeout)
        self.assertEqual(os.listdir(bob.downloads), [name],
                         'only the received file should be in the downloads')
        self.assertEqual(self.count_outcomes(bob, name, 'alice'), 1)
        return server, alice, bob

    def test_zero_byte_file_arrives_empty(self):
        self._transfer('empty.txt', b'')

    def test_all_256_byte_values_arrive_unchanged(self):
        server, alice, bob = self._transfer('bytes.bin', bytes(range(256)) * 4)
        alice.wait_for('sending bytes.bin to bob')
        alice.wait_for('sent bytes.bin to bob')

    @harness.slow
    def test_64_mib_random_file_arrives_identical(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        src = os.path.join(alice.share, 'big.bin')
        write_random(src, 64 * MIB)
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'big.bin')
        self.expect_success(bob, 'big.bin', 'alice', src, start,
                            timeout=120)
        alice.wait_for('sent big.bin to bob', timeout=30)
        self.assertEqual(os.listdir(bob.downloads), ['big.bin'])

    def test_name_with_spaces_and_utf8_arrives(self):
        self._transfer('my file \u00e9.txt', 'caf\u00e9 \u2615\n' * 100)

    def test_older_file_of_same_name_replaced_on_success(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.share(alice, 'notes.txt', b'the new notes\n')
        write_file(os.path.join(bob.downloads, 'notes.txt'), b'old notes\n')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'notes.txt')
        self.expect_success(bob, 'notes.txt', 'alice', b'the new notes\n',
                            start)

    def test_default_share_and_download_dirs_are_working_directory(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice', defaults=True)
        bob = self.file_client(server, 'bob', defaults=True)
        write_file(os.path.join(alice.home, 'cwd.txt'), b'from the cwd\n')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'cwd.txt')
        self.expect_success(bob, 'cwd.txt', 'alice', b'from the cwd\n', start)

    @harness.slow
    def test_menu_returns_at_once_and_chat_flows_during_large_transfer(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        src = os.path.join(alice.share, 'large.bin')
        write_random(src, 64 * MIB)
        self.sync(alice, bob, carol)
        start = self.request(bob, 'alice', 'large.bin')
        bob.message('typed right after the request')
        o = bob.wait_for(OWNER_PROMPT, start=start)
        p = bob.wait_for(FILE_PROMPT, start=o + 1)
        bob.wait_for(MENU[-1], start=p + 1)
        lines = bob.lines()
        self.assertEqual(lines[p + 1:p + 1 + len(MENU)], MENU,
                         'the menu must follow "%s" at once\n%s' % (
                             FILE_PROMPT, bob.describe()))
        carol.wait_for('bob: typed right after the request', timeout=10)
        alice.wait_for('bob: typed right after the request', timeout=10)
        done = bob.wait_for(outcome_re('large.bin', 'alice'), 120, start)
        self.assertGreater(done, p + len(MENU),
                           'the outcome must come after the menu')
        self.expect_success(bob, 'large.bin', 'alice', src, start)
        self.assert_chat_works(bob, carol)

    def test_menu_and_chat_stay_live_while_a_transfer_is_held_open(self):
        # the test plays the owner and holds the transfer half-done, so it
        # is certainly in flight while bob chats and fetches another file
        server = self.start_server()
        fake = FakeOwner(self, server)
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        data = os.urandom(200000)
        other = os.urandom(50000)
        self.share(alice, 'other.bin', other)
        self.sync(alice, bob)
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'held.bin')
        p = bob.wait_for(FILE_PROMPT, start=start)
        bob.wait_for(MENU[-1], start=p + 1)
        self.assertEqual(bob.lines()[p + 1:p + 1 + len(MENU)], MENU)
        token, requester, file = fake.wait_serve()
        self.assertEqual((requester, file), ('bob', 'held.bin'))
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'OK %d\n' % len(data) + data[:1000])
        self.wait_part(bob, 'held.bin', fake.name, start)
        self.assertFalse(os.path.lexists(os.path.join(bob.downloads,
                                                      'held.bin')),
                         'the final name must not exist before verification')
        bob.message('chatting mid-transfer')
        alice.wait_for('bob: chatting mid-transfer')
        s2 = self.request(bob, 'alice', 'other.bin')
        bob.wait_for(outcome_re('other.bin', 'alice'), 10, s2)
        self.assertEqual(self.count_outcomes(bob, 'held.bin', fake.name), 0,
                         'held.bin cannot be done yet\n' + bob.describe())
        conn.sendall(data[1000:] + hashlib.sha256(data).digest())
        conn.close()
        self.expect_success(bob, 'held.bin', fake.name, data, start)
        self.expect_success(bob, 'other.bin', 'alice', other, s2)

    @harness.slow
    def test_three_clients_request_from_each_other_at_once(self):
        server = self.start_server()
        names = ('alice', 'bob', 'carol')
        clients = [self.file_client(server, n) for n in names]
        srcs = {}
        for c in clients:
            srcs[c.name] = os.path.join(c.share, '%s.bin' % c.name)
            write_random(srcs[c.name], 3 * MIB + len(c.name))
        self.sync(*clients)
        starts = {}
        for c in clients:
            starts[c.name] = len(c.lines())
        for i, c in enumerate(clients):
            o1, o2 = clients[(i + 1) % 3], clients[(i + 2) % 3]
            self.request(c, o1.name, '%s.bin' % o1.name)
            c.message('first from %s' % c.name)
            self.request(c, o2.name, '%s.bin' % o2.name)
            c.message('second from %s' % c.name)
        for c in clients:
            for o in clients:
                if o is c:
                    continue
                self.expect_success(c, '%s.bin' % o.name, o.name,
                                    srcs[o.name], starts[c.name], timeout=60)
                c.wait_for('%s: second from %s' % (o.name, o.name))
                self.assertEqual(
                    c.chat_lines(o.name)[-2:],
                    ['%s: first from %s' % (o.name, o.name),
                     '%s: second from %s' % (o.name, o.name)])
                self.assertEqual(self.count_outcomes(c, '%s.bin' % o.name,
                                                     o.name), 1)
                o.wait_for('sent %s.bin to %s' % (o.name, c.name), 30)

    @harness.slow
    def test_several_concurrent_requests_from_same_owner(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice', extra=['--max-transfers',
                                                         '8'])
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        sizes = {'f0.bin': MIB, 'f1.bin': 3 * MIB, 'f2.bin': 200000,
                 'f3.bin': 8 * MIB}
        srcs = {}
        for name, size in sizes.items():
            srcs[name] = os.path.join(alice.share, name)
            write_random(srcs[name], size)
        self.sync(alice, bob, carol)
        sb, sc = len(bob.lines()), len(carol.lines())
        for name in sorted(sizes):
            self.request(bob, 'alice', name)
        self.request(carol, 'alice', 'f3.bin')
        self.request(carol, 'alice', 'f1.bin')
        for name in sorted(sizes):
            self.expect_success(bob, name, 'alice', srcs[name], sb, 60)
        for name in ('f1.bin', 'f3.bin'):
            self.expect_success(carol, name, 'alice', srcs[name], sc, 60)
        for name in sorted(sizes):
            alice.wait_for('sent %s to bob' % name, 30)
        for name in ('f1.bin', 'f3.bin'):
            alice.wait_for('sent %s to carol' % name, 30)
        self.assert_chat_works(alice, bob)

    def test_symlink_to_file_inside_share_is_served(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.share(alice, 'real.txt', b'the real thing\n')
        os.symlink('real.txt', os.path.join(alice.share, 'alias.txt'))
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'alias.txt')
        self.expect_success(bob, 'alias.txt', 'alice', b'the real thing\n',
                            start)


class FileFailureTest(FileTestCase):
    """Requests that cannot succeed: a failure line, nothing left behind,
    and everybody keeps chatting."""

    def _pair(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        return server, alice, bob

    def test_missing_file_fails_and_owner_keeps_chatting(self):
        server, alice, bob = self._pair()
        start = self.request(bob, 'alice', 'nothere.txt')
        self.expect_failure(bob, 'nothere.txt', 'alice', R_NO_FILE, start)
        self.assertTrue(alice.alive(), alice.describe())
        self.assert_chat_works(alice, bob)
        self.assertEqual(os.listdir(bob.downloads), [])

    def test_unreadable_file_fails_and_owner_keeps_chatting(self):
        server = self.start_server()
        prefix = ()
        if os.geteuid() == 0:
            # root reads anything: run the owner as nobody instead
            prefix = ['setpriv', '--reuid=65534', '--regid=65534',
                      '--clear-groups']
            try:
                ok = subprocess.run(prefix + ['true'],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode == 0
            except OSError:
                ok = False
            if not ok:
                self.skipTest('running as root and cannot drop privileges '
                              'with setpriv: chmod 000 would not stop reads')
            os.chmod(self.tmpdir, 0o755)
        alice = self.file_client(server, 'alice', prefix=prefix)
        bob = self.file_client(server, 'bob')
        path = self.share(alice, 'locked.txt', b'secret\n')
        os.chmod(path, 0)
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'locked.txt')
        self.expect_failure(bob, 'locked.txt', 'alice', R_UNREADABLE, start)
        self.assertTrue(alice.alive(), alice.describe())
        self.assert_chat_works(alice, bob)

    def test_unknown_owner_fails_with_no_such_user(self):
        server, alice, bob = self._pair()
        start = self.request(bob, 'nobody', 'x.txt')
        self.expect_failure(bob, 'x.txt', 'nobody', R_NO_USER, start)
        self.assert_chat_works(alice, bob)

    def test_request_from_yourself_refused(self):
        server, alice, bob = self._pair()
        self.share(bob, 'mine.txt', b'mine\n')
        start = self.request(bob, 'bob', 'mine.txt')
        self.expect_failure(bob, 'mine.txt', 'bob', R_SELF, start)
        self.assert_chat_works(alice, bob)

    def test_request_from_yourself_in_another_case_names_you(self):
        # the line names the requester as registered, not as typed
        server, alice, bob = self._pair()
        self.share(bob, 'mine.txt', b'mine\n')
        for typed in ('BOB', 'Bob', ' bOb '):
            start = self.request(bob, typed, 'mine.txt')
            line = self.expect_failure(bob, 'mine.txt', 'bob', R_SELF, start)
            self.assertEqual(line, 'file transfer of mine.txt from bob '
                             'failed: you cannot request a file from '
                             'yourself')
        self.assert_chat_works(alice, bob)

    def test_existing_download_untouched_after_failed_request(self):
        server, alice, bob = self._pair()
        keep = write_file(os.path.join(bob.downloads, 'keep.txt'),
                          b'precious old content\n')
        old = os.stat(keep)
        start = self.request(bob, 'alice', 'keep.txt')
        self.expect_failure(bob, 'keep.txt', 'alice', R_NO_FILE, start,
                            final_absent=False)
        with open(keep, 'rb') as f:
            self.assertEqual(f.read(), b'precious old content\n')
        self.assertEqual(os.stat(keep).st_mtime_ns, old.st_mtime_ns)
        self.assertEqual(os.stat(keep).st_ino, old.st_ino)
        self.assertEqual(os.listdir(bob.downloads), ['keep.txt'])

    def test_digest_mismatch_fails_and_keeps_older_file(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        keep = write_file(os.path.join(bob.downloads, 'doc.txt'), b'old\n')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'doc.txt')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'OK 5\nhello' + hashlib.sha256(b'hellO').digest())
        conn.close()
        self.expect_failure(bob, 'doc.txt', fake.name, R_DIGEST, start,
                            final_absent=False)
        with open(keep, 'rb') as f:
            self.assertEqual(f.read(), b'old\n')
        self.assertEqual(os.listdir(bob.downloads), ['doc.txt'])

    def test_owner_closing_early_fails_with_size_or_connection(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'short.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'OK 100000\n' + os.urandom(1000))
        conn.close()
        self.expect_failure(bob, 'short.bin', fake.name,
                            '%s|%s' % (R_SIZE, R_CONNECTION), start)

    def test_err_answer_on_file_connection_fails_as_refused(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'nope.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'ERR bad-token not for you\n')
        conn.close()
        self.expect_failure(bob, 'nope.bin', fake.name, R_REFUSED, start)

    def test_stalled_transfer_fails_after_stall_timeout(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob', extra=['--stall-timeout', '2'])
        carol = self.file_client(server, 'carol')
        self.barrier(fake.chat, [bob, carol])
        start = self.request(bob, fake.name, 'stuck.bin')
        token, _, _ = fake.wait_serve()
        fake.serve_ok(token)
        conn = fake.accept(token)
        conn.sendall(b'OK 100000\n' + os.urandom(1000))
        t0 = time.monotonic()
        self.expect_failure(bob, 'stuck.bin', fake.name, R_STALLED, start,
                            timeout=15)
        self.assertGreater(time.monotonic() - t0, 1.0,
                           'gave up before the 2 s stall timeout')
        self.assert_chat_works(bob, carol)

    def test_owner_leaving_before_answering_fails_with_owner_left(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        self.barrier(fake.chat, [bob, carol])
        start = self.request(bob, fake.name, 'never.bin')
        fake.wait_serve()
        fake.chat.close()
        self.expect_failure(bob, 'never.bin', fake.name, R_OWNER_LEFT, start)
        self.assert_chat_works(bob, carol)

    def test_owner_not_answering_fails_with_timed_out(self):
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        start = self.request(bob, fake.name, 'silent.bin')
        fake.wait_serve()
        self.expect_failure(bob, 'silent.bin', fake.name, R_TIMED_OUT, start,
                            timeout=15)
        self.assert_chat_works(bob, self.file_client(server, 'carol'))

    def request_huge_file(self):
        """alice shares a 1 GiB sparse file, carol looks on, and bob has
        just asked for it. Returns (alice, bob, carol, start)."""
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        carol = self.file_client(server, 'carol')
        write_sparse(os.path.join(alice.share, 'huge.bin'), 1024 * MIB)
        self.sync(alice, bob, carol)
        return alice, bob, carol, self.request(bob, 'alice', 'huge.bin')

    @harness.slow
    def test_owner_killed_right_after_request(self):
        alice, bob, carol, start = self.request_huge_file()
        p = bob.wait_for(FILE_PROMPT, start=start)
        bob.wait_for(MENU[-1], start=p + 1)
        alice.kill()
        self.expect_failure(bob, 'huge.bin', 'alice',
                            '|'.join((R_OWNER_LEFT, R_NO_USER, R_CONNECTION,
                                      R_SIZE, R_REFUSED)), start, timeout=15)
        carol.wait_for('* alice left')
        self.assert_chat_works(bob, carol)

    @harness.slow
    def test_owner_killed_mid_transfer(self):
        alice, bob, carol, start = self.request_huge_file()
        # bytes have arrived: the direct connection is up, so no relay
        # fallback (which would answer "no such user") can follow the kill
        self.wait_part(bob, 'huge.bin', 'alice', start, min_bytes=1)
        alice.kill()
        self.expect_failure(bob, 'huge.bin', 'alice',
                            '|'.join((R_CONNECTION, R_SIZE, R_OWNER_LEFT)),
                            start, timeout=15)
        carol.wait_for('* alice left')
        bob.wait_for('* alice left')
        self.assert_chat_works(bob, carol)
        self.assertEqual(os.listdir(bob.downloads), [])

    @harness.slow
    def test_requester_exits_during_large_transfer(self):
        alice, bob, carol, start = self.request_huge_file()
        self.wait_part(bob, 'huge.bin', 'alice', start, min_bytes=1)
        bob.send('x')
        self.assertEqual(bob.wait_exit(timeout=5), 0, bob.describe())
        self.assertEqual(bob.lines()[-1], GOODBYE)
        self.assertEqual(self.part_files(bob), [],
                         'the .part file must be removed on exit')
        self.assertEqual(os.listdir(bob.downloads), [])
        carol.wait_for('* bob left')
        self.assertTrue(alice.alive(), alice.describe())
        self.assert_chat_works(alice, carol)

    def test_busy_listen_port_client_still_chats(self):
        server = self.start_server()
        # one dual-stack socket takes the port for IPv4 and IPv6 alike
        try:
            holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            holder.bind(('::', 0))
        except OSError:
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.bind(('', 0))
        self._holders.append(holder)
        holder.listen(1)
        busy = holder.getsockname()[1]
        alice = self.file_client(server, 'alice', lport=busy)
        bob = self.file_client(server, 'bob')
        self.assert_chat_works(alice, bob)
        self.assertEqual(alice.exit(), 0, alice.describe())
        self.assertNotEqual(alice.stderr_text().strip(), '',
                            'a warning about the busy port was expected on '
                            'stderr')


class FileSecurityTest(FileTestCase):
    """Only regular files directly in the share dir are served, each token
    once; nothing is written outside the download dir."""

    def _setup(self):
        """alice shares ordinary files plus traps; bob requests. Returns
        (server, alice, bob, outside_dir)."""
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        outside = os.path.join(self.tmpdir, 'outside')
        os.makedirs(outside)
        write_file(os.path.join(outside, 'secret.txt'), b'outside secret\n')
        self.share(alice, 'ok.txt', b'fine\n')
        self.share(alice, '.hidden', b'hidden\n')
        os.makedirs(os.path.join(alice.share, 'a'))
        self.share(alice, os.path.join('a', 'b'), b'nested\n')
        os.makedirs(os.path.join(alice.share, 'adir'))
        os.symlink(os.path.join(outside, 'secret.txt'),
                   os.path.join(alice.share, 'escape.txt'))
        write_file(os.path.join(alice.home, 'x'), b'next to the share\n')
        write_file(os.path.join(bob.home, 'x'), b'next to the downloads\n')
        self.sync(alice, bob)
        return server, alice, bob, outside

    def _refused(self, alice, bob, name, reason, shown=Ellipsis):
        before = snapshot(self.tmpdir)
        start = self.request(bob, 'alice', name)
        self.expect_failure(bob, name, 'alice', reason, start, shown=shown)
        after = snapshot(self.tmpdir)
        if before != after:
            changed = sorted(k for k in set(before) | set(after)
                             if before.get(k) != after.get(k))
            self.fail('requesting %r changed files: %r' % (name, changed))
        self.assertEqual(os.listdir(bob.downloads), [])

    def test_parent_dir_name_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, '../x', '%s|%s' % (R_INVALID, R_REFUSED))
        self.assertTrue(alice.alive())

    def test_absolute_path_refused(self):
        server, alice, bob, _ = self._setup()
        st = os.stat('/etc/hostname') if os.path.exists('/etc/hostname') \
            else None
        self._refused(alice, bob, '/etc/hostname',
                      '%s|%s' % (R_INVALID, R_REFUSED))
        if st is not None:
            self.assertEqual(os.stat('/etc/hostname').st_mtime_ns,
                             st.st_mtime_ns)

    def test_name_with_slash_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, 'a/b', '%s|%s' % (R_INVALID, R_REFUSED))

    def test_name_with_backslash_refused(self):
        server, alice, bob, _ = self._setup()
        self.share(alice, 'c\\d', b'backslash\n')
        self._refused(alice, bob, 'c\\d', '%s|%s' % (R_INVALID, R_REFUSED))

    def test_hidden_name_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, '.hidden', '%s|%s' % (R_INVALID, R_REFUSED))

    def test_dot_and_dotdot_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, '.', '%s|%s' % (R_INVALID, R_REFUSED))
        self._refused(alice, bob, '..', '%s|%s' % (R_INVALID, R_REFUSED))

    def test_name_with_control_character_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, 'bad\x1bname', '%s|%s' % (R_INVALID,
                                                            R_REFUSED),
                      shown=None)

    def test_name_longer_than_255_bytes_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, 'n' * 256, '%s|%s' % (R_INVALID, R_REFUSED))

    def test_symlink_to_file_outside_share_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, 'escape.txt',
                      '%s|%s' % (R_NOT_REGULAR, R_REFUSED))
        self.assertNoLine(alice, re.compile(r'^sending escape\.txt'))

    def test_directory_in_share_refused(self):
        server, alice, bob, _ = self._setup()
        self._refused(alice, bob, 'adir', '%s|%s' % (R_NOT_REGULAR,
                                                     R_REFUSED))
        self.assertTrue(os.path.isdir(os.path.join(alice.share, 'adir')))

    def test_owner_serves_normally_after_refusals(self):
        server, alice, bob, _ = self._setup()
        for name in ('../x', 'a/b', '.hidden', 'escape.txt', 'adir'):
            self.request(bob, 'alice', name)
        start = self.request(bob, 'alice', 'ok.txt')
        self.expect_success(bob, 'ok.txt', 'alice', b'fine\n', start)
        self.assertEqual(os.listdir(bob.downloads), ['ok.txt'])
        self.assert_chat_works(alice, bob)

    def test_requester_never_forwards_invalid_names(self):
        # the owner is played by the test: invalid names must never reach it
        server = self.start_server()
        fake = FakeOwner(self, server)
        bob = self.file_client(server, 'bob')
        self.barrier(fake.chat, [bob])
        for name in ('../x', '/etc/hostname', 'a/b', '.hidden', 'a\\b'):
            start = self.request(bob, fake.name, name)
            self.expect_failure(bob, name, fake.name,
                                '%s|%s' % (R_INVALID, R_REFUSED), start)
        self.barrier(bob, [fake.chat])
        self.assertNoLine(fake.chat, re.compile('^\x01SERVE'),
                          'an invalid name reached the owner')

    def test_owner_refuses_bad_names_asked_for_directly(self):
        # a raw requester bypasses chat-client's own checks
        server, alice, bob, _ = self._setup()
        raw = self.raw_requester(server)
        self.barrier(alice, [raw])
        cases = [('../x', 'bad-name'), ('a/b', 'bad-name'),
                 ('.hidden', 'bad-name'), ('c\\d', 'bad-name'),
                 ('escape.txt', 'not-a-file'), ('adir', 'not-a-file')]
        for rid, (name, code) in enumerate(cases, 1):
            answer = self.raw_get(raw, rid, 'alice', name)
            self.assertEqual(answer[:3], ['GET-FAIL', str(rid), code],
                             'GET %r' % name)
        self.assertNoLine(alice, re.compile(r'^sen(?:ding|t) '))
        answer = self.raw_get(raw, 99, 'nobody', 'ok.txt')
        self.assertEqual(answer[:3], ['GET-FAIL', '99', 'no-such-user'])
        self.assertEqual(os.listdir(bob.downloads), [])

    def test_made_up_token_gets_err_and_no_bytes(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        self.share(alice, 'secret.txt', b'TOPSECRET' * 10)
        token = os.urandom(16).hex()
        data = fetch(self, 'localhost', alice.lport,
                     b'CHATFILE 1 %s\n' % token.encode())
        self.assert_err_only(data, b'TOPSECRET')
        self.assertNoLine(alice, re.compile(r'^sen(?:ding|t) '))
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'secret.txt')
        self.expect_success(bob, 'secret.txt', 'alice', b'TOPSECRET' * 10,
                            start)

    def test_token_works_once_and_only_at_its_owner(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        carol = self.file_client(server, 'carol')
        content = b'TOKENFILE' + os.urandom(5000)
        self.share(alice, 'tok.bin', content)
        self.share(carol, 'tok.bin', b'carol has one too')
        raw = self.raw_requester(server)
        self.sync(alice, carol)
        self.barrier(alice, [raw])
        host, port, token = self.raw_get_ok(raw, 1, 'alice', 'tok.bin')
        header = b'CHATFILE 1 %s\n' % token.encode()
        # at another client's file port the token is worth nothing
        self.assert_err_only(fetch(self, 'localhost', carol.lport, header),
                             b'carol has one')
        self.assert_ok_reply(fetch(self, host, port, header), content)
        alice.wait_for('sending tok.bin to rawreq')
        alice.wait_for('sent tok.bin to rawreq')
        # replayed
        self.assert_err_only(fetch(self, host, port, header), b'TOKENFILE')
        self.assertTrue(alice.alive(), alice.describe())

    def test_garbage_on_file_port_closed_without_file_bytes(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        content = b'GARBAGETEST' * 100
        self.share(alice, 'g.txt', content)
        junk = [
            os.urandom(4096),
            b'CHATFILE 1 ' + b'a' * 1000 + b'\n',
            b'X' * 100000,
            b'CHATFILE 1\n',
            b'CHATFILE 2 ' + os.urandom(16).hex().encode() + b'\n',
            b'CHATFILE 1 g.txt\n',
            b'GET /g.txt HTTP/1.0\r\n\r\n',
            b'\x00' * 64 + b'\n',
        ]
        for payload in junk:
            data = fetch(self, 'localhost', alice.lport, payload)
            self.assert_err_only(data, b'GARBAGE', need_err=False)
            self.assertTrue(alice.alive(), alice.describe())
        bob = self.file_client(server, 'bob')
        self.sync(alice, bob)
        start = self.request(bob, 'alice', 'g.txt')
        self.expect_success(bob, 'g.txt', 'alice', content, start)

    def test_idle_file_connection_closed_after_header_timeout(self):
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        bob = self.file_client(server, 'bob')
        self.share(alice, 'i.txt', b'idle test\n')
        self.sync(alice, bob)
        idle = socket.create_connection(('localhost', alice.lport),
                                        timeout=scaled(10))
        self._holders.append(idle)
        t0 = time.monotonic()
        # an idle connection does not hold up a proper transfer
        start = self.request(bob, 'alice', 'i.txt')
        self.expect_success(bob, 'i.txt', 'alice', b'idle test\n', start)
        idle.settimeout(scaled(20))
        data = b''
        try:
            while True:
                chunk = idle.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail('the idle file connection was not closed within %.0fs'
                      % scaled(20))
        self.assertGreater(time.monotonic() - t0, 3.0,
                           'closed long before the 5 s header deadline')
        self.assert_err_only(data, None, need_err=False)


if __name__ == '__main__':
    harness.main()
