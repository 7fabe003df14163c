#!/usr/bin/env python3
"""The seed's asynchronous-processing scenario, web side: registering a user
publishes one event and returns; e-mail and SMS run in parallel elsewhere."""
import sys
import time

import shmq

channel = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
channel.exchange_declare(exchange='user.registered', exchange_type='fanout')
for user in sys.argv[1:] or ['alice@example.com']:
    started = time.perf_counter()
    channel.basic_publish(exchange='user.registered', routing_key='', body=user)
    print(f" [web] registered {user}; responded after {(time.perf_counter() - started) * 1e6:.0f} us")
