"""Helpers for the chat end-to-end tests (Python 3 standard library only).

The executables come from the environment, as meson sets it:

    CHAT_SERVER, CHAT_CLIENT, CHAT_BOT   paths of the three programs
    CHAT_TEST_WRAPPER                    e.g. "valgrind --error-exitcode=99 -q
                                         --leak-check=full": prefixed to every
                                         program started; timeouts are then
                                         multiplied by 10
    CHAT_TEST_TIMEOUT_MULT               overrides that multiplier
    CHAT_TEST_KEEP                       set to 1 to keep each test's temp dir

When a variable is unset, the program is looked for in <repo>/build/.

Every process a test starts writes its stdout and stderr to files in the
test's own temp dir (never pipes: a client that forgets to flush its stdout
must fail here, as it would for a grader reading the file while the client
runs).  Helpers poll those files with timeouts; nothing sleeps for a fixed
long time, and every port is chosen by the kernel (port 0), so tests can run
in parallel.
"""

import errno
import os
import pty
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _program(var, default):
    path = os.environ.get(var) or os.path.join(REPO, default)
    return os.path.abspath(path)


CHAT_SERVER = _program('CHAT_SERVER', os.path.join('build', 'src', 'chat-server'))
CHAT_CLIENT = _program('CHAT_CLIENT', os.path.join('build', 'src', 'chat-client'))
CHAT_BOT = _program('CHAT_BOT', os.path.join('build', 'examples', 'chat-bot'))

WRAPPER = shlex.split(os.environ.get('CHAT_TEST_WRAPPER', ''))
_mult = os.environ.get('CHAT_TEST_TIMEOUT_MULT', '').strip()
TIMEOUT_MULT = float(_mult) if _mult else (10.0 if WRAPPER else 1.0)
VALGRIND_ERROR_STATUS = 99  # the --error-exitcode the wrapper is given
KEEP = os.environ.get('CHAT_TEST_KEEP', '') not in ('', '0')

POLL = 0.02  # seconds between two looks at an output file

MENU = [
    "Enter an option ('m', 'f', 'x'):",
    "  (M)essage (send)",
    "  (F)ile (request)",
    "  e(x)it",
]
NAME_PROMPT = 'What is your name?'
MESSAGE_PROMPT = 'Enter your message:'
OWNER_PROMPT = 'Who owns the file?'
FILE_PROMPT = 'Which file do you want?'
GOODBYE = 'closing your sockets...goodbye'

LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z chat-server\[(\d+)\]: ')


def scaled(seconds):
    """A timeout in seconds, scaled for slow wrappers such as valgrind."""
    return seconds * TIMEOUT_MULT


def welcome_re(name):
    """The server's welcome line for name ("user(s)" or a plural form)."""
    return re.compile(r'^\* welcome ' + re.escape(name) +
                      r', \d+ other user(?:\(s\)|s)? online$')


def decode(data):
    """Bytes to str; bytes that are not UTF-8 become lone surrogates, so a
    raw 0xff byte can never be mistaken for the four characters \\xff."""
    return data.decode('utf-8', errors='surrogateescape')


def matches(pattern, line):
    """A str pattern is an exact line; a compiled regex is searched."""
    if isinstance(pattern, re.Pattern):
        return pattern.search(line) is not None
    return line == pattern


def describe_pattern(pattern):
    if isinstance(pattern, re.Pattern):
        return 're/%s/' % pattern.pattern
    return repr(pattern)


def tail(text, limit=4000):
    if len(text) <= limit:
        return text
    return '[... %d chars cut ...]\n' % (len(text) - limit) + text[-limit:]


def signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return 'signal %d' % num


def describe_status(rc):
    if rc is None:
        return 'still running'
    if rc < 0:
        return 'killed by %s' % signal_name(-rc)
    return 'exit status %d' % rc


