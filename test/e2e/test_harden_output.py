#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the requester's terminal: every foreign byte neutralised, deceptive names refused, long names saved, names trimmed, refused names explained.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_output.py -v
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


if __name__ == '__main__':
    harness.main()
