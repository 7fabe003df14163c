"""aio-pika's own examples on shmq.aio, differentially.

python/tests/aio_pika_examples/ holds aio-pika's quick-start examples (those
docs/source/quick-start.md shows: a publisher, an iterator consumer, a
callback consumer, a get example) and its RabbitMQ tutorials 1 and 2, as
mosquito/aio-pika has them at commit 0a9f24c9349f9158a959bf1e64d2c909350727d7,
verbatim but for the lines marked `# shmq: changed`: the import (`aio_pika`
-> `shmq.aio`) and the connection URL (dropped: `connect()` with no URL is
the namespace in $SHMQ_NAMESPACE). `test_examples_are_upstream_but_marked_lines`
proves it: reverting those lines gives upstream's files byte for byte.

Each scenario runs the examples as separate processes, as their docs say
(consumers first, stopped with SIGINT as a user stops them with Ctrl-C), and
records what each printed (consumer tags, random in aio-pika, normalised),
its exit status and the last line of its stderr (random message ids, which
aio-pika gives each message it publishes, normalised too). It runs twice: on shmq with
SHMQ_NAMESPACE set to the `namespace` fixture, and with the marked lines
reverted to real aio-pika against a private RabbitMQ (the `rabbitmq`
fixture). The two transcripts must be equal, and must show what the examples
are for (the consumer printed what the producer sent). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

EXAMPLES = Path(__file__).resolve().parent / "aio_pika_examples"
MARK = "  # shmq: changed"
WAIT = 15  # seconds: the bound on any one wait for output or exit

# Git blob ids at mosquito/aio-pika 0a9f24c9349f9158a959bf1e64d2c909350727d7, and each file's upstream URL.
UPSTREAM = {
    "quick-start/simple_publisher.py": ("06d31dcf2516a2bc888d244c97f36070626aec4e", "amqp://guest:guest@127.0.0.1/"),
    "quick-start/simple_consumer.py": ("e85a5f7bcd318bb6d53eecd7d7b0db9b5d73fd24", "amqp://guest:guest@127.0.0.1/"),
    "quick-start/simple_async_consumer.py": ("ae35847e3ea85a46d186af3cf2e90d4798542171", "amqp://guest:guest@127.0.0.1/"),
    "quick-start/main.py": ("b2a83500cb59cb50aa9438f35780cc64758f52db",
                            "amqp://guest:guest@127.0.0.1/?name=aio-pika%20example"),
    "1-introduction/send.py": ("f814053a48b09ed9812f032f632c6a1939469d5a", "amqp://guest:guest@localhost/"),
    "1-introduction/receive.py": ("cdf78b0794f7fea24c189f71b2d01a98ce8113d3", "amqp://guest:guest@localhost/"),
    "2-work-queues/new_task.py": ("b7b29d4529489bedb170fca6571928854b4f8c52", "amqp://guest:guest@localhost/"),
    "2-work-queues/new_task_initial.py": ("f9385b799cd7509efa3f66aceb95eb50b658fcb7", "amqp://guest:guest@localhost/"),
    "2-work-queues/tasks_worker.py": ("74560b2b061d6da0a1550c19d78d5ed2e961092b", "amqp://guest:guest@localhost/"),
}


def git_blob_id(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def revert(text: str, url: str) -> str:
    """The example for real aio-pika, connecting to `url`."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.endswith(MARK + "\n"):
            line = line[: -len(MARK) - 1] + "\n"
            line = line.replace("import shmq.aio as aio_pika", "import aio_pika").replace("shmq.aio", "aio_pika")
            line = line.replace("connect()", f'connect("{url}")').replace("None,", f'"{url}",')
        out.append(line)
    return "".join(out)


def test_examples_are_upstream_but_marked_lines():
    assert sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py")) == sorted(UPSTREAM)
    assert "Apache License" in (EXAMPLES / "LICENSE-NOTICE").read_text()
    for name, (blob, url) in UPSTREAM.items():
        text = (EXAMPLES / name).read_text()
        assert 2 <= text.count(MARK) <= 3, name
        assert git_blob_id(revert(text, url)) == blob, name