def unused_port():
    """(port, holder): a TCP port bound on 127.0.0.1 but not listening, so a
    connection to it is refused for as long as holder stays open."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(('127.0.0.1', 0))
    return holder.getsockname()[1], holder


def free_port():
    """A port that was free a moment ago (for a client's -l option). It is
    drawn below the kernel's ephemeral range: a port the kernel handed out
    for a moment would soon be handed out again as the source port of some
    test's outgoing connection, and the client's listen would fail."""
    low = 32768
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randrange(max(1024, low // 3), low)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(('', port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('', 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Process:
    """A started executable with stdout/stderr in files and a writable stdin.

    stdin: subprocess.PIPE (default), subprocess.DEVNULL, a file object or
    descriptor, or 'pty' (stdin only is the slave side of a new pseudo
    terminal; the test writes to the master side).
    """

    kind = 'process'

    def __init__(self, case, argv, label, stdin=subprocess.PIPE, wrap=True):
        self.case = case
        self.label = label
        self.argv = list(WRAPPER if wrap else []) + list(argv)
        self.wrapped = bool(WRAPPER) and wrap
        self.signals_sent = set()
        self.reported = False
        case._seq += 1
        base = os.path.join(case.tmpdir, '%02d-%s' % (case._seq, label))
        self.stdout_path = base + '.stdout'
        self.stderr_path = base + '.stderr'
        self.stdin_fd = None
        self.pty_master = None
        slave = None
        if stdin == 'pty':
            self.pty_master, slave = pty.openpty()
            os.set_blocking(self.pty_master, False)
            child_stdin = slave
        else:
            child_stdin = stdin
        with open(self.stdout_path, 'wb') as out, \
                open(self.stderr_path, 'wb') as err:
            try:
                self.popen = subprocess.Popen(
                    self.argv, stdin=child_stdin, stdout=out, stderr=err,
                    start_new_session=True, close_fds=True)
            finally:
                if slave is not None:
                    os.close(slave)
        self.pid = self.popen.pid
        if self.pty_master is not None:
            self.stdin_fd = self.pty_master
        elif self.popen.stdin is not None:
            self.stdin_fd = self.popen.stdin.fileno()
            os.set_blocking(self.stdin_fd, False)
        case._procs.append(self)

    def __repr__(self):
        return '<%s %s pid %d>' % (self.kind, self.label, self.pid)

    # --- output -----------------------------------------------------------

    def stdout_bytes(self):
        with open(self.stdout_path, 'rb') as f:
            return f.read()

    def stderr_bytes(self):
        with open(self.stderr_path, 'rb') as f:
            return f.read()

    def stdout_text(self):
        return decode(self.stdout_bytes())

    def stderr_text(self):
        return decode(self.stderr_bytes())

    @staticmethod
    def _split(data, final):
        parts = data.split(b'\n')
        last = parts.pop()  # after the last "\n": a partial line or b''
        if final and last:
            parts.append(last)
        return [decode(p) for p in parts]

    def lines(self, final=None):
        """Complete stdout lines, without "\\n". Once the process has exited
        the last partial line (no "\\n") is included too."""
        if final is None:
            final = self.popen.poll() is not None
        return self._split(self.stdout_bytes(), final)

    def stderr_lines(self, final=None):
        if final is None:
            final = self.popen.poll() is not None
        return self._split(self.stderr_bytes(), final)

    def describe(self):
        err = self.stderr_text()
        text = ('%r: %s\n  argv: %s\n  --- stdout (%s) ---\n%s\n'
                '  --- stderr (%s) ---\n%s' % (
                    self, describe_status(self.popen.poll()),
                    ' '.join(shlex.quote(a) for a in self.argv),
                    self.stdout_path, tail(self.stdout_text()),
                    self.stderr_path, tail(err)))
        # a wrapper's (valgrind's) report may be far from the end of stderr
        report = re.findall(r'^==\d+==.*$', err, re.M)
        if report and len(err) > 4000:
            text += '\n  --- wrapper report (first lines) ---\n' + '\n'.join(
                report[:80])
        return text

    def _find(self, pattern, start, stream):
        exited = self.popen.poll() is not None
        lines = (self.lines(final=exited) if stream == 'stdout'
                 else self.stderr_lines(final=exited))
        for i in range(start, len(lines)):
            if matches(pattern, lines[i]):
                return i, exited
        return None, exited

    def wait_for(self, pattern, timeout=10, start=0, stream='stdout'):
        """Polls stdout (or stderr) until a line at index >= start matches
        pattern (exact line, or compiled regex searched); returns its index.
        Fails at once if the process exits without printing it."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            i, exited = self._find(pattern, start, stream)
            if i is not None:
                return i
            if exited:
                self.case.fail('%r exited (%s) without printing %s on %s '
                               '(from line %d)\n%s' % (
                                   self, describe_status(self.popen.poll()),
                                   describe_pattern(pattern), stream, start,
                                   self.describe()))
            if time.monotonic() >= deadline:
                self.case.fail('timeout (%.1fs): %r did not print %s on %s '
                               '(from line %d)\n%s' % (
                                   scaled(timeout), self,
                                   describe_pattern(pattern), stream, start,
                                   self.describe()))
            time.sleep(POLL)

    def wait_line(self, pattern, timeout=10, start=0, stream='stdout'):
        """Like wait_for, but returns the matching line itself."""
        i = self.wait_for(pattern, timeout, start, stream)
        lines = self.lines() if stream == 'stdout' else self.stderr_lines()
        return lines[i]

    def wait_stderr(self, pattern, timeout=10, start=0):
        return self.wait_for(pattern, timeout, start, stream='stderr')

    def wait_lines(self, count, timeout=10):
        """Polls until stdout has at least count complete lines."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            if self.popen.poll() is not None or time.monotonic() >= deadline:
                self.case.fail('%r: expected at least %d lines\n%s' % (
                    self, count, self.describe()))
            time.sleep(POLL)

    # --- input ------------------------------------------------------------

    def _drain_pty(self):
        if self.pty_master is None:
            return
        try:
            while os.read(self.pty_master, 65536):
                pass
        except OSError:
            pass  # EAGAIN: nothing more; EIO: the slave side is gone

    def send_raw(self, data, timeout=10):
        """Writes bytes to stdin, never blocking forever."""
        if self.stdin_fd is None:
            self.case.fail('%r: stdin is not writable by the test' % self)
        view = memoryview(data)
        deadline = time.monotonic() + scaled(timeout)
        while view:
            self._drain_pty()
            if time.monotonic() >= deadline:
                self.case.fail('timeout: %r stopped reading its stdin '
                               '(%d bytes left)\n%s' % (
                                   self, len(view), self.describe()))
            _, ready, _ = select.select([], [self.stdin_fd], [], POLL * 5)
            if not ready:
                if self.popen.poll() is not None:
                    self.case.fail('%r exited before reading its input\n%s'
                                   % (self, self.describe()))
                continue
            try:
                n = os.write(self.stdin_fd, view[:65536])
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as e:
                if isinstance(e, BrokenPipeError) or e.errno in (
                        errno.EPIPE, errno.EIO):
                    self.case.fail('%r exited before reading its input (%s)'
                                   '\n%s' % (self, e, self.describe()))
                raise
            view = view[n:]
        self._drain_pty()

    def send(self, line, timeout=10):
        """Writes one input line (a "\\n" is added)."""
        if isinstance(line, str):
            line = line.encode('utf-8')
        self.send_raw(line + b'\n', timeout)

    def close_stdin(self):
        """End of input: closes the pipe, or types the EOF character (^D) on
        a terminal."""
        if self.pty_master is not None:
            try:
                os.write(self.pty_master, b'\x04')
            except OSError:
                pass
            return
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        self.stdin_fd = None

    # --- life -------------------------------------------------------------

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def _valgrind_check(self, rc):
        if self.wrapped and rc == VALGRIND_ERROR_STATUS and not self.reported:
            self.reported = True
            self.case.fail('%r: the wrapper (%s) reported errors (exit %d)'
                           '\n%s' % (self, ' '.join(WRAPPER), rc,
                                     self.describe()))

    def wait_exit(self, timeout=10):
        """Waits for the process to exit on its own; returns its status.
        Fails on timeout, or when the wrapper reports an error (status 99)."""
        try:
            rc = self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.case.fail('timeout (%.1fs): %r did not exit\n%s' % (
                scaled(timeout), self, self.describe()))
        self._valgrind_check(rc)
        return rc

    def send_signal(self, sig):
        if self.alive():
            self.signals_sent.add(sig)
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Sends sig (default SIGKILL) and waits for the process to go."""
        self.send_signal(sig)
        try:
            return self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.popen.wait(scaled(timeout))

    def final_problems(self):
        """Problems to report once the process is gone (called at cleanup)."""
        rc = self.popen.poll()
        problems = []
        if rc is None:
            problems.append('%r could not be stopped' % self)
        elif self.wrapped and rc == VALGRIND_ERROR_STATUS and not self.reported:
            self.reported = True
            problems.append('%r: the wrapper reported errors (exit %d)\n%s'
                            % (self, rc, self.describe()))
        elif rc < 0 and -rc not in self.signals_sent:
            problems.append('%r crashed: %s\n%s' % (
                self, describe_status(rc), self.describe()))
        return problems

    def cleanup(self):
        if self.alive():
            self.kill(signal.SIGKILL)
        else:
            self.popen.wait()
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        if self.pty_master is not None:
            try:
                os.close(self.pty_master)
            except OSError:
                pass
            self.pty_master = None


class Server(Process):
    kind = 'server'
    LISTENING = re.compile(r'listening on port (\d+)')

    def __init__(self, case, args, label='server'):
        super().__init__(case, [CHAT_SERVER] + list(args), label,
                         stdin=subprocess.DEVNULL)
        self.port = None

    def wait_listening(self, timeout=10):
        i = self.wait_stderr(self.LISTENING, timeout)
        self.port = int(self.LISTENING.search(self.stderr_lines()[i]).group(1))
        return self.port

    def log_lines(self):
        return self.stderr_lines()

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL if it has not gone after timeout."""
        if not self.alive():
            self.popen.wait()
            return self.popen.returncode
        self.send_signal(signal.SIGTERM)
        try:
            rc = self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            rc = self.kill(signal.SIGKILL)
        return rc


class Client(Process):
    kind = 'client'

    def __init__(self, case, port, name=None, host=None, stdin=subprocess.PIPE,
                 label=None, args=None):
        if args is None:
            args = ['-l', str(free_port()), '-p', str(port)]
            if host is not None:
                args += ['-s', host]
        super().__init__(case, [CHAT_CLIENT] + list(args),
                         label or 'client-%s' % (name or 'anon'), stdin=stdin)
        self.name = name
        self.port = port

    def register(self, name=None, timeout=10):
        """Sends the name, then waits for the welcome line and the whole menu
        after it. Returns the index of the welcome line."""
        if name is not None:
            self.name = name
        self.send(self.name)
        return self.wait_registered(timeout)

    def wait_registered(self, timeout=10):
        w = self.wait_for(welcome_re(self.name), timeout)
        self.wait_for(MENU[-1], timeout, start=w + 1)
        return w

    def message(self, text):
        """Chooses 'm' and types text as the message."""
        self.send('m')
        self.send(text)

    def exit(self, timeout=10):
        """Chooses 'x' and waits for a clean exit."""
        self.send('x')
        return self.wait_exit(timeout)

    def chat_lines(self, sender=None):
        """Received chat lines "<name>: <text>" (from sender, if given)."""
        out = []
        for line in self.lines():
            m = re.match(r'^([A-Za-z0-9_.-]{1,32}): (.*)$', line, re.S)
            if m and (sender is None or m.group(1) == sender):
                out.append(line)
        return out


class Bot(Process):
    kind = 'bot'

    def __init__(self, case, port, name=None, host=None):
        args = ['-p', str(port)]
        if host is not None:
            args += ['-s', host]
        if name is not None:
            args += ['-n', name]
        super().__init__(case, [CHAT_BOT] + args, 'bot-%s' % (name or 'timebot'))
        self.name = name or 'timebot'


class LineSocket:
    """A TCP connection read line by line ("\\n" ends a line; a "\\r" before
    it is kept, so tests can see it). Lines are str (see decode())."""

    def __init__(self, case, sock, label):
        self.case = case
        self.sock = sock
        self.label = label
        self.buf = b''
        self.received = []  # every complete line read so far
        self.eof = False
        self.closed = False
        case._sockets.append(self)

    def __repr__(self):
        return '<%s>' % self.label

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def send(self, line, end=b'\n'):
        if isinstance(line, str):
            line = line.encode('utf-8')
        self.send_raw(line + end)

    def _fill(self, timeout):
        """Reads what is there within timeout seconds; returns False on
        timeout."""
        if self.eof:
            return False
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        if not data:
            self.eof = True
            return True
        self.buf += data
        while b'\n' in self.buf:
            line, self.buf = self.buf.split(b'\n', 1)
            self.received.append(decode(line))
        return True

    def pump(self):
        """Reads everything already available, without waiting."""
        while self._fill(0) and not self.eof:
            pass
        return self.received

    def read_line(self, timeout=10):
        """The next line not yet returned by read_line/wait_for."""
        return self.received[self.wait_for(re.compile(''), timeout,
                                           start=self._next)]

    _next = 0

    def wait_for(self, pattern, timeout=10, start=None):
        """Reads until a line (index >= start, default: the first line not
        yet consumed) matches; returns its index and consumes up to it."""
        if start is None:
            start = self._next
        deadline = time.monotonic() + scaled(timeout)
        while True:
            for i in range(start, len(self.received)):
                if matches(pattern, self.received[i]):
                    self._next = max(self._next, i + 1)
                    return i
            start = max(start, len(self.received))
            if self.eof:
                self.case.fail('%r: connection closed before %s arrived; '
                               'lines: %r' % (self, describe_pattern(pattern),
                                              self.received[-20:]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.case.fail('timeout (%.1fs): %r did not receive %s; '
                               'lines: %r, partial: %r' % (
                                   scaled(timeout), self,
                                   describe_pattern(pattern),
                                   self.received[-20:], self.buf[-200:]))
            self._fill(min(remaining, 0.2))

    def wait_line(self, pattern, timeout=10, start=None):
        return self.received[self.wait_for(pattern, timeout, start)]

    def wait_eof(self, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.case.fail('timeout: %r was not closed by the peer' % self)
            self._fill(min(remaining, 0.2))

    def reset(self):
        """Closes with an RST instead of a FIN (SO_LINGER on, 0 seconds)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack('ii', 1, 0))
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class RawClient(LineSocket):
    """An nc-style client speaking the wire protocol directly."""

    def __init__(self, case, port, host='localhost', label='raw'):
        sock = socket.create_connection((host, port), timeout=scaled(10))
        sock.settimeout(None)
        super().__init__(case, sock, label)
        self.name = None

    def register(self, name, timeout=10):
        """Sends name; returns the server's one-line answer."""
        self.name = name
        self.send(name)
        return self.wait_line(re.compile(r'^(\* welcome |! )'), timeout)


