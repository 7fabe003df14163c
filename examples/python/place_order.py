#!/usr/bin/env python3
"""The seed's decoupling scenario, order side: orders queue up while the
inventory service is down."""
import sys

import shmq

channel = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
channel.queue_declare(queue='orders')
for i in range(1, int(sys.argv[1]) + 1 if len(sys.argv) > 1 else 4):
    order = f"order-{i}: 1 x widget"
    channel.basic_publish(exchange='', routing_key='orders', body=order, mandatory=True,
                          properties=shmq.BasicProperties(delivery_mode=2))
    print(f" [orders] placed {order}")
