#!/usr/bin/env python3
"""The web side: `python register_user.py USER... [--wait]` registers each
user, queues the e-mail and the SMS, and responds at once. With --wait it
then collects what the workers did."""
import sys
import time

from tasks import send_welcome_email, send_welcome_sms

users = [arg for arg in sys.argv[1:] if arg != "--wait"] or ["alice@example.com"]
queued = []
for user in users:
    started = time.perf_counter()
    queued += [send_welcome_email.delay(user), send_welcome_sms.delay(user)]
    print(f" [web] registered {user}; responded after {(time.perf_counter() - started) * 1e3:.1f} ms", flush=True)
if "--wait" in sys.argv:
    for result in queued:
        print(f" [web] {result.get(timeout=30)}", flush=True)