class FakeServer:
    """A listening socket on 127.0.0.1 that the test drives by hand, to send
    a client lines that the real server would never forward."""

    def __init__(self, case):
        self.case = case
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        case._sockets.append(self)

    def accept(self, timeout=10):
        ready, _, _ = select.select([self.sock], [], [], scaled(timeout))
        if not ready:
            self.case.fail('timeout: no client connected to the fake server')
        conn, _ = self.sock.accept()
        return LineSocket(self.case, conn, 'fake-server-conn')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ChatTestCase(unittest.TestCase):
    """Base class: a temp dir per test, and cleanup of everything started."""

    def setUp(self):
        super().setUp()
        self.tmpdir = tempfile.mkdtemp(
            prefix='chat-e2e-%s-' % self._testMethodName[:40])
        self._seq = 0
        self._procs = []
        self._sockets = []
        self._holders = []
        self.addCleanup(self._cleanup)

    # --- starting things --------------------------------------------------

    def start_server(self, *args, max_line=None, timeout=10):
        """A running server on a free port (its .port is set)."""
        argv = []
        if max_line is not None:
            argv += ['--max-line', str(max_line)]
        argv += list(args) + ['0']
        server = Server(self, argv)
        server.wait_listening(timeout)
        return server

    def run_server(self, *args, label='server-run'):
        """A server process with exactly these arguments (not waited for)."""
        return Server(self, list(args), label=label)

    def start_client(self, port, name=None, register=True, **kw):
        """A client; with a name (and register=True) it is registered and
        its menu has been printed when this returns."""
        client = Client(self, port, name=name, **kw)
        if name is not None and register:
            client.register()
        return client

    def start_bot(self, port, name=None, **kw):
        return Bot(self, port, name=name, **kw)

    def raw_client(self, port, name=None, host='localhost'):
        """A raw socket client; registered (welcome read) when name is
        given."""
        raw = RawClient(self, port, host=host,
                        label='raw-%s' % (name or 'anon'))
        if name is not None:
            line = raw.register(name)
            self.assertRegex(line, welcome_re(name),
                             'raw client %s was not welcomed' % name)
        return raw

    def fake_server(self):
        return FakeServer(self)

    def unused_port(self):
        port, holder = unused_port()
        self._holders.append(holder)
        return port

    def make_file(self, name, data):
        path = os.path.join(self.tmpdir, name)
        with open(path, 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode('utf-8'))
        return path

    # --- checks -----------------------------------------------------------

    def barrier(self, sender, receivers, text='barrier'):
        """sender (a registered Client or RawClient) sends text; returns once
        every receiver has printed/received it. As the server handles each
        connection's lines in order and writes each socket in order, anything
        sent or forwarded before is then already visible."""
        text = '%s %d' % (text, self._seq)
        self._seq += 1
        if isinstance(sender, Client):
            sender.message(text)
        else:
            sender.send(text)
        expected = '%s: %s' % (sender.name, text)
        for r in receivers:
            r.wait_for(expected)
        return expected

    def assertNoLine(self, who, pattern, msg=None):
        lines = who.pump() if isinstance(who, LineSocket) else who.lines()
        bad = [line for line in lines if matches(pattern, line)]
        if bad:
            self.fail('%s: %r received %r, which it should not%s' % (
                msg or 'unexpected line', who, bad[:5],
                '' if isinstance(who, LineSocket) else '\n' + who.describe()))

    # --- cleanup ----------------------------------------------------------

    def _test_failed(self):
        """Whether this test already failed (its result is recorded as soon
        as the test method or tearDown raises)."""
        result = getattr(getattr(self, '_outcome', None), 'result', None)
        for attr in ('errors', 'failures', 'unexpectedSuccesses'):
            for entry in getattr(result, attr, None) or []:
                test = entry[0] if isinstance(entry, tuple) else entry
                if test is self:
                    return True
        return False

    def _cleanup(self):
        problems = []
        for s in self._sockets:
            s.close()
        for h in self._holders:
            h.close()
        servers = [p for p in self._procs if isinstance(p, Server)]
        others = [p for p in self._procs if not isinstance(p, Server)]
        for p in others:
            p.cleanup()
        for p in servers:
            p.stop()
            p.cleanup()
        for p in self._procs:
            problems += p.final_problems()
        failed = bool(problems) or self._test_failed()
        if failed:
            sys.stderr.write('\n==== %s: output of the processes ====\n'
                             % self.id())
            for p in self._procs:
                sys.stderr.write(p.describe() + '\n')
        if failed or KEEP:
            sys.stderr.write('temp dir kept: %s\n' % self.tmpdir)
        else:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            self.fail('\n'.join(problems))


