import asyncio

from shmq.aio import connect  # shmq: changed
from shmq.aio.abc import AbstractIncomingMessage  # shmq: changed


# docs: begin-on-message
async def on_message(message: AbstractIncomingMessage) -> None:
    async with message.process():
        print(f" [x] Received message {message!r}")
        await asyncio.sleep(message.body.count(b'.'))
        print(f"     Message body is: {message.body!r}")
# docs: end-on-message


async def main() -> None:
    # Perform connection
    connection = await connect()  # shmq: changed

    # docs: begin-qos-setup
    async with connection:
        # Creating a channel
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        # docs: end-qos-setup

        # docs: begin-durable-queue
        # Declaring queue
        queue = await channel.declare_queue(
            "task_queue",
            durable=True,
        )
        # docs: end-durable-queue

        # Start listening the queue with name 'task_queue'
        await queue.consume(on_message)

        print(" [*] Waiting for messages. To exit press CTRL+C")
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
