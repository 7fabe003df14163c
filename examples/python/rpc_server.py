#!/usr/bin/env python3
"""RabbitMQ tutorial 6 (RPC), server: `python rpc_server.py [COUNT]`."""
import sys

import shmq

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.queue_declare(queue='rpc_queue')


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


served = 0


def on_request(ch, method, props, body):
    global served
    n = int(body)
    print(f" [.] fib({n})", flush=True)
    ch.basic_publish(exchange='', routing_key=props.reply_to,
                     properties=shmq.BasicProperties(correlation_id=props.correlation_id), body=str(fib(n)))
    ch.basic_ack(delivery_tag=method.delivery_tag)
    served += 1
    if limit is not None and served >= limit:
        ch.stop_consuming()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue='rpc_queue', on_message_callback=on_request)
print(" [x] Awaiting RPC requests", flush=True)
channel.start_consuming()
