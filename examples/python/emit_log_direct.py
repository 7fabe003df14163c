#!/usr/bin/env python3
"""RabbitMQ tutorial 4 (routing), producer: `python emit_log_direct.py error "Run. Run."`"""
import sys

import shmq

connection = shmq.BlockingConnection(shmq.ConnectionParameters())
channel = connection.channel()
channel.exchange_declare(exchange='direct_logs', exchange_type='direct')
severity = sys.argv[1] if len(sys.argv) > 1 else 'info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
channel.basic_publish(exchange='direct_logs', routing_key=severity, body=message)
print(f" [x] Sent {severity}:{message}")
connection.close()
