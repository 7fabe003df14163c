#!/usr/bin/env python3
"""The seed's asynchronous-processing scenario, a worker:
`python notification_service.py email [COUNT]` or `... sms`. Interoperates
with the Rust `notification_service` example on the same queues."""
import sys
import time

import shmq

kind = sys.argv[1] if len(sys.argv) > 1 else 'email'
limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
channel = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
channel.exchange_declare(exchange='user.registered', exchange_type='fanout')
queue = f'{kind}_service'
channel.queue_declare(queue=queue)
channel.queue_bind(exchange='user.registered', queue=queue, routing_key='')
done = 0


def callback(ch, method, properties, body):
    global done
    time.sleep(0.05)
    print(f" [{kind}] sent welcome {kind} to {body.decode()}", flush=True)
    ch.basic_ack(delivery_tag=method.delivery_tag)
    done += 1
    if limit is not None and done >= limit:
        ch.stop_consuming()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue=queue, on_message_callback=callback)
print(f" [{kind}] waiting for registrations", flush=True)
channel.start_consuming()
