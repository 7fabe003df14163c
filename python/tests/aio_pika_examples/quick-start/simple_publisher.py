import asyncio

import shmq.aio as aio_pika  # shmq: changed


async def main() -> None:
    connection = await aio_pika.connect_robust(
        None,  # shmq: changed
    )

    async with connection:
        routing_key = "test_queue"

        channel = await connection.channel()

        await channel.default_exchange.publish(
            aio_pika.Message(body=f"Hello {routing_key}".encode()),
            routing_key=routing_key,
        )


if __name__ == "__main__":
    asyncio.run(main())
