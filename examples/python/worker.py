#!/usr/bin/env python3
"""RabbitMQ tutorial 2, worker: `python worker.py [COUNT]` (prefetch 1, manual acks)."""
import sys
import time

import shmq

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.queue_declare(queue='task_queue', durable=True)
done = 0


def callback(ch, method, properties, body):
    global done
    print(f" [x] Received {body.decode()}", flush=True)
    time.sleep(body.count(b'.') * 0.1)
    print(" [x] Done", flush=True)
    ch.basic_ack(delivery_tag=method.delivery_tag)
    done += 1
    if limit is not None and done >= limit:
        ch.stop_consuming()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue='task_queue', on_message_callback=callback)
print(' [*] Waiting for messages. To exit press CTRL+C', flush=True)
channel.start_consuming()
