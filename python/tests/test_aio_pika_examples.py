"""aio-pika's own examples on shmq.aio, differentially.

python/tests/aio_pika_examples/ holds aio-pika's quick-start examples (those
docs/source/quick-start.md shows: a publisher, an iterator consumer, a
callback consumer, a get example), its transactions example and its RabbitMQ
tutorials 1 to 7, as
mosquito/aio-pika has them at commit 0a9f24c9349f9158a959bf1e64d2c909350727d7,
verbatim but for the lines marked `# shmq: changed`: the import (`aio_pika`
-> `shmq.aio`) and the connection URL (dropped: `connect()` with no URL is
the namespace in $SHMQ_NAMESPACE). `test_examples_are_upstream_but_marked_lines`
proves it: reverting those lines gives upstream's files byte for byte.
Tutorial 7's `from aiormq.exceptions import DeliveryError` and `from
pamqp.commands import Basic` stay as they are: shmq.aio's publish returns
pamqp's Basic.Ack and raises a subclass of aiormq's DeliveryError when
those are installed (they come with aio-pika).

Each scenario runs the examples as separate processes, as their docs say
(consumers first, stopped with SIGINT as a user stops them with Ctrl-C), and
records what each printed (consumer tags, random in aio-pika, normalised),
its exit status and the last line of its stderr (random message ids, which
aio-pika gives each message it publishes, normalised too; what the
interpreter reports at exit about aio-pika's own unclosed objects left
out: `without_client_teardown`). It runs twice: on shmq with
SHMQ_NAMESPACE set to the `namespace` fixture, and with the marked lines
reverted to real aio-pika against a private RabbitMQ (the `rabbitmq`
fixture). The two transcripts must be equal, and must show what the examples
are for (the consumer printed what the producer sent; what a publisher that
prints nothing left in its queue). Every wait is bounded.

The tests after the scenarios run one asyncio script on shmq.aio and on
aio-pika + RabbitMQ and compare what it saw: publisher-confirm results,
DeliveryError from a reject-publish queue, returns, transactions.
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
from typing import Any, Callable, Dict, List, Optional

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
    "3-publish-subscribe/emit_log.py": ("3eac484525e9ad73aa8bdbab2b9006d76cc9b5af", "amqp://guest:guest@localhost/"),
    "3-publish-subscribe/receive_logs.py": ("29b80d3658b59fc467e4f11b4397d62446499bf1",
                                            "amqp://guest:guest@localhost/"),
    "4-routing/emit_log_direct.py": ("a685ab13f5b8fba45bfa73863835a8716c1cffa1", "amqp://guest:guest@localhost/"),
    "4-routing/receive_logs_direct.py": ("214308e39707ede0921691592ad1d40794a3304f", "amqp://guest:guest@localhost/"),
    "4-routing/receive_logs_direct_simple.py": ("2f0a6f0197178383aec145c2a786e29dd453df84",
                                                "amqp://guest:guest@localhost/"),
    "5-topics/emit_log_topic.py": ("59102a65a4e706201db929a5d60afcff0c88d409", "amqp://guest:guest@localhost/"),
    "5-topics/receive_logs_topic.py": ("17eabe6a0410248d540c8ae2584bb076de4edbab", "amqp://guest:guest@localhost/"),
    "6-rpc/rpc_client.py": ("bb313784c987499994bb0749723b99ea833b67e1", "amqp://guest:guest@localhost/"),
    "6-rpc/rpc_server.py": ("7ebf186e7202dc563491963b0662b95defc0c12e", "amqp://guest:guest@localhost/"),
    "7-publisher-confirms/publish_asynchronously.py": ("4a421acf83859afc04d5cda12efc0933edc1f9c0",
                                                       "amqp://guest:guest@localhost/"),
    "7-publisher-confirms/publish_batches.py": ("854df81d2ac393c48e358ff44b5218e12a95ff1a",
                                                "amqp://guest:guest@localhost/"),
    "7-publisher-confirms/publish_individually.py": ("b84893cad3a472c4a2b10252c091d729cbab655a",
                                                     "amqp://guest:guest@localhost/"),
    "examples/simple_publisher_transactions.py": ("41334105d1552b98a9df53a911ec6f867630ad45",
                                                  "amqp://guest:guest@127.0.0.1/"),
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


def without_client_teardown(lines: List[str]) -> List[str]:
    """stderr without the reports the interpreter prints at exit about
    aio-pika's (aiormq's) own objects that an example left open: upstream's
    tutorials 5 and 6 never close their connection, and its pending
    callback tasks then end in "Task was destroyed but it is pending!" and
    "Exception ignored in: ... RuntimeError: Event loop is closed". They
    are the client library's teardown, not the example's output; a report
    about anything else (shmq's objects) is kept."""
    kept: List[str] = []
    i = 0
    while i < len(lines):
        if lines[i] == "Task was destroyed but it is pending!" and i + 1 < len(lines) \
                and lines[i + 1].startswith("task: ") and re.search(r"aio_pika|aiormq", lines[i + 1]):
            i += 2
            continue
        if lines[i].startswith("Exception ignored in: "):
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "Traceback (most recent call last):"))):
                end += 1
            block = lines[i:end + 1]
            if re.search(r"aio_pika|aiormq", "\n".join(block)):
                i = end + 1
                continue
        kept.append(lines[i])
        i += 1
    return kept


