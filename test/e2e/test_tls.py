#!/usr/bin/env python3
"""End-to-end tests of TLS on the chat connection: one port for TLS and
plain clients, the client's trust rules (first use, a changed key, --pin,
--ca), --require-tls, openssl s_client as a client, and hostile TLS
clients. Real executables over loopback.

Run: CHAT_SERVER=... CHAT_CLIENT=... CHAT_BOT=... python3 test/e2e/test_tls.py -v
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hashlib  # noqa: E402
import select  # noqa: E402

import harness  # noqa: E402
from harness import ChatTestCase, Client, free_port, scaled  # noqa: E402
from test_files import FileTestCase, RawOwner  # noqa: E402

FP = re.compile(r'TLS key SHA256 ([0-9a-f]{64})')
CERT_FP = re.compile(r'TLS certificate SHA256 ([0-9a-f]{64})')


class TlsTest(ChatTestCase):

    def tls_server(self, *args, state=None, port=0):
        state = state or os.path.join(self.tmpdir, 'state')
        server = harness.Server(self, ['--tls', '--state-dir', state] +
                                list(args) + [str(port)])
        server.wait_listening()
        return server

    def key_fp(self, server):
        i = server.wait_stderr(FP)
        return FP.search(server.stderr_lines()[i]).group(1)

    def tls_client(self, port, name, *extra, known='known_hosts',
                   register=True):
        args = ['--tls', '--known-hosts', os.path.join(self.tmpdir, known)]
        args += list(extra)
        args += ['-l', str(free_port()), '-p', str(port), '-s', '127.0.0.1']
        c = Client(self, port, name=name, args=args,
                   label='tls-client-%s' % name)
        if register:
            c.register()
        return c

    def test_tls_and_plain_clients_chat_on_one_port(self):
        server = self.tls_server()
        alice = self.tls_client(server.port, 'alice', known='kh-alice')
        bob = self.tls_client(server.port, 'bob', known='kh-bob')
        carol = self.start_client(server.port, 'carol', host='127.0.0.1')
        raw = self.raw_client(server.port, 'dave', host='127.0.0.1')
        alice.message('hello over tls')
        for c in (bob, carol):
            c.wait_for('alice: hello over tls')
        raw.wait_line('alice: hello over tls')
        carol.message('hello in the clear')
        alice.wait_for('carol: hello in the clear')
        bob.wait_for('carol: hello in the clear')
        raw.send('dave here')
        alice.wait_for('dave: dave here')
        self.assertEqual(alice.exit(), 0)
        bob.wait_for('* alice left')
        log = '\n'.join(server.log_lines())
        self.assertEqual(len(re.findall(r'#\d+ TLS TLSv1\.3', log)), 2, log)

    def test_first_use_pins_and_a_changed_key_is_refused(self):
        port = free_port()
        server = self.tls_server(state=os.path.join(self.tmpdir, 's1'),
                                 port=port)
        fp1 = self.key_fp(server)
        alice = self.tls_client(port, 'alice')
        alice.wait_stderr(re.compile(
            r'trusting \[127\.0\.0\.1\]:%d on first use: key SHA256 %s' %
            (port, fp1)))
        self.assertEqual(alice.exit(), 0)
        with open(os.path.join(self.tmpdir, 'known_hosts')) as f:
            self.assertEqual(f.read(), '[127.0.0.1]:%d %s\n' % (port, fp1))
        # The same key again: trusted without a word.
        bob = self.tls_client(port, 'bob')
        self.assertEqual(bob.exit(), 0)
        self.assertNotIn('first use', bob.stderr_text())
        server.stop()
        # Another server (another key) on the same address: refused, exit 1,
        # both fingerprints and how to remove the old line are shown, and
        # our name never reached it.
        server2 = self.tls_server(state=os.path.join(self.tmpdir, 's2'),
                                  port=port)
        fp2 = self.key_fp(server2)
        self.assertNotEqual(fp1, fp2)
        carol = self.tls_client(port, 'carol', register=False)
        carol.send('carol')
        self.assertEqual(carol.wait_exit(), 1)
        err = carol.stderr_text()
        self.assertIn('CHANGED', err)
        self.assertIn(fp1, err)
        self.assertIn(fp2, err)
        self.assertIn('remove the line for [127.0.0.1]:%d' % port, err)
        self.assertNotIn('registered as carol', '\n'.join(server2.log_lines()))

    def test_pin_accepts_the_right_key_and_refuses_another(self):
        server = self.tls_server()
        fp = self.key_fp(server)
        i = server.wait_stderr(CERT_FP)
        cert_fp = CERT_FP.search(server.stderr_lines()[i]).group(1)
        alice = self.tls_client(server.port, 'alice', '--pin', fp)
        colons = ':'.join(cert_fp[i:i + 2] for i in range(0, 64, 2)).upper()
        bob = self.tls_client(server.port, 'bob', '--pin', colons)
        alice.message('pinned')
        bob.wait_for('alice: pinned')
        wrong = '%064x' % (int(fp, 16) ^ 1)
        carol = self.tls_client(server.port, 'carol', '--pin', wrong,
                                register=False)
        carol.send('carol')
        self.assertEqual(carol.wait_exit(), 1)
        self.assertIn('does not match --pin', carol.stderr_text())
        # --pin needs no known-hosts line and leaves none.
        self.assertFalse(os.path.exists(os.path.join(self.tmpdir,
                                                     'known_hosts')))

    def make_cert(self, name):
        if shutil.which('openssl') is None:
            self.skipTest('no openssl')
        cert = os.path.join(self.tmpdir, name + '.pem')
        key = os.path.join(self.tmpdir, name + '.key')
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj',
             '/CN=localhost', '-addext',
             'subjectAltName=IP:127.0.0.1,DNS:localhost',
             '-keyout', key, '-out', cert],
            check=True, capture_output=True)
        return cert, key

    def test_ca_accepts_what_it_signs_and_refuses_the_rest(self):
        cert, key = self.make_cert('server')
        other, _ = self.make_cert('other')
        server = harness.Server(self, ['--cert', cert, '--key', key, '0'])
        server.wait_listening()
        alice = self.tls_client(server.port, 'alice', '--ca', cert)
        self.assertEqual(alice.exit(), 0)
        bob = self.tls_client(server.port, 'bob', '--ca', other,
                              register=False)
        bob.send('bob')
        self.assertEqual(bob.wait_exit(), 1)
        self.assertIn('not trusted by', bob.stderr_text())

    def test_require_tls_tells_a_plain_client_why(self):
        server = self.tls_server('--require-tls')
        raw = self.raw_client(server.port, host='127.0.0.1')
        raw.send('mallory')
        line = raw.wait_line(re.compile(r'^! '))
        self.assertTrue(line.startswith('! tls-required '), line)
        raw.wait_eof()
        alice = self.tls_client(server.port, 'alice')
        self.assertEqual(alice.exit(), 0)

    def test_openssl_s_client_is_a_chat_client(self):
        if shutil.which('openssl') is None:
            self.skipTest('no openssl')
        server = self.tls_server()
        raw = self.raw_client(server.port, 'bob', host='127.0.0.1')
        p = subprocess.Popen(
            ['openssl', 's_client', '-connect', '127.0.0.1:%d' % server.port,
             '-quiet'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        try:
            p.stdin.write(b'olga\n')
            p.stdin.flush()
            raw.wait_line('* olga joined')
            p.stdin.write(b'hi from s_client\n')
            p.stdin.flush()
            raw.wait_line('olga: hi from s_client')
            raw.send('hi olga')
            deadline = time.time() + scaled(10)
            got = b''
            while b'bob: hi olga' not in got and time.time() < deadline:
                got += os.read(p.stdout.fileno(), 4096)
            self.assertIn(b'bob: hi olga', got)
        finally:
            p.kill()
            p.wait()

    def test_hostile_tls_clients_do_not_stop_the_server(self):
        server = self.tls_server('--register-timeout', '2')
        # Garbage after a handshake record's first byte.
        junk = socket.create_connection(('127.0.0.1', server.port))
        junk.sendall(b'\x16\x03\x01\x00\x05hello\n' + os.urandom(64))
        # A handshake that stops half way.
        half = socket.create_connection(('127.0.0.1', server.port))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inb, outb)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outb.read()
        half.sendall(hello[:len(hello) // 2])
        # Meanwhile a real TLS client and a plain one chat.
        alice = self.tls_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'bob', host='127.0.0.1')
        alice.message('still here')
        raw.wait_line('alice: still here')
        # Both hostile connections are closed by the server.
        for s in (junk, half):
            s.settimeout(scaled(10))
            while True:
                try:
                    if s.recv(4096) == b'':
                        break
                except ConnectionResetError:
                    break
            s.close()
        self.assertTrue(server.alive())
        log = '\n'.join(server.log_lines())
        self.assertIn('TLS handshake failed', log)

    def test_tls12_client_works(self):
        server = self.tls_server()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(('127.0.0.1', server.port)) as s:
            with ctx.wrap_socket(s) as t:
                self.assertEqual(t.version(), 'TLSv1.2')
                t.sendall(b'tina\n')
                t.settimeout(scaled(10))
                self.assertIn(b'* welcome tina', t.recv(4096))


def make_key_cert(case, name):
    """A P-256 key and self-signed certificate made with openssl; returns
    (cert path, key path, SHA-256 of the key's SubjectPublicKeyInfo)."""
    if shutil.which('openssl') is None:
        case.skipTest('no openssl')
    cert = os.path.join(case.tmpdir, name + '.pem')
    key = os.path.join(case.tmpdir, name + '.key')
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
         'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj',
         '/CN=owner', '-keyout', key, '-out', cert],
        check=True, capture_output=True)
    der = subprocess.run(['openssl', 'pkey', '-in', key, '-pubout',
                          '-outform', 'DER'], check=True,
                         capture_output=True).stdout
    return cert, key, hashlib.sha256(der).hexdigest()


