#!/usr/bin/env python3
"""End-to-end regression tests of transfer hardening (issue 10): the owner's file port: unauthenticated connections under their own budget, quickly lapsing offers bounded per requester, half-closing requesters, the file-port warning.

Run all:   CHAT_SERVER=build/src/chat-server CHAT_CLIENT=build/src/chat-client \
           CHAT_BOT=build/examples/chat-bot python3 test/e2e/test_harden_owner.py -v
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


if __name__ == '__main__':
    harness.main()