class Proc:
    """A running example; its stdout collected line by line."""

    def __init__(self, args: List[str], cwd: Path, env: Dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: List[str] = []
        self.err = ""
        self._errs: List[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        # stderr drained as it comes, so that a process logging a lot
        # (an error per message, say) cannot block on a full pipe.
        self._te = threading.Thread(target=self._errs.extend, args=(self.p.stderr,), daemon=True)
        self._te.start()

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
        self._te.join(WAIT)
        self.err = "".join(self._errs)
        errs = [e for e in without_client_teardown(self.err.strip().splitlines())
                if e and not e.startswith(("DEBUG", "INFO"))]
        out = re.sub(r"'consumer_tag': '[^']*'", "'consumer_tag': 'CTAG'", "".join(self.out))
        out = re.sub(r"'message_id': '[0-9a-f]{32}'", "'message_id': 'UUID'", out)
        return {"stdout": out, "rc": self.p.returncode, "stderr": errs[-1] if errs else ""}


class Flavor:
    """Where the examples run: a directory of scripts and their environment,
    and `connect`, a pika-style BlockingConnection to the same place (shmq's
    or pika's), to set up a queue or look at what a script left."""

    def __init__(self, directory: Path, env: Dict[str, str], connect: Callable[[], Any]) -> None:
        self.dir, self.env, self.connect = directory, env, connect

    def start(self, name: str, *args: str) -> Proc:
        return Proc([Path(name).name, *args], self.dir / Path(name).parent, self.env)

    def run(self, name: str, *args: str) -> Dict[str, object]:
        return self.start(name, *args).stop(None)

    def declare(self, queue: str) -> None:
        connection = self.connect()
        try:
            connection.channel().queue_declare(queue)
        finally:
            connection.close()

    def depth(self, queue: str) -> int:
        """How many messages `queue` holds ready."""
        connection = self.connect()
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    def drain(self, queue: str) -> List[str]:
        """The bodies of what `queue` holds, taken (in order)."""
        connection = self.connect()
        try:
            channel, bodies = connection.channel(), []
            while True:
                method, _props, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return bodies
                bodies.append(body.decode())
        finally:
            connection.close()


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


def tutorial_3(f: Flavor) -> List[object]:
    """Two receive_logs.py (the docs run two), then emit_log.py twice:
    the fanout exchange gives each receiver its own copy."""
    receivers = [f.start("3-publish-subscribe/receive_logs.py") for _ in range(2)]
    for receiver in receivers:
        receiver.wait_for("Waiting for logs")
    sent = [f.run("3-publish-subscribe/emit_log.py"), f.run("3-publish-subscribe/emit_log.py", "Disk", "full")]
    for receiver in receivers:
        receiver.wait_for("[x] ", 2)
    return [*sent, *(receiver.stop() for receiver in receivers)]


PROBE = "probe"


def tutorial_4(f: Flavor) -> List[object]:
    """The docs' two receivers: receive_logs_direct_simple.py for warning
    and error, receive_logs_direct.py for all three; then an error, an info,
    a debug message nobody binds (returned to the publisher) and a warning.

    The simple receiver prints nothing until a message arrives, so it is
    probed until it shows it listens: a warning "probe" per try (one sent
    before its queue is bound is returned, as unroutable); its probe lines
    are left out of its transcript."""
    simple = f.start("4-routing/receive_logs_direct_simple.py", "warning", "error")
    deadline = time.monotonic() + WAIT
    while f"b'{PROBE}'" not in "".join(simple.out):
        if time.monotonic() > deadline or simple.p.poll() is not None:
            raise AssertionError(f"the simple receiver never got a probe: {simple.stop()}")
        f.run("4-routing/emit_log_direct.py", "warning", PROBE)
        seen = time.monotonic() + 0.5
        while f"b'{PROBE}'" not in "".join(simple.out) and time.monotonic() < seen:
            time.sleep(0.02)
    receiver = f.start("4-routing/receive_logs_direct.py", "info", "warning", "error")
    receiver.wait_for("Waiting for messages")
    sent = [f.run("4-routing/emit_log_direct.py", "error", "Run. Run. Or it will explode."),
            f.run("4-routing/emit_log_direct.py", "info", "Just so you know"),
            f.run("4-routing/emit_log_direct.py", "debug", "Nobody listens"),
            f.run("4-routing/emit_log_direct.py", "warning", "Disk almost full")]
    simple.wait_for("Disk almost full")
    receiver.wait_for("Disk almost full")
    simple_result = simple.stop()
    simple_result["stdout"] = "".join(line for line in simple_result["stdout"].splitlines(keepends=True)
                                      if f"b'{PROBE}'" not in line)
    return [*sent, simple_result, receiver.stop()]


def tutorial_5(f: Flavor) -> List[object]:
    """receive_logs_topic.py for "kern.*" and "*.critical", then four
    emits: three match a binding, one matches none (returned)."""
    receiver = f.start("5-topics/receive_logs_topic.py", "kern.*", "*.critical")
    receiver.wait_for("Waiting for messages")
    sent = [f.run("5-topics/emit_log_topic.py", "kern.critical", "A critical kernel error"),
            f.run("5-topics/emit_log_topic.py", "kern.info", "Kernel info"),
            f.run("5-topics/emit_log_topic.py", "user.info", "Nobody listens"),
            f.run("5-topics/emit_log_topic.py", "user.critical", "A critical user error")]
    receiver.wait_for("A critical user error")
    return [*sent, receiver.stop()]


def tutorial_6(f: Flavor) -> List[object]:
    """rpc_server.py, then rpc_client.py: fib(30) over a request queue and
    the client's exclusive, server-named reply queue."""
    server = f.start("6-rpc/rpc_server.py")
    server.wait_for("Awaiting RPC requests")
    client = f.run("6-rpc/rpc_client.py")
    server.wait_for("Request complete")
    return [client, server.stop()]


CONFIRM_SCRIPTS = ["publish_individually.py", "publish_batches.py", "publish_asynchronously.py"]


def tutorial_7(f: Flavor) -> List[object]:
    """The three publisher-confirm strategies, 10 000 messages each to
    "hello", every publish confirmed; then how many "hello" holds."""
    runs: List[object] = [f.run(f"7-publisher-confirms/{name}") for name in CONFIRM_SCRIPTS]
    return [*runs, {"hello": f.depth("hello")}]


def transactions(f: Flavor) -> List[object]:
    """simple_publisher_transactions.py publishes to "test_queue" (it does
    not declare it: the scenario does, first): ten messages in a committed
    `async with` transaction, one in a committed manual one, one rolled
    back. What the queue holds afterwards shows which took effect."""
    f.declare("test_queue")
    run = f.run("examples/simple_publisher_transactions.py")
    return [run, {"test_queue": f.drain("test_queue")}]


SCENARIOS: Dict[str, Callable[[Flavor], List[object]]] = {
    "quick_start_iterator": quick_start_iterator,
    "quick_start_callback": quick_start_callback,
    "quick_start_get": quick_start_get,
    "tutorial_1": tutorial_1,
    "tutorial_2": tutorial_2,
    "tutorial_3": tutorial_3,
    "tutorial_4": tutorial_4,
    "tutorial_5": tutorial_5,
    "tutorial_6": tutorial_6,
    "tutorial_7": tutorial_7,
    "transactions": transactions,
}


def received(body: bytes, mode: int, routing_key: str) -> str:
    """What tutorial 1 and 2's consumers print for a message (aio-pika's repr)."""
    return (f"IncomingMessage:{{'app_id': None,\n 'body_size': {len(body)},\n 'cluster_id': '',\n"
            f" 'consumer_tag': 'CTAG',\n 'content_encoding': None,\n 'content_type': None,\n"
            f" 'correlation_id': None,\n 'delivery_mode': <DeliveryMode.{'PERSISTENT' if mode == 2 else 'NOT_PERSISTENT'}:"
            f" {mode}>,\n 'delivery_tag': DTAG,\n 'exchange': '',\n 'expiration': None,\n 'headers': {{}},\n"
            f" 'message_id': 'UUID',\n 'priority': 0,\n 'redelivered': False,\n 'reply_to': None,\n"
            f" 'routing_key': '{routing_key}',\n 'timestamp': None,\n 'type': 'None',\n 'user_id': None}}")


def emitted(body: bytes) -> str:
    """What tutorials 3 and 5's emitters print for a persistent message
    (aio-pika's repr of an outgoing one)."""
    return (f" [x] Sent Message:{{'app_id': None,\n 'body_size': {len(body)},\n 'cluster_id': None,\n"
            " 'consumer_tag': None,\n 'content_encoding': None,\n 'content_type': None,\n 'correlation_id': None,\n"
            " 'delivery_mode': <DeliveryMode.PERSISTENT: 2>,\n 'delivery_tag': None,\n 'exchange': None,\n"
            " 'expiration': None,\n 'headers': {},\n 'message_id': None,\n 'priority': 0,\n 'redelivered': None,\n"
            " 'reply_to': None,\n 'routing_key': None,\n 'timestamp': None,\n 'type': 'None',\n 'user_id': None}\n")


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
    elif name == "tutorial_3":
        logs = " [*] Waiting for logs. To exit press CTRL+C\n[x] b'Hello World!'\n[x] b'Disk full'\n"
        assert transcript == [{"stdout": emitted(b"Hello World!"), "rc": 0, "stderr": ""},
                              {"stdout": emitted(b"Disk full"), "rc": 0, "stderr": ""},
                              {"stdout": logs, **interrupted}, {"stdout": logs, **interrupted}]
    elif name == "tutorial_4":
        bodies = [b"Run. Run. Or it will explode.", b"Just so you know", b"Nobody listens", b"Disk almost full"]
        assert transcript == [
            *({"stdout": f" [x] Sent {body!r}\n", "rc": 0, "stderr": ""} for body in bodies),
            {"stdout": " [x] 'error':b'Run. Run. Or it will explode.'\n [x] 'warning':b'Disk almost full'\n",
             **interrupted},
            {"stdout": " [*] Waiting for messages. To exit press CTRL+C\n"
                       " [x] 'error':b'Run. Run. Or it will explode.'\n [x] 'info':b'Just so you know'\n"
                       " [x] 'warning':b'Disk almost full'\n", **interrupted}]
    elif name == "tutorial_5":
        bodies = [b"A critical kernel error", b"Kernel info", b"Nobody listens", b"A critical user error"]
        assert transcript == [
            *({"stdout": emitted(body), "rc": 0, "stderr": ""} for body in bodies),
            {"stdout": " [*] Waiting for messages. To exit press CTRL+C\n"
                       " [x] 'kern.critical':b'A critical kernel error'\n [x] 'kern.info':b'Kernel info'\n"
                       " [x] 'user.critical':b'A critical user error'\n", **interrupted}]
    elif name == "tutorial_6":
        assert transcript == [{"stdout": " [x] Requesting fib(30)\n [.] Got 832040\n", "rc": 0, "stderr": ""},
                              {"stdout": " [x] Awaiting RPC requests\n [.] fib(30)\nRequest complete\n",
                               **interrupted}]
    elif name == "tutorial_7":
        assert transcript == [
            *({"stdout": f" [x] Sent and confirmed multiple messages {how}. \n", "rc": 0, "stderr": ""}
              for how in ("individually", "in batches", "asynchronously")),
            {"hello": 30000}]
    elif name == "transactions":
        assert transcript == [{"stdout": "", "rc": 0, "stderr": ""},
                              {"test_queue": [f"Hello #{i}" for i in range(10)] + ["Hello test_queue"]}]
    else:
        raise AssertionError(f"no expectation for {name}")


def shmq_flavor(namespace: str) -> Flavor:
    import shmq

    return Flavor(EXAMPLES, dict(os.environ, SHMQ_NAMESPACE=namespace, PYTHONUNBUFFERED="1"),
                  lambda: shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)))