class Proc:
    """A running example; its stdout collected line by line."""

    def __init__(self, args: List[str], cwd: Path, env: Dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: List[str] = []
        self.err = ""
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.out.append(line)

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while "".join(self.out).count(text) < count:
            if time.monotonic() > deadline or self.p.poll() is not None and not self._t.is_alive():
                self.stop()
                raise AssertionError(f"no {text!r} in {''.join(self.out)!r}; stderr: {self.err}")
            time.sleep(0.02)

    def stop(self, sig: Optional[int] = signal.SIGINT) -> Dict[str, object]:
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self._t.join(WAIT)
        self.err = self.p.stderr.read()
        errs = [e for e in self.err.strip().splitlines() if e and not e.startswith(("DEBUG", "INFO"))]
        out = re.sub(r"'consumer_tag': '[^']*'", "'consumer_tag': 'CTAG'", "".join(self.out))
        out = re.sub(r"'message_id': '[0-9a-f]{32}'", "'message_id': 'UUID'", out)
        return {"stdout": out, "rc": self.p.returncode, "stderr": errs[-1] if errs else ""}


class Flavor:
    """Where the examples run: a directory of scripts and their environment."""

    def __init__(self, directory: Path, env: Dict[str, str]) -> None:
        self.dir, self.env = directory, env

    def start(self, name: str, *args: str) -> Proc:
        return Proc([Path(name).name, *args], self.dir / Path(name).parent, self.env)

    def run(self, name: str, *args: str) -> Dict[str, object]:
        return self.start(name, *args).stop(None)


def quick_start_iterator(f: Flavor) -> List[object]:
    """simple_consumer.py, then simple_publisher.py until the consumer
    (which breaks out after the message naming its queue) exits; messages
    published before it declared its queue are unroutable, as in aio-pika."""
    consumer = f.start("quick-start/simple_consumer.py")
    deadline = time.monotonic() + WAIT
    publishers = []
    while consumer.p.poll() is None and time.monotonic() < deadline:
        publishers.append(f.run("quick-start/simple_publisher.py"))
    return [consumer.stop(None), publishers[-1]]


def quick_start_callback(f: Flavor) -> List[object]:
    """simple_async_consumer.py: process() in a callback per message."""
    consumer = f.start("quick-start/simple_async_consumer.py")
    deadline = time.monotonic() + WAIT
    while not consumer.out and time.monotonic() < deadline:
        f.run("quick-start/simple_publisher.py")
        time.sleep(0.1)
    consumer.wait_for("Hello test_queue")
    result = consumer.stop()
    result["stdout"] = result["stdout"].splitlines()[0]  # later publishers may have got through too
    return [result]


def quick_start_get(f: Flavor) -> List[object]:
    """main.py: declare, bind, publish, queue.get(), ack, unbind, delete."""
    return [f.run("quick-start/main.py"), f.run("quick-start/main.py")]


def tutorial_1(f: Flavor) -> List[object]:
    receiver = f.start("1-introduction/receive.py")
    receiver.wait_for("Waiting for messages")
    sent = f.run("1-introduction/send.py")
    receiver.wait_for("Before sleep!")
    return [sent, receiver.stop()]


def tutorial_2(f: Flavor) -> List[object]:
    worker = f.start("2-work-queues/tasks_worker.py")
    worker.wait_for("Waiting for messages")
    sent = [f.run("2-work-queues/new_task.py", "First message."), f.run("2-work-queues/new_task.py", "Second", "msg")]
    worker.wait_for("Message body is", 2)
    return [*sent, worker.stop()]


SCENARIOS: Dict[str, Callable[[Flavor], List[object]]] = {
    "quick_start_iterator": quick_start_iterator,
    "quick_start_callback": quick_start_callback,
    "quick_start_get": quick_start_get,
    "tutorial_1": tutorial_1,
    "tutorial_2": tutorial_2,
}


def received(body: bytes, mode: int, routing_key: str) -> str:
    """What tutorial 1 and 2's consumers print for a message (aio-pika's repr)."""
    return (f"IncomingMessage:{{'app_id': None,\n 'body_size': {len(body)},\n 'cluster_id': '',\n"
            f" 'consumer_tag': 'CTAG',\n 'content_encoding': None,\n 'content_type': None,\n"
            f" 'correlation_id': None,\n 'delivery_mode': <DeliveryMode.{'PERSISTENT' if mode == 2 else 'NOT_PERSISTENT'}:"
            f" {mode}>,\n 'delivery_tag': DTAG,\n 'exchange': '',\n 'expiration': None,\n 'headers': {{}},\n"
            f" 'message_id': 'UUID',\n 'priority': 0,\n 'redelivered': False,\n 'reply_to': None,\n"
            f" 'routing_key': '{routing_key}',\n 'timestamp': None,\n 'type': 'None',\n 'user_id': None}}")


def check_expected(name: str, transcript: List[Dict[str, object]]) -> None:
    """What each example is for, independently of the other flavor."""
    interrupted = {"rc": -signal.SIGINT, "stderr": "KeyboardInterrupt"}
    if name == "quick_start_iterator":
        assert transcript == [{"stdout": "b'Hello test_queue'\n", "rc": 0, "stderr": ""},
                              {"stdout": "", "rc": 0, "stderr": ""}]
    elif name == "quick_start_callback":
        assert transcript == [{"stdout": "b'Hello test_queue'", **interrupted}]
    elif name == "quick_start_get":
        assert transcript == [{"stdout": "", "rc": 0, "stderr": ""}] * 2  # got its message (no "Queue empty")
    elif name == "tutorial_1":
        sent, receiver = transcript
        assert sent == {"stdout": " [x] Sent 'Hello World!'\n", "rc": 0, "stderr": ""}
        assert receiver == {"stdout": " [*] Waiting for messages. To exit press CTRL+C\n [x] Received message "
                            + received(b"Hello World!", 1, "hello").replace("DTAG", "1")
                            + "\nMessage body is: b'Hello World!'\nBefore sleep!\n", **interrupted}
    elif name == "tutorial_2":
        first, second, worker = transcript
        assert first["stdout"].startswith(" [x] Sent Message:{'app_id': None,\n 'body_size': 14,")
        assert "'delivery_mode': <DeliveryMode.PERSISTENT: 2>" in first["stdout"]
        assert (first["rc"], second["rc"]) == (0, 0)
        assert worker == {"stdout": " [*] Waiting for messages. To exit press CTRL+C\n"
                          f" [x] Received message {received(b'First message.', 2, 'task_queue').replace('DTAG', '1')}\n"
                          "     Message body is: b'First message.'\n"
                          f" [x] Received message {received(b'Second msg', 2, 'task_queue').replace('DTAG', '2')}\n"
                          "     Message body is: b'Second msg'\n", **interrupted}


def shmq_flavor(namespace: str) -> Flavor:
    return Flavor(EXAMPLES, dict(os.environ, SHMQ_NAMESPACE=namespace, PYTHONUNBUFFERED="1"))


def rabbitmq_flavor(port: int, directory: Path) -> Flavor:
    for name, (_blob, _url) in UPSTREAM.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(revert((EXAMPLES / name).read_text(), f"amqp://guest:guest@127.0.0.1:{port}/"))
    env = {k: v for k, v in os.environ.items() if k != "SHMQ_NAMESPACE"}
    return Flavor(directory, dict(env, PYTHONUNBUFFERED="1"))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_example_runs_on_shmq_as_on_rabbitmq(scenario, rabbitmq, namespace, tmp_path):
    pytest.importorskip("aio_pika", reason="the differential half needs aio-pika (pip install aio-pika)")
    on_shmq = SCENARIOS[scenario](shmq_flavor(namespace))
    check_expected(scenario, on_shmq)
    try:
        on_rabbitmq = SCENARIOS[scenario](rabbitmq_flavor(rabbitmq.port, tmp_path))
    finally:
        # The broker is shared by the session's tests (the upstream pika
        # tutorials declare "hello" and "task_queue" durable): leave no
        # queue of these examples behind.
        connection = rabbitmq.connect()
        for queue in ("hello", "task_queue", "test_queue"):
            connection.channel().queue_delete(queue)
        connection.close()
    for i, (mine, theirs) in enumerate(zip(on_shmq, on_rabbitmq)):
        assert mine["stdout"].splitlines() == theirs["stdout"].splitlines(), i
        assert mine == theirs, i
    assert len(on_shmq) == len(on_rabbitmq)


# -- what the examples lean on, beyond what they print


def test_process_acks_on_success_and_rejects_on_exception(namespace):
    """message.process(): ack when the block succeeds; reject (dropped, or
    requeued with requeue=True, then redelivered) when it raises; a second
    settle raises MessageProcessError. The iterator's close requeues what it
    held and did not yield."""
    import shmq
    import shmq.aio as aio_pika

    async def main() -> None:
        async with await aio_pika.connect(namespace=namespace) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("q", durable=True)
            for body in (b"ok", b"requeue", b"drop"):
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key="q")
            seen = []
            async with queue.iterator() as it:
                async for message in it:
                    seen.append((message.body, message.redelivered))
                    try:
                        async with message.process(requeue=message.body == b"requeue" and not message.redelivered):
                            if message.body != b"ok" and not message.redelivered:
                                raise RuntimeError("boom")
                    except RuntimeError:
                        pass
                    if len(seen) == 4:
                        with pytest.raises(aio_pika.exceptions.MessageProcessError):
                            await message.ack()
                        break
            assert seen == [(b"ok", False), (b"requeue", False), (b"drop", False), (b"requeue", True)]
            stats = shmq.Namespace(namespace).stats("q")
            assert (stats["ready"], stats["unacked"]) == (0, 0)
            # prefetch, and the iterator's close handing back what it held
            for body in (b"a", b"b", b"c"):
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key="q")
            await channel.set_qos(prefetch_count=2)
            async with queue.iterator() as it:
                async for message in it:
                    await asyncio.sleep(0.05)
                    assert shmq.Namespace(namespace).stats("q")["unacked"] == 2
                    await message.ack()
                    break
            stats = shmq.Namespace(namespace).stats("q")
            assert (stats["ready"], stats["unacked"]) == (2, 0)
            got = await queue.get(timeout=1)
            assert got is not None and got.body == b"b" and got.redelivered
            await got.ack()

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_exchange_types_and_return(namespace):
    """declare_exchange with aio-pika's ExchangeType; an unroutable
    mandatory publish goes to channel.return_callbacks."""
    import shmq.aio as aio_pika

    async def main() -> None:
        async with await aio_pika.connect(namespace=namespace) as connection:
            async with await connection.channel() as channel:
                logs = await channel.declare_exchange("logs", aio_pika.ExchangeType.FANOUT)
                topic = await channel.declare_exchange("topic_logs", aio_pika.ExchangeType.TOPIC)
                q1 = await channel.declare_queue(exclusive=True)
                q2 = await channel.declare_queue(exclusive=True)
                await q1.bind(logs)
                await q2.bind(topic, routing_key="kern.*")
                returned = []
                channel.return_callbacks.append(returned.append)
                await logs.publish(aio_pika.Message(b"f"), routing_key="")
                await topic.publish(aio_pika.Message(b"t"), routing_key="kern.critical")
                await topic.publish(aio_pika.Message(b"x"), routing_key="user.info")
                assert [m.body for m in returned] == [b"x"]
                assert (await q1.get()).body == b"f"
                assert (await q2.get(no_ack=True)).body == b"t"
                assert await q2.get(fail=False) is None
                with pytest.raises(aio_pika.exceptions.QueueEmpty):
                    await q2.get()
            assert channel.is_closed

    asyncio.run(asyncio.wait_for(main(), WAIT))
