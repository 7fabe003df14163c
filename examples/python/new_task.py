#!/usr/bin/env python3
"""RabbitMQ tutorial 2, producer: `python new_task.py First message....`"""
import sys

import shmq

connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.queue_declare(queue='task_queue', durable=True)
message = ' '.join(sys.argv[1:]) or "Hello World!"
channel.basic_publish(exchange='', routing_key='task_queue', body=message,
                      properties=shmq.BasicProperties(delivery_mode=2))
print(f" [x] Sent {message}")
connection.close()
