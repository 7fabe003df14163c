#!/usr/bin/env python3
"""RabbitMQ tutorial 3 (publish/subscribe), consumer: `python receive_logs.py [COUNT]`."""
import sys

import shmq

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.exchange_declare(exchange='logs', exchange_type='fanout')
result = channel.queue_declare(queue='', exclusive=True)
queue_name = result.method.queue
channel.queue_bind(exchange='logs', queue=queue_name)
print(' [*] Waiting for logs. To exit press CTRL+C', flush=True)
seen = 0


def callback(ch, method, properties, body):
    global seen
    print(f" [x] {body.decode()}", flush=True)
    seen += 1
    if limit is not None and seen >= limit:
        ch.stop_consuming()


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)
channel.start_consuming()
