#!/usr/bin/env python3
"""RabbitMQ tutorial 1, consumer: `python receive.py [COUNT]`."""
import sys

import shmq

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.queue_declare(queue='hello')
received = 0


def callback(ch, method, properties, body):
    global received
    print(f" [x] Received {body.decode()}", flush=True)
    received += 1
    if limit is not None and received >= limit:
        ch.stop_consuming()


channel.basic_consume(queue='hello', on_message_callback=callback, auto_ack=True)
print(' [*] Waiting for messages. To exit press CTRL+C', flush=True)
channel.start_consuming()