def rabbitmq_flavor(rabbitmq: Any, directory: Path) -> Flavor:
    for name, (_blob, _url) in UPSTREAM.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(revert((EXAMPLES / name).read_text(),
                                             f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/"))
    env = {k: v for k, v in os.environ.items() if k != "SHMQ_NAMESPACE"}
    return Flavor(directory, dict(env, PYTHONUNBUFFERED="1"), rabbitmq.connect)


# What the examples declare on the broker, which the session's other tests
# share (the upstream pika tutorials declare "hello", "task_queue" and a
# fanout "logs" too; tutorial 3 here declares "logs" fanout, tutorial 4
# direct).
EXAMPLE_QUEUES = ("hello", "task_queue", "test_queue", "rpc_queue")
EXAMPLE_EXCHANGES = ("logs", "topic_logs")


def reset_rabbitmq(rabbitmq: Any, server_named: bool = False) -> None:
    """Deletes the examples' queues and exchanges from the broker; with
    `server_named`, the durable server-named queues tutorial 4's receivers
    leave behind (`declare_queue(durable=True)`, not exclusive) too."""
    connection = rabbitmq.connect()
    try:
        channel = connection.channel()
        queues = list(EXAMPLE_QUEUES)
        if server_named:
            listed = rabbitmq._ctl("list_queues", "--quiet", "--no-table-headers", "name")
            assert listed.returncode == 0, listed.stderr
            queues += [name for name in listed.stdout.split() if name.startswith("amq.gen-")]
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in EXAMPLE_EXCHANGES:
            channel.exchange_delete(exchange)
    finally:
        connection.close()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_example_runs_on_shmq_as_on_rabbitmq(scenario, rabbitmq, namespace, tmp_path):
    pytest.importorskip("aio_pika", reason="the differential half needs aio-pika (pip install aio-pika)")
    began = time.monotonic()
    on_shmq = SCENARIOS[scenario](shmq_flavor(namespace))
    shmq_seconds = time.monotonic() - began
    check_expected(scenario, on_shmq)
    reset_rabbitmq(rabbitmq)
    began = time.monotonic()
    try:
        on_rabbitmq = SCENARIOS[scenario](rabbitmq_flavor(rabbitmq, tmp_path))
    finally:
        rabbitmq_seconds = time.monotonic() - began
        reset_rabbitmq(rabbitmq, server_named=scenario == "tutorial_4")
    print(f"{scenario}: {shmq_seconds:.2f} s on shmq, {rabbitmq_seconds:.2f} s on RabbitMQ")
    for i, (mine, theirs) in enumerate(zip(on_shmq, on_rabbitmq)):
        assert str(mine.get("stdout")).splitlines() == str(theirs.get("stdout")).splitlines(), i
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
                channel.return_callbacks.add(lambda _channel, message: returned.append(message))
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


# -- publisher confirms and transactions, against aio-pika + RabbitMQ
#
# Each script takes the module (shmq.aio or aio_pika) and a coroutine
# function that connects (to the test's namespace, or to the private
# RabbitMQ), and returns what it saw; both runs must see the same, and what
# the test expects.


def on_both(rabbitmq: Any, namespace: str, script: Callable[..., Any]) -> Any:
    aio_pika = pytest.importorskip("aio_pika", reason="the differential half needs aio-pika (pip install aio-pika)")
    import shmq.aio

    url = f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/"
    theirs = asyncio.run(asyncio.wait_for(script(aio_pika, lambda: aio_pika.connect(url)), WAIT))
    mine = asyncio.run(asyncio.wait_for(script(shmq.aio, lambda: shmq.aio.connect(namespace=namespace)), WAIT))
    assert mine == theirs
    return mine


def confirmation(result: Any) -> object:
    """A publish's result, comparable across the two: a confirmation
    frame's class (pamqp's on both sides), tag and flag; a returned
    message's body; None."""
    from pamqp.commands import Basic

    if isinstance(result, (Basic.Ack, Basic.Nack)):
        return (type(result).__qualname__, result.delivery_tag, result.multiple)
    return result if result is None else ("returned", result.body)


async def publish_outcomes(aio_pika: Any, connect: Callable[[], Any]) -> Dict[str, object]:
    """Publisher confirms (the default channel): a routed publish returns
    Basic.Ack; an unroutable mandatory one goes to return_callbacks (called
    with the channel and the message) and is returned; a non-mandatory one
    is acked; an internal exchange is refused client side; on_return_raises
    raises PublishError. Without confirms: None, and no return callback."""
    seen: Dict[str, object] = {}
    async with await connect() as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        exchange = channel.default_exchange
        returned: List[object] = []
        channel.return_callbacks.add(lambda sender, message: returned.append((sender is channel, message.body,
                                                                               message.routing_key)))
        seen["routed"] = confirmation(await exchange.publish(aio_pika.Message(b"a"), routing_key=queue.name))
        seen["unroutable"] = confirmation(await exchange.publish(aio_pika.Message(b"b"), routing_key="nowhere"))
        seen["not mandatory"] = confirmation(await exchange.publish(aio_pika.Message(b"c"), routing_key="nowhere",
                                                                    mandatory=False, timeout=5.0))
        seen["return callbacks"] = returned
        internal = await channel.declare_exchange("aio_confirms_internal", internal=True)
        try:
            await internal.publish(aio_pika.Message(b"d"), routing_key="k")
        except ValueError as e:
            seen["internal"] = str(e)
        await internal.delete()
        with pytest.raises(RuntimeError) as e:
            channel.transaction()
        seen["transaction on a confirm channel"] = str(e.value)

        raising = await connection.channel(on_return_raises=True)
        try:
            await raising.default_exchange.publish(aio_pika.Message(b"e"), routing_key="nowhere")
        except aio_pika.exceptions.PublishError as e:
            seen["on_return_raises"] = (str(e), e.args, e.message.body,
                                        isinstance(e, aio_pika.exceptions.DeliveryError))

        plain = await connection.channel(publisher_confirms=False)
        plain_returned: List[object] = []
        plain.return_callbacks.add(lambda sender, message: plain_returned.append(message.body))
        seen["no confirms"] = [
            confirmation(await plain.default_exchange.publish(aio_pika.Message(b"f"), routing_key=key))
            for key in (queue.name, "nowhere")]
        await plain.declare_queue(queue.name, passive=True)  # a round trip: a return would have come back by now
        seen["no confirms: return callbacks"] = plain_returned
        with pytest.raises(RuntimeError) as e:
            await connection.channel(publisher_confirms=False, on_return_raises=True)
        seen["on_return_raises without confirms"] = str(e.value)
        seen["left"] = [(await queue.get(no_ack=True)).body for _ in range(2)]
    return seen


def test_publish_returns_confirmations_as_aio_pika_does(rabbitmq, namespace):
    seen = on_both(rabbitmq, namespace, publish_outcomes)
    assert seen == {
        "routed": ("Basic.Ack", 1, False),
        "unroutable": ("returned", b"b"),
        "not mandatory": ("Basic.Ack", 3, False),
        "return callbacks": [(True, b"b", "nowhere")],
        "internal": "Can not publish to internal exchange: 'aio_confirms_internal'!",
        "transaction on a confirm channel": "Cannot create transaction when publisher confirms are enabled",
        "on_return_raises": ("Message delivery failed: Basic.Return(reply_code=312, reply_text='NO_ROUTE', "
                             "exchange='', routing_key='nowhere')", ("NO_ROUTE", "nowhere"), b"e", True),
        "no confirms": [None, None],
        "no confirms: return callbacks": [],
        "on_return_raises without confirms": '"on_return_raises" not applicable without "publisher_confirms"',
        "left": [b"a", b"f"],
    }


async def refused_outcomes(aio_pika: Any, connect: Callable[[], Any]) -> Dict[str, object]:
    """A queue at its x-max-length with reject-publish refuses: with
    confirms the publish raises DeliveryError (aiormq's class, as tutorial 7
    catches it) carrying the Basic.Nack; without, it returns None and the
    message is gone."""
    from aiormq.exceptions import DeliveryError
    from pamqp.commands import Basic

    seen: Dict[str, object] = {}
    async with await connect() as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, arguments={"x-max-length": 1,
                                                                       "x-overflow": "reject-publish"})
        outcomes: List[object] = []
        for body in (b"1", b"2", b"3"):
            try:
                outcomes.append(confirmation(await channel.default_exchange.publish(aio_pika.Message(body),
                                                                                    routing_key=queue.name)))
            except DeliveryError as e:
                outcomes.append((type(e.frame).__qualname__, isinstance(e.frame, Basic.Nack), e.frame.delivery_tag,
                                 e.message, str(e), repr(e), isinstance(e, aio_pika.exceptions.DeliveryError)))
        seen["confirms"] = outcomes
        plain = await connection.channel(publisher_confirms=False)
        seen["no confirms"] = await plain.default_exchange.publish(aio_pika.Message(b"4"), routing_key=queue.name)
        await plain.declare_queue(queue.name, passive=True)  # a round trip: the broker has taken the publish
        seen["left"] = [(await queue.get(no_ack=True)).body, await queue.get(fail=False)]
    return seen


def test_delivery_error_when_a_queue_refuses(rabbitmq, namespace):
    seen = on_both(rabbitmq, namespace, refused_outcomes)
    nack = "Message delivery failed: Basic.Nack(delivery_tag={}, multiple=True)"
    assert seen == {
        "confirms": [("Basic.Ack", 1, False),
                     ("Basic.Nack", True, 2, None, nack.format(2), f"<DeliveryError: {nack.format(2)}>", True),
                     ("Basic.Nack", True, 3, None, nack.format(3), f"<DeliveryError: {nack.format(3)}>", True)],
        "no confirms": None,
        "left": [b"1", None],
    }


async def transaction_outcomes(aio_pika: Any, connect: Callable[[], Any]) -> Dict[str, object]:
    """Transactions on a channel without confirms: publishes take effect
    at the commit (not before, and never after a rollback, explicit or by
    an exception in `async with`); an ack in a rolled-back transaction is
    undone (the message is redelivered when the channel closes), one in a
    committed transaction holds."""
    seen: Dict[str, object] = {}
    async with await connect() as connection:
        channel = await connection.channel(publisher_confirms=False)
        queue = await channel.declare_queue(exclusive=True)
        watcher = await connection.channel()
        watched = await watcher.declare_queue(queue.name, passive=True)

        tx = channel.transaction()
        seen["created"] = (str(tx), repr(tx), tx.state.value)
        async with tx:
            for body in (b"a", b"b"):
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
            seen["before commit"] = await watched.get(fail=False)
        seen["committed"] = (str(tx), tx.state.value)

        try:
            async with channel.transaction() as failed:
                await channel.default_exchange.publish(aio_pika.Message(b"c"), routing_key=queue.name)
                raise KeyError("boom")
        except KeyError:
            seen["rolled back"] = (str(failed), repr(failed))

        manual = channel.transaction()
        seen["replies"] = [type(await manual.select()).__qualname__]
        first = await queue.get()
        await first.ack()
        await channel.default_exchange.publish(aio_pika.Message(b"d"), routing_key=queue.name)
        seen["replies"].append(type(await manual.rollback()).__qualname__)
        second = await queue.get()
        await second.ack()
        seen["replies"].append(type(await manual.commit()).__qualname__)
        seen["got"] = [(first.body, first.redelivered), (second.body, second.redelivered)]

        await channel.close()
        with pytest.raises(RuntimeError) as e:
            await manual.commit()
        seen["closed"] = str(e.value)
        left = []
        while (message := await watched.get(no_ack=True, fail=False)) is not None:
            left.append((message.body, message.redelivered))
        seen["left"] = left
    return seen


def test_transactions_as_aio_pika_does(rabbitmq, namespace):
    seen = on_both(rabbitmq, namespace, transaction_outcomes)
    assert seen == {
        "created": ("created", "<Transaction created>", "created"),
        "before commit": None,
        "committed": ("commited", "commited"),
        "rolled back": ("rolled back", "<Transaction rolled back>"),
        "replies": ["Tx.SelectOk", "Tx.RollbackOk", "Tx.CommitOk"],
        "got": [(b"a", False), (b"b", False)],
        "closed": "Closed channel",
        "left": [(b"a", True)],
    }


WITHOUT_AIO_PIKA = r'''
import asyncio, sys

class Hide:
    """aio-pika, aiormq and pamqp are not installed, as far as this process knows."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("aio_pika", "aiormq", "pamqp"):
            raise ImportError(f"no module named {name!r}")

sys.meta_path.insert(0, Hide())
import shmq.aio as aio_pika

async def main():
    seen = []
    async with await aio_pika.connect(namespace=sys.argv[1]) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, arguments={"x-max-length": 1,
                                                                       "x-overflow": "reject-publish"})
        ack = await channel.default_exchange.publish(aio_pika.Message(b"1"), routing_key=queue.name)
        seen.append((type(ack).__module__, ack.name, ack.delivery_tag, ack.multiple))
        try:
            await channel.default_exchange.publish(aio_pika.Message(b"2"), routing_key=queue.name)
        except aio_pika.exceptions.DeliveryError as e:
            seen.append(repr(e))
        plain = await connection.channel(publisher_confirms=False)
        async with plain.transaction() as tx:
            await plain.default_exchange.publish(aio_pika.Message(b"3"), routing_key="nowhere")
        seen.append((repr(tx), type(await tx.select()).__name__))
    print(seen)

asyncio.run(main())
'''


def test_confirms_and_transactions_without_aio_pika_installed(namespace):
    """Without pamqp and aiormq, publish returns shmq.aio's own Basic.Ack
    and raises its own DeliveryError, with the same fields and texts."""
    done = subprocess.run([sys.executable, "-c", WITHOUT_AIO_PIKA, namespace], capture_output=True, text=True,
                          timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == str([
        ("shmq.aio", "Basic.Ack", 1, False),
        "<DeliveryError: Message delivery failed: Basic.Nack(delivery_tag=2, multiple=True)>",
        ("<Transaction commited>", "SelectOk")]) + "\n"
    assert "Unhandled message IncomingMessage:" in done.stderr  # the return without confirms, logged as aio-pika does
