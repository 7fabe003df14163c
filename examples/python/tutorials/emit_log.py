#!/usr/bin/env python
import sys

import shmq as pika  # shmq: changed

connection = pika.BlockingConnection(
    pika.ConnectionParameters(),  # shmq: changed
)
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

message = " ".join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange="logs", routing_key="", body=message)
print(f" [x] Sent {message}")

connection.close()
