#!/usr/bin/env python3
"""RabbitMQ tutorial 3 (publish/subscribe), producer."""
import sys

import shmq

connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.exchange_declare(exchange='logs', exchange_type='fanout')
message = ' '.join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange='logs', routing_key='', body=message)
print(f" [x] Sent {message}")
connection.close()
