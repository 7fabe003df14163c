#!/usr/bin/env python3
"""RabbitMQ tutorial 1, producer: the seed's code with the import and the
connection line changed (`pika` -> `shmq`, host -> namespace)."""
import shmq

connection = shmq.BlockingConnection(shmq.ConnectionParameters())  # $SHMQ_NAMESPACE, else 'default'
channel = connection.channel()
channel.queue_declare(queue='hello')
channel.basic_publish(exchange='', routing_key='hello', body='Hello World!')
print(" [x] Sent 'Hello World!'")
connection.close()
