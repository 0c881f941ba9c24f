#!/usr/bin/env python3
"""End-to-end tests of chat-server, chat-client and chat-bot.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_chat.py -v
Run one:   ... python3 test/e2e/test_chat.py -v MessagingTest.test_join_notice_seen_by_others
Check that meson.build registers every test:
           python3 test/e2e/test_chat.py --check-meson test/e2e/meson.build
"""

import os
import re
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import (  # noqa: E402
    CHAT_CLIENT, CHAT_SERVER, FILE_PROMPT, GOODBYE, LOG_LINE, MENU,
    MESSAGE_PROMPT, NAME_PROMPT, OWNER_PROMPT, ChatTestCase, Client,
    scaled, welcome_re)

CHAT_LINE = re.compile(r'^[A-Za-z0-9_.-]{1,32}: ')


class MessagingTest(ChatTestCase):
    """Clients exchanging chat lines through the server."""

    def test_three_clients_receive_others_messages_in_order(self):
        server = self.start_server()
        clients = [self.start_client(server.port, n)
                   for n in ('alice', 'bob', 'carol')]
        sent = {c.name: [] for c in clients}
        for i in range(4):
            for c in clients:
                text = 'message %d from %s' % (i, c.name)
                c.message(text)
                sent[c.name].append('%s: %s' % (c.name, text))
        for receiver in clients:
            for sender in clients:
                if sender is receiver:
                    continue
                receiver.wait_for(sent[sender.name][-1])
        for receiver in clients:
            for sender in clients:
                if sender is receiver:
                    continue
                self.assertEqual(receiver.chat_lines(sender.name),
                                 sent[sender.name],
                                 '%s got %s\'s messages wrong' % (
                                     receiver.name, sender.name))

    def test_sender_never_receives_own_message(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.message('only for the others')
        bob.wait_for('alice: only for the others')
        # bob's line reaches alice after anything the server sent her about
        # her own message
        self.barrier(bob, [alice])
        self.assertNoLine(alice, re.compile(r'only for the others'))
        self.assertEqual(alice.chat_lines('alice'), [])

    def test_join_notice_seen_by_others(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.wait_for('* bob joined')
        carol = self.start_client(server.port, 'carol')
        alice.wait_for('* carol joined')
        bob.wait_for('* carol joined')
        self.assertNoLine(carol, '* carol joined',
                          'a client must not see its own join notice')

    def test_leave_notice_seen_when_client_exits(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        carol = self.start_client(server.port, 'carol')
        self.assertEqual(bob.exit(), 0)
        alice.wait_for('* bob left')
        carol.wait_for('* bob left')

    def test_welcome_counts_other_users(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.assertRegex(alice.wait_line(welcome_re('alice')),
                         r'^\* welcome alice, 0 other ')
        bob = self.start_client(server.port, 'bob')
        self.assertRegex(bob.wait_line(welcome_re('bob')),
                         r'^\* welcome bob, 1 other ')
        carol = self.start_client(server.port, 'carol')
        self.assertRegex(carol.wait_line(welcome_re('carol')),
                         r'^\* welcome carol, 2 other ')

    def test_client_joining_later_can_chat(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.message('before dave')
        bob.wait_for('alice: before dave')
        dave = self.start_client(server.port, 'dave')
        alice.wait_for('* dave joined')
        dave.message('hello, I am late')
        alice.wait_for('dave: hello, I am late')
        bob.wait_for('dave: hello, I am late')
        bob.message('welcome dave')
        dave.wait_for('bob: welcome dave')
        self.assertNoLine(dave, 'alice: before dave',
                          'history must not be replayed')

    def test_rapid_burst_of_200_messages_arrives_in_order(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        texts = ['burst message %03d %s' % (i, 'x' * (i % 50))
                 for i in range(200)]
        alice.send_raw(''.join('m\n%s\n' % t for t in texts).encode())
        expected = ['alice: ' + t for t in texts]
        bob.wait_for(expected[-1], timeout=20)
        self.assertEqual(bob.chat_lines('alice'), expected)

    def test_interleaved_bursts_to_150_clients_arrive_whole_and_in_order(self):
        # 150 recipients are more than the server writes per loop iteration
        # (64), so each fan-out spans several iterations and the next burst
        # is read while it is still going on: every line must still reach
        # every other client exactly once, in each sender's order.
        server = self.start_server('--max-per-ip', '0')
        clients = [self.raw_client(server.port, 'c%03d' % i)
                   for i in range(150)]
        senders = clients[:3]
        sent = {s: [] for s in range(len(senders))}
        for chunk in range(6):
            for s, sender in enumerate(senders):
                lines = ['s%d chunk %d line %d %s' % (s, chunk, i, 'y' * i)
                         for i in range(10)]
                sender.send_raw(''.join(l + '\n' for l in lines).encode())
                sent[s] += lines
        for c in clients:
            for s in range(len(senders)):
                if c is senders[s]:
                    continue
                c.wait_for('c%03d: %s' % (s, sent[s][-1]), timeout=20,
                           start=0)
        for c in clients:
            for s in range(len(senders)):
                prefix = 'c%03d: ' % s
                got = [l[len(prefix):] for l in c.received
                       if l.startswith(prefix)]
                self.assertEqual(got, [] if c is senders[s] else sent[s],
                                 '%r: lines of c%03d' % (c, s))

    def test_utf8_message_arrives_intact(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        text = 'h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \U0001f600'
        alice.message(text)
        bob.wait_for('alice: ' + text)

    def test_tab_in_message_is_forwarded(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.message('col1\tcol2')
        bob.wait_for('alice: col1\tcol2')

    def test_messages_reach_raw_and_program_clients_alike(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'rawbob')
        alice.wait_for('* rawbob joined')
        alice.message('to everyone')
        raw.wait_for('alice: to everyone')
        raw.send('back to you')
        alice.wait_for('rawbob: back to you')


class NameTest(ChatTestCase):
    """Who may join, under which name."""

    def assertRejected(self, server, name):
        client = self.start_client(server.port)
        client.send(name)
        rc = client.wait_exit()
        self.assertNotEqual(rc, 0, 'name %r was not rejected' % name)
        self.assertEqual(rc, 1, 'a rejected name must exit with status 1')
        self.assertTrue(client.stderr_text().strip(),
                        'no reason printed on stderr\n' + client.describe())
        self.assertNoLine(client, welcome_re(name))
        return client

    def test_duplicate_name_rejected_for_piped_client(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.assertRejected(server, 'alice')
        # the first alice is unharmed
        bob = self.start_client(server.port, 'bob')
        alice.wait_for('* bob joined')
        bob.message('still there?')
        alice.wait_for('bob: still there?')

    def test_duplicate_name_different_case_rejected(self):
        server = self.start_server()
        self.start_client(server.port, 'alice')
        self.assertRejected(server, 'ALICE')
        self.assertRejected(server, 'Alice')

    def test_name_with_space_rejected(self):
        server = self.start_server()
        self.assertRejected(server, 'bad name')

    def test_name_of_33_chars_rejected(self):
        server = self.start_server()
        self.assertRejected(server, 'a' * 33)

    def test_name_with_slash_rejected(self):
        server = self.start_server()
        self.assertRejected(server, 'a/b')

    def test_name_of_32_chars_with_all_allowed_kinds_accepted(self):
        server = self.start_server()
        name = 'Ab9_.-' + 'z' * 26
        self.assertEqual(len(name), 32)
        alice = self.start_client(server.port, 'alice')
        self.start_client(server.port, name)
        alice.wait_for('* %s joined' % name)

    def test_name_free_again_after_its_owner_left(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        self.assertEqual(alice.exit(), 0)
        bob.wait_for('* alice left')
        alice2 = self.start_client(server.port, 'Alice')
        bob.wait_for('* Alice joined')
        alice2.message('I am back')
        bob.wait_for('Alice: I am back')

    def test_raw_taken_name_then_retry_on_same_connection(self):
        server = self.start_server()
        self.raw_client(server.port, 'alice')
        raw = self.raw_client(server.port)
        self.assertRegex(raw.register('ALICE'), r'^! name-taken( |$)')
        self.assertRegex(raw.register('alice2'), welcome_re('alice2'))

    def test_raw_invalid_name_then_retry_on_same_connection(self):
        server = self.start_server()
        raw = self.raw_client(server.port)
        self.assertRegex(raw.register('bad name'), r'^! name-invalid( |$)')
        self.assertRegex(raw.register('a/b'), r'^! name-invalid( |$)')
        self.assertRegex(raw.register('x' * 33), r'^! name-invalid( |$)')
        self.assertRegex(raw.register('good'), welcome_re('good'))

    def test_tty_client_asks_name_again_after_rejection(self):
        server = self.start_server()
        self.start_client(server.port, 'alice')
        tty = self.start_client(server.port, stdin='pty')
        tty.wait_for(NAME_PROMPT)
        tty.send('alice')
        tty.wait_for(NAME_PROMPT, start=tty.wait_for(NAME_PROMPT) + 1)
        self.assertTrue(tty.alive(), 'a terminal user must get another try')
        both = tty.stdout_text() + tty.stderr_text()
        self.assertRegex(both, re.compile(r'taken|in use|already', re.I),
                         'the reason was not shown\n' + tty.describe())
        tty.name = 'alice2'
        tty.register()


class ClientMenuTest(ChatTestCase):
    """The client's text interface, driven through stdin."""

    def test_menu_text_exact_after_welcome(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        lines = alice.lines()
        w = alice.wait_for(welcome_re('alice'))
        self.assertEqual(lines[w + 1:w + 1 + len(MENU)], MENU,
                         alice.describe())

    def test_name_prompt_not_printed_when_stdin_is_pipe(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.assertEqual(alice.exit(), 0)
        self.assertNotIn(NAME_PROMPT, alice.stdout_text() +
                         alice.stderr_text())

    def test_name_prompt_printed_when_stdin_is_terminal(self):
        server = self.start_server()
        tty = self.start_client(server.port, stdin='pty')
        p = tty.wait_for(NAME_PROMPT)
        tty.name = 'alice'
        w = tty.register()
        self.assertLess(p, w)
        self.assertEqual(tty.exit(), 0)

    def test_message_prompt_printed_after_m(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        start = len(alice.lines())
        alice.send('m')
        alice.wait_for(MESSAGE_PROMPT, start=start)

    def test_menu_printed_again_after_sending_message(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        start = len(alice.lines())
        alice.message('hi bob')
        bob.wait_for('alice: hi bob')
        p = alice.wait_for(MESSAGE_PROMPT, start=start)
        m = alice.wait_for(MENU[0], start=p + 1)
        alice.wait_for(MENU[-1], start=m)

    def test_upper_case_M_sends_message(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.send('M')
        alice.send('sent with capital M')
        bob.wait_for('alice: sent with capital M')

    def test_upper_case_X_exits(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        alice.send('X')
        self.assertEqual(alice.wait_exit(), 0)
        self.assertEqual(alice.lines()[-1], GOODBYE)

    def test_upper_case_F_asks_for_file(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        start = len(alice.lines())
        alice.send('F')
        alice.wait_for(OWNER_PROMPT, start=start)

    def test_unknown_option_prints_unknown_option_and_menu(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        start = len(alice.lines())
        alice.send('z')
        u = alice.wait_for(re.compile(r'unknown option'), start=start)
        alice.wait_for(MENU[-1], start=u + 1)
        self.assertEqual(alice.lines()[u + 1:u + 1 + len(MENU)], MENU)
        self.assertTrue(alice.alive())
        # and it still works
        bob = self.start_client(server.port, 'bob')
        alice.message('after a typo')
        bob.wait_for('alice: after a typo')

    def test_x_exits_0_with_goodbye_last(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        alice.send('x')
        self.assertEqual(alice.wait_exit(), 0)
        self.assertEqual(alice.lines()[-1], GOODBYE, alice.describe())

    def test_eof_on_stdin_exits_0_with_goodbye(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        alice.close_stdin()
        self.assertEqual(alice.wait_exit(), 0)
        self.assertIn(GOODBYE, alice.lines(), alice.describe())

    def test_eof_on_stdin_leaves_chat(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        bob.close_stdin()
        self.assertEqual(bob.wait_exit(), 0)
        alice.wait_for('* bob left')

    def test_stdin_regular_file_message_delivered(self):
        server = self.start_server()
        bob = self.start_client(server.port, 'bob')
        path = self.make_file('alice.in', 'alice\nm\nhello from a file\nx\n')
        with open(path, 'rb') as stdin:
            alice = self.start_client(server.port, stdin=stdin)
            alice.name = 'alice'
            self.assertEqual(alice.wait_exit(), 0)
        bob.wait_for('alice: hello from a file')
        bob.wait_for('* alice left', start=bob.wait_for('* alice joined'))
        self.assertEqual(alice.lines()[-1], GOODBYE, alice.describe())

    def test_stdin_regular_file_without_exit_option_delivered(self):
        server = self.start_server()
        bob = self.start_client(server.port, 'bob')
        path = self.make_file('alice.in', 'alice\nm\nlast words\n')
        with open(path, 'rb') as stdin:
            alice = self.start_client(server.port, stdin=stdin)
            self.assertEqual(alice.wait_exit(), 0)
        bob.wait_for('alice: last words')
        bob.wait_for('* alice left')

    def test_all_input_written_before_welcome_is_kept(self):
        server = self.start_server()
        bob = self.start_client(server.port, 'bob')
        alice = self.start_client(server.port)
        alice.send_raw(b'alice\nm\none\nm\ntwo\nm\nthree\nx\n')
        self.assertEqual(alice.wait_exit(), 0)
        bob.wait_for('alice: three')
        self.assertEqual(bob.chat_lines('alice'),
                         ['alice: one', 'alice: two', 'alice: three'])

    def test_empty_stdin_exits_0_promptly(self):
        server = self.start_server()
        path = self.make_file('empty.in', b'')
        with open(path, 'rb') as stdin:
            client = self.start_client(server.port, stdin=stdin)
            self.assertEqual(client.wait_exit(timeout=5), 0, client.describe())

    def test_closed_pipe_before_name_exits_0_promptly(self):
        server = self.start_server()
        client = self.start_client(server.port)
        client.close_stdin()
        self.assertEqual(client.wait_exit(timeout=5), 0, client.describe())

    def test_file_option_asks_owner_and_file_then_menu_at_once(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        start = len(alice.lines())
        alice.send('f')
        o = alice.wait_for(OWNER_PROMPT, start=start)
        alice.send('bob')
        f = alice.wait_for(FILE_PROMPT, start=o + 1)
        alice.send('notes.txt')
        # The menu comes back before the outcome of the request is known.
        alice.wait_for(MENU[-1], start=f + 1)
        self.assertEqual(alice.lines()[f + 1:f + 1 + len(MENU)], MENU)
        alice.wait_for(re.compile(
            r'^file transfer of notes\.txt from bob failed: no such user$'),
            start=f + 1)
        self.assertEqual(alice.exit(), 0)

    def test_overlong_message_does_not_crash_client(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.message('L' * 100000)
        alice.message('short after long')
        bob.wait_for('alice: short after long', timeout=20)
        self.assertNoLine(bob, re.compile('L' * 8193))
        self.assertTrue(alice.alive(), alice.describe())
        self.assertEqual(alice.exit(), 0)

    def test_control_characters_typed_not_delivered(self):
        # the spec leaves open whether the client refuses such a message
        # itself or lets the server answer "! bad-text": either way nobody
        # receives it and the client carries on
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        alice.message('bell \x07 here')
        self.barrier(alice, [bob])
        self.assertNoLine(bob, re.compile(r'bell'))
        self.assertEqual(alice.exit(), 0)


class SanitiseTest(ChatTestCase):
    """The client makes text from others safe to print. The real server never
    forwards such text, so a fake server sends it."""

    def connect(self):
        fake = self.fake_server()
        client = self.start_client(fake.port, host='127.0.0.1')
        conn = fake.accept()
        client.send('alice')
        conn.wait_for(re.compile(r'^alice\r?$'))
        conn.send('* welcome alice, 1 other user(s) online')
        client.name = 'alice'
        client.wait_registered()
        return client, conn

    def check(self, wire, shown):
        client, conn = self.connect()
        conn.send_raw(b'evil: ' + wire + b'\n')
        conn.send('evil: end marker')
        client.wait_for('evil: end marker')
        self.assertIn('evil: ' + shown, client.lines(), client.describe())

    def test_escape_shown_in_caret_notation(self):
        self.check(b'hi \x1b[2J there', 'hi ^[[2J there')

    def test_other_c0_controls_shown_in_caret_notation(self):
        self.check(b'a\x07b\x08c\x7fd', 'a^Gb^Hc^?d')

    def test_invalid_utf8_shown_as_hex_escape(self):
        self.check(b'bad \xff byte', 'bad \\xff byte')

    def test_c1_control_shown_as_unicode_escape(self):
        self.check(b'csi \xc2\x9b31m red', 'csi \\u009b31m red')

    def test_valid_utf8_and_tab_shown_unchanged(self):
        self.check('caf\u00e9\t\u2713'.encode(), 'caf\u00e9\t\u2713')

    def test_error_from_server_printed(self):
        client, conn = self.connect()
        conn.send('! bad-text your message was refused')
        client.wait_for('! bad-text your message was refused')


class RawProtocolTest(ChatTestCase):
    """The wire protocol, spoken nc-style over a plain socket."""

    def test_raw_client_registers_and_gets_welcome(self):
        server = self.start_server()
        raw = self.raw_client(server.port)
        self.assertRegex(raw.register('rawuser'), welcome_re('rawuser'))

    def test_raw_client_receives_chat_line(self):
        server = self.start_server()
        raw = self.raw_client(server.port, 'rawuser')
        alice = self.start_client(server.port, 'alice')
        raw.wait_for('* alice joined')
        alice.message('hello raw')
        self.assertEqual(raw.wait_line(re.compile(r'^alice: ')),
                         'alice: hello raw')

    def test_raw_message_reaches_client_formatted(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'rawuser')
        raw.send('hello from the socket')
        alice.wait_for('rawuser: hello from the socket')

    def test_crlf_line_arrives_without_cr(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port)
        raw.name = 'crlf'
        raw.send('crlf', end=b'\r\n')
        self.assertRegex(raw.wait_line(re.compile(r'^(\* welcome |! )')),
                         welcome_re('crlf'))
        raw.send('windows line', end=b'\r\n')
        alice.wait_for('crlf: windows line')
        self.assertEqual(other.wait_line(re.compile(r'^crlf: ')),
                         'crlf: windows line')

    def test_escape_sequence_refused_with_bad_text_and_not_forwarded(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port, 'evil')
        raw.send_raw(b'hi \x1b[2J there\n')
        self.assertRegex(raw.wait_line(re.compile(r'^!')), r'^! bad-text( |$)')
        self.barrier(raw, [alice, other])
        self.assertNoLine(alice, re.compile(r'there'))
        self.assertNoLine(other, re.compile(r'there'))

    def test_invalid_utf8_refused_with_bad_text(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'evil')
        raw.send_raw(b'caf\xe9 latin-1\n')
        self.assertRegex(raw.wait_line(re.compile(r'^!')), r'^! bad-text( |$)')
        self.barrier(raw, [alice])
        self.assertNoLine(alice, re.compile(r'latin-1'))

    def test_c1_control_refused_with_bad_text(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'evil')
        raw.send_raw(b'csi \xc2\x9b2J\n')
        self.assertRegex(raw.wait_line(re.compile(r'^!')), r'^! bad-text( |$)')
        self.barrier(raw, [alice])
        self.assertNoLine(alice, re.compile(r'csi'))

    def test_100kb_line_gets_line_too_long_then_can_chat(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'big')
        raw.send(b'B' * 100000)
        self.assertRegex(raw.wait_line(re.compile(r'^!')),
                         r'^! line-too-long( |$)')
        raw.send('small again')
        alice.wait_for('big: small again')
        self.assertNoLine(alice, re.compile(r'BBBB'))

    def test_max_line_option_sets_limit(self):
        server = self.start_server(max_line=64)
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'raw')
        raw.send('y' * 200)
        self.assertRegex(raw.wait_line(re.compile(r'^!')),
                         r'^! line-too-long( |$)')
        raw.send('z' * 40)
        alice.wait_for('raw: ' + 'z' * 40)
        self.assertNoLine(alice, re.compile('yyyy'))

    def test_empty_lines_ignored(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port, 'raw')
        raw.send_raw(b'\n\r\n\n')
        raw.send('after empties')
        self.assertEqual(other.wait_line(re.compile(r'^raw: ')),
                         'raw: after empties')
        alice.wait_for('raw: after empties')
        self.assertNoLine(alice, 'raw: ')
        self.assertNoLine(raw, re.compile(r'^!'),
                          'empty lines must be ignored silently')

    def test_unknown_control_command_gets_unknown_command(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'raw')
        raw.send_raw(b'\x01FROBNICATE now\n')
        self.assertRegex(raw.wait_line(re.compile(r'^!')),
                         r'^! unknown-command( |$)')
        self.barrier(raw, [alice])
        self.assertNoLine(alice, re.compile(r'FROBNICATE'))

    def test_line_split_across_writes_reassembled(self):
        server = self.start_server()
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port, 'raw')
        raw.send_raw(b'hel')
        time.sleep(0.05)
        raw.send_raw(b'lo wo')
        time.sleep(0.05)
        raw.send_raw(b'rld\n')
        self.assertEqual(other.wait_line(re.compile(r'^raw: ')),
                         'raw: hello world')

    def test_utf8_char_split_across_writes_accepted(self):
        server = self.start_server()
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port, 'raw')
        data = 'snow \u2603 man\n'.encode()
        cut = data.index(b'\xe2') + 1
        raw.send_raw(data[:cut])
        time.sleep(0.05)
        raw.send_raw(data[cut:])
        self.assertEqual(other.wait_line(re.compile(r'^raw: ')),
                         'raw: snow \u2603 man')

    def test_many_lines_in_one_write_all_forwarded_in_order(self):
        server = self.start_server()
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port, 'raw')
        texts = ['line %d' % i for i in range(100)]
        raw.send_raw(''.join(t + '\n' for t in texts).encode())
        other.wait_for('raw: line 99')
        self.assertEqual([l for l in other.received if l.startswith('raw: ')],
                         ['raw: ' + t for t in texts])

    def test_name_and_message_in_one_write(self):
        server = self.start_server()
        other = self.raw_client(server.port, 'other')
        raw = self.raw_client(server.port)
        raw.send_raw(b'quick\nfirst words\n')
        raw.wait_for(welcome_re('quick'))
        other.wait_for('quick: first words')

    def test_reset_mid_line_others_see_left_and_server_keeps_serving(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        raw = self.raw_client(server.port, 'rst')
        alice.wait_for('* rst joined')
        raw.send_raw(b'partial mess')
        time.sleep(0.05)
        raw.reset()
        alice.wait_for('* rst left')
        self.assertTrue(server.alive(), server.describe())
        bob = self.raw_client(server.port, 'bob')
        bob.send('still serving')
        alice.wait_for('bob: still serving')
        alice.message('yes')
        bob.wait_for('alice: yes')
        self.assertNoLine(alice, re.compile(r'partial'))

    def test_disconnect_before_name_is_harmless(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        nameless = self.raw_client(server.port)
        nameless.send_raw(b'half a na')
        nameless.reset()
        quiet = self.raw_client(server.port)
        quiet.close()
        bob = self.raw_client(server.port, 'bob')
        bob.send('hi')
        alice.wait_for('bob: hi')
        self.assertNoLine(alice, re.compile(r'left|half'))


class ResilienceTest(ChatTestCase):
    """Clients or the server going away abruptly."""

    def test_sigkill_client_others_see_left_and_keep_chatting(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        carol = self.start_client(server.port, 'carol')
        carol.kill()
        alice.wait_for('* carol left')
        bob.wait_for('* carol left')
        alice.message('carol is gone')
        bob.wait_for('alice: carol is gone')
        bob.message('indeed')
        alice.wait_for('bob: indeed')

    def test_client_exits_1_when_server_killed(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        server.kill()
        self.assertEqual(alice.wait_exit(), 1, alice.describe())
        self.assertRegex(alice.stderr_text(), r'server closed the connection')

    def test_client_exits_1_when_server_stopped_with_sigterm(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        server.stop()
        self.assertEqual(alice.wait_exit(), 1, alice.describe())
        self.assertRegex(alice.stderr_text(), r'server closed the connection')

    def test_many_clients_come_and_go(self):
        server = self.start_server()
        watcher = self.raw_client(server.port, 'watcher')
        for i in range(10):
            raw = self.raw_client(server.port, 'guest%d' % i)
            raw.send('hi %d' % i)
            if i % 2:
                raw.reset()
            else:
                raw.close()
            watcher.wait_for('guest%d: hi %d' % (i, i))
            watcher.wait_for('* guest%d left' % i)
        alice = self.start_client(server.port, 'alice')
        self.assertRegex(alice.wait_line(welcome_re('alice')),
                         r'^\* welcome alice, 1 other ')


    def test_simultaneous_disconnects_leave_server_serving(self):
        # many clients going at once: the "left" notices for one are sent to
        # others that are themselves closing
        server = self.start_server()
        watcher = self.start_client(server.port, 'watcher')
        for round_ in range(3):
            raws = [self.raw_client(server.port, 'r%d_%d' % (round_, i))
                    for i in range(12)]
            watcher.wait_for('* r%d_11 joined' % round_)
            for i, raw in enumerate(raws):
                raw.send_raw(b'unfinished')
                if i % 2:
                    raw.reset()
                else:
                    raw.close()
            for i in range(12):
                watcher.wait_for('* r%d_%d left' % (round_, i))
            self.assertTrue(server.alive(), server.describe())
        probe = self.raw_client(server.port, 'probe')
        probe.send('still here')
        watcher.wait_for('probe: still here')


class ServerCliTest(ChatTestCase):
    """chat-server's command line."""

    def assertUsageError(self, *args):
        proc = self.run_server(*args)
        self.assertEqual(proc.wait_exit(), 2, proc.describe())
        err = [l for l in proc.stderr_lines() if l.strip()]
        self.assertEqual(len(err), 1, 'expected one line on stderr\n' +
                         proc.describe())

    def test_server_port_not_a_number_exits_2(self):
        self.assertUsageError('abc')

    def test_server_port_out_of_range_exits_2(self):
        self.assertUsageError('70000')

    def test_server_missing_port_exits_2(self):
        self.assertUsageError()

    def test_server_busy_port_exits_1(self):
        first = self.start_server()
        second = self.run_server(str(first.port), label='server-second')
        self.assertEqual(second.wait_exit(), 1, second.describe())
        err = [l for l in second.stderr_lines() if l.strip()]
        self.assertEqual(len(err), 1, 'expected one line on stderr\n' +
                         second.describe())
        self.assertTrue(first.alive())

    def test_server_help_exits_0_with_usage_on_stdout(self):
        proc = self.run_server('--help')
        self.assertEqual(proc.wait_exit(), 0, proc.describe())
        self.assertRegex(proc.stdout_text(), re.compile(r'usage', re.I))

    def test_server_version_exits_0_with_version(self):
        proc = self.run_server('--version')
        self.assertEqual(proc.wait_exit(), 0, proc.describe())
        self.assertRegex(proc.stdout_text(), r'\d+\.\d+\.\d+')

    def test_server_logs_connects_and_names_with_timestamps(self):
        server = self.start_server()
        self.start_client(server.port, 'alice')
        server.wait_stderr(re.compile(r'\balice\b'))
        log = [l for l in server.log_lines() if l.strip()]
        for line in log:
            m = LOG_LINE.match(line)
            self.assertIsNotNone(m, 'log line without timestamp: %r' % line)
            self.assertEqual(int(m.group(2)), server.pid, line)
        self.assertTrue(any(re.search(r'connect|accept', l, re.I)
                            for l in log),
                        'no connection logged\n' + server.describe())

    def test_server_logs_listening_port_with_timestamp(self):
        server = self.start_server()
        line = server.wait_line(re.compile(r'listening on port %d\b'
                                           % server.port), stream='stderr')
        self.assertRegex(line, LOG_LINE)

    def test_two_servers_run_side_by_side(self):
        one = self.start_server()
        two = self.start_server()
        self.assertNotEqual(one.port, two.port)
        a = self.raw_client(one.port, 'a')
        b = self.raw_client(two.port, 'b')
        a2 = self.raw_client(one.port, 'a2')
        b.send('only on two')
        a2.send('only on one')
        a.wait_for('a2: only on one')
        self.assertNoLine(a, re.compile(r'only on two'))


class ClientCliTest(ChatTestCase):
    """chat-client's command line and connection errors."""

    def test_unreachable_server_exits_1_with_one_stderr_line(self):
        port = self.unused_port()
        client = Client(self, port, host='127.0.0.1', label='client-nowhere')
        rc = client.wait_exit()
        self.assertEqual(rc, 1, client.describe())
        err = [l for l in client.stderr_lines() if l.strip()]
        self.assertEqual(len(err), 1, 'expected one line on stderr\n' +
                         client.describe())

    def test_unreachable_default_host_exits_1(self):
        port = self.unused_port()
        client = Client(self, port, label='client-nowhere')
        self.assertEqual(client.wait_exit(), 1, client.describe())

    def test_client_missing_server_port_exits_2(self):
        client = Client(self, None, args=['-l', '5000'])
        self.assertEqual(client.wait_exit(), 2, client.describe())

    def test_client_bad_server_port_exits_2(self):
        client = Client(self, None, args=['-l', '5000', '-p', 'abc'])
        self.assertEqual(client.wait_exit(), 2, client.describe())

    def test_client_out_of_range_server_port_exits_2(self):
        client = Client(self, None, args=['-l', '5000', '-p', '70000'])
        self.assertEqual(client.wait_exit(), 2, client.describe())


class BotTest(ChatTestCase):
    """The example bot, built on libchat."""

    def test_bot_answers_time_with_timebot_line(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.start_bot(server.port)
        alice.wait_for('* timebot joined')
        alice.message('!time')
        line = alice.wait_line(re.compile(r'^timebot: '))
        self.assertRegex(line, r'^timebot: .*\d{1,2}:\d\d')

    def test_bot_answers_ping_with_pong(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.start_bot(server.port)
        alice.wait_for('* timebot joined')
        alice.message('!ping')
        alice.wait_for('timebot: pong')

    def test_bot_with_custom_name(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        self.start_bot(server.port, name='clock')
        alice.wait_for('* clock joined')
        alice.message('!ping')
        alice.wait_for('clock: pong')

    def test_bot_ignores_ordinary_messages(self):
        server = self.start_server()
        alice = self.start_client(server.port, 'alice')
        bob = self.start_client(server.port, 'bob')
        self.start_bot(server.port)
        alice.wait_for('* timebot joined')
        alice.message('what time is it?')
        bob.wait_for('alice: what time is it?')
        alice.message('!ping')
        alice.wait_for('timebot: pong')
        self.assertEqual(alice.chat_lines('timebot'), ['timebot: pong'])


if __name__ == '__main__':
    harness.main()
