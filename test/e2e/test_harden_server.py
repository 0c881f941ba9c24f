#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the server: per-requester arrangements, canonical owner names, a neutralised log, the slow consumer's last line, errors never swallowed.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_server.py -v
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


if __name__ == '__main__':
    harness.main()
