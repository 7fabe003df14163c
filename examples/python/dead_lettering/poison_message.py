#!/usr/bin/env python3
"""A poison message and a delivery limit: a message that makes every worker
fail is requeued until it was delivered more often than the quorum queue's
x-delivery-limit, then dead-lettered to a parking queue (reason
delivery_limit), while the good messages go through.

    python3 poison_message.py submit order-1 poison order-2
    python3 poison_message.py work 2     # stops after 2 good orders
    python3 poison_message.py parked     # what was parked, and why

Plain pika code: the two lines marked as changed for shmq are all that differ
from the same program for RabbitMQ (python/tests/test_dead_letter_examples.py
runs it against both and compares the output)."""
import sys

import shmq as pika  # shmq: changed

connection = pika.BlockingConnection(pika.ConnectionParameters())  # shmq: changed
channel = connection.channel()
channel.queue_declare(queue="orders.parked", durable=True)
channel.queue_declare(queue="orders", durable=True, arguments={
    "x-queue-type": "quorum", "x-delivery-limit": 2,
    "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "orders.parked"})

if sys.argv[1] == "submit":
    for order in sys.argv[2:]:
        channel.basic_publish(exchange="", routing_key="orders", body=order)
        print(f" [x] submitted {order}")
elif sys.argv[1] == "parked":
    while True:
        method, properties, body = channel.basic_get(queue="orders.parked", auto_ack=True)
        if method is None:
            break
        print(f" [x] parked {body.decode()} ({properties.headers['x-first-death-reason']})")
else:
    processed = 0
    wanted = int(sys.argv[2])

    def callback(ch, method, properties, body):
        global processed
        order = body.decode()
        if order == "poison":
            earlier = (properties.headers or {}).get("x-delivery-count", 0)
            print(f" [!] {order}: delivery {earlier + 1} failed", flush=True)
            ch.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
        else:
            print(f" [x] {order}: processed", flush=True)
            ch.basic_ack(delivery_tag=method.delivery_tag)
            processed += 1
            if processed == wanted:
                ch.stop_consuming()

    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue="orders", on_message_callback=callback)
    channel.start_consuming()
connection.close()