class TlsOwner(RawOwner):
    """An owner played by the test that announces a file key (FILEPORT
    <port> <fingerprint>) and serves over TLS with the key it is given."""

    def __init__(self, case, server, fp, cert, key, listen=True):
        self.conns = []
        self.listener = None
        port = 0
        if listen:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.bind(('127.0.0.1', 0))
            self.listener.listen(8)
            port = self.listener.getsockname()[1]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        RawOwner.__init__(self, case, server, 'owner', '%d %s' % (port, fp))

    def first_bytes(self, conn, n=5):
        """Peeks at what the requester sent first, without consuming it."""
        conn.settimeout(scaled(10))
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            data = conn.recv(n, socket.MSG_PEEK)
            if len(data) >= n or not data:
                return data
            time.sleep(0.01)
        return data

    def serve_tls(self, conn, token, data):
        """TLS on conn as the server; checks the header, sends the file."""
        t = self.ctx.wrap_socket(conn, server_side=True)
        self.conns.append(t)
        header = b''
        while not header.endswith(b'\n') and len(header) < 300:
            chunk = t.recv(1)
            if not chunk:
                break
            header += chunk
        self.case.assertEqual(header, b'CHATFILE 1 %s\n' % token.encode())
        t.sendall(b'OK %d\n' % len(data) + data +
                  hashlib.sha256(data).digest())
        try:
            t.unwrap()  # our close_notify: a clean end, not a cut
        except (ssl.SSLError, OSError):
            pass  # the requester, done, closed without waiting for ours
        return t

    def close(self):
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        if self.listener is not None:
            self.listener.close()