def slow(test):
    """Marks a test that needs a long timeout (big files, floods, churn).

    It changes nothing at run time: test/e2e/meson.build reads the marker
    (the line '@harness.slow' right above the def) when it registers the
    tests, and gives these a longer meson timeout.
    """
    return test


def main():
    """Runs a test file: `python3 test_x.py` runs all of it, `python3
    test_x.py test_method` the one test of that name (as meson does, one
    meson test per method), anything else goes to unittest as usual."""
    module = sys.modules['__main__']
    for var, path in (('CHAT_SERVER', CHAT_SERVER),
                      ('CHAT_CLIENT', CHAT_CLIENT)):
        if not os.access(path, os.X_OK):
            sys.stderr.write('%s: %s is not an executable (set %s)\n'
                             % (sys.argv[0], path, var))
    if len(sys.argv) == 2 and sys.argv[1].startswith('test_'):
        name = sys.argv[1]
        for cls in vars(module).values():
            if (isinstance(cls, type) and issubclass(cls, unittest.TestCase)
                    and cls.__module__ == '__main__' and name in vars(cls)):
                sys.argv[1] = '%s.%s' % (cls.__name__, name)
                break
        else:
            sys.stderr.write('%s: no test named %s\n' % (sys.argv[0], name))
            sys.exit(2)
    unittest.main(module=module)


def memory_is_measurable(pid):
    """False when pid runs under valgrind or AddressSanitizer, whose own
    bookkeeping (ASan keeps freed memory in a quarantine of up to 256 MiB)
    swamps any bound on the program's resident memory."""
    if WRAPPER:
        return False
    try:
        with open('/proc/%d/maps' % pid, encoding='utf-8') as f:
            return 'libasan' not in f.read()
    except OSError:
        return True
