#!/usr/bin/env python3
"""RabbitMQ tutorial 6 (RPC), client: `python rpc_client.py [n]`."""
import sys
import uuid

import shmq


class FibonacciRpcClient:
    def __init__(self):
        self.connection = shmq.BlockingConnection(shmq.ConnectionParameters())
        self.channel = self.connection.channel()
        self.channel.queue_declare(queue='rpc_queue')
        result = self.channel.queue_declare(queue='', exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True)
        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body
            ch.stop_consuming()

    def call(self, n):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(exchange='', routing_key='rpc_queue',
                                   properties=shmq.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id),
                                   body=str(n))
        self.channel.start_consuming()
        return int(self.response)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
client = FibonacciRpcClient()
print(f" [x] Requesting fib({n})")
print(f" [.] Got {client.call(n)}")