class TlsFileTest(FileTestCase):
    """File connections between our clients are always TLS, pinned to the
    owner's key as the server announced it."""

    DATA = os.urandom(200000)

    def accept(self, owner):
        ready, _, _ = select.select([owner.listener], [], [], scaled(10))
        self.assertTrue(ready, 'the requester did not connect')
        conn, _ = owner.listener.accept()
        owner.conns.append(conn)
        return conn

    def test_direct_transfer_is_tls_to_the_announced_key(self):
        server = self.start_server()
        cert, key, fp = make_key_cert(self, 'owner')
        owner = TlsOwner(self, server, fp, cert, key)
        bob = self.file_client(server, 'bob')
        self.sync(bob)
        start = self.request(bob, 'owner', 'f.bin')
        token, _, _ = owner.wait_serve()
        owner.serve_ok(token)
        conn = self.accept(owner)
        self.assertEqual(owner.first_bytes(conn)[:1], b'\x16',
                         'the requester did not start with TLS')
        owner.serve_tls(conn, token, self.DATA)
        self.expect_success(bob, 'f.bin', 'owner', self.DATA, start)

    def test_a_key_other_than_the_announced_one_gets_nothing(self):
        server = self.start_server()
        cert, key, _ = make_key_cert(self, 'owner')
        _, _, other_fp = make_key_cert(self, 'other')
        owner = TlsOwner(self, server, other_fp, cert, key)
        bob = self.file_client(server, 'bob')
        self.sync(bob)
        start = self.request(bob, 'owner', 'f.bin')
        token, _, _ = owner.wait_serve()
        owner.serve_ok(token)
        conn = self.accept(owner)
        t = owner.ctx.wrap_socket(conn, server_side=True)
        owner.conns.append(t)
        t.settimeout(scaled(10))
        try:
            got = t.recv(100)
        except (ssl.SSLError, OSError):
            got = b''
        self.assertEqual(got, b'', 'the requester sent its header to a '
                         'key it should not trust')
        self.expect_failure(bob, 'f.bin', 'owner', 'not the one the server '
                            'announced', start)

    def test_relay_copies_tls_records_end_to_end(self):
        server = self.start_server()
        cert, key, fp = make_key_cert(self, 'owner')
        owner = TlsOwner(self, server, fp, cert, key, listen=False)
        bob = self.file_client(server, 'bob')
        self.sync(bob)
        start = self.request(bob, 'owner', 'f.bin')
        token, _, _ = owner.wait_serve()
        owner.serve_ok(token)
        i = owner.chat.wait_for(re.compile('^\x01RELAY-SERVE '))
        relay_key = owner.chat.received[i].split(' ')[2]
        leg = socket.create_connection(('127.0.0.1', server.port))
        owner.conns.append(leg)
        leg.sendall(b'\x01RELAY %s serve\n' % relay_key.encode())
        # What the server relays from the requester is a TLS record, not
        # the CHATFILE line (nor, later, the file).
        self.assertEqual(owner.first_bytes(leg)[:1], b'\x16')
        owner.serve_tls(leg, token, self.DATA)
        self.expect_success(bob, 'f.bin', 'owner', self.DATA, start)

    def test_plain_header_still_served_to_a_script(self):
        # A script holding a token (here: one the test asks for as a fake
        # requester) may fetch from a real owner with nc's plain header.
        server = self.start_server()
        alice = self.file_client(server, 'alice')
        self.share(alice, 'a.txt', b'plain for nc\n')
        raw = self.raw_client(server.port, 'script', host='127.0.0.1')
        raw.send('\x01FILEPORT 0')
        raw.send('\x01GET 1 alice a.txt')
        i = raw.wait_for(re.compile('^\x01GET-OK '))
        parts = raw.received[i].split(' ')
        self.assertEqual(len(parts), 6, 'GET-OK carries the owner\'s key')
        self.assertRegex(parts[5], r'^[0-9a-f]{64}$')
        port, token = int(parts[3]), parts[4]
        with socket.create_connection(('127.0.0.1', port)) as s:
            s.sendall(b'CHATFILE 1 %s\n' % token.encode())
            s.settimeout(scaled(10))
            got = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        body = b'plain for nc\n'
        self.assertEqual(got, b'OK %d\n' % len(body) + body +
                         hashlib.sha256(body).digest())


if __name__ == '__main__':
    harness.main()
