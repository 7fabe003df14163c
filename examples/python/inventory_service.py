#!/usr/bin/env python3
"""The seed's decoupling scenario, inventory side, started later."""
import sys

import shmq

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
channel = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
channel.queue_declare(queue='orders')
done = 0


def callback(ch, method, properties, body):
    global done
    print(f" [inventory] reserved stock for {body.decode()}", flush=True)
    ch.basic_ack(delivery_tag=method.delivery_tag)
    done += 1
    if limit is not None and done >= limit:
        ch.stop_consuming()


channel.basic_consume(queue='orders', on_message_callback=callback)
channel.start_consuming()
