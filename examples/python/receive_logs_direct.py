#!/usr/bin/env python3
"""RabbitMQ tutorial 4 (routing), consumer: `python receive_logs_direct.py [--count N] info warning error`."""
import sys

import shmq

args = sys.argv[1:]
limit = None
if args[:1] == ['--count']:
    limit, args = int(args[1]), args[2:]
if not args:
    sys.stderr.write(f"Usage: {sys.argv[0]} [--count N] [info] [warning] [error]\n")
    sys.exit(1)
connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.exchange_declare(exchange='direct_logs', exchange_type='direct')
queue_name = channel.queue_declare(queue='', exclusive=True).method.queue
for severity in args:
    channel.queue_bind(exchange='direct_logs', queue=queue_name, routing_key=severity)
print(' [*] Waiting for logs. To exit press CTRL+C', flush=True)
seen = 0


def callback(ch, method, properties, body):
    global seen
    print(f" [x] {method.routing_key}:{body.decode()}", flush=True)
    seen += 1
    if limit is not None and seen >= limit:
        ch.stop_consuming()


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)
channel.start_consuming()
