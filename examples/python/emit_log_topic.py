#!/usr/bin/env python3
"""RabbitMQ tutorial 5 (topics), producer: `python emit_log_topic.py kern.critical "A critical kernel error"`"""
import sys

import shmq

connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.exchange_declare(exchange='topic_logs', exchange_type='topic')
severity = sys.argv[1] if len(sys.argv) > 1 else 'anonymous.info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
channel.basic_publish(exchange='topic_logs', routing_key=severity, body=message)
print(f" [x] Sent {severity}:{message}")
connection.close()
