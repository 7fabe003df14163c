"""RabbitMQ's official Python tutorials 1-6, differentially.

The programs in examples/python/tutorials/ are rabbitmq/rabbitmq-tutorials'
`python/` folder verbatim, except two lines each, marked `# shmq: changed`:
the import (`import shmq as pika`) and the connection parameters
(`pika.ConnectionParameters()`: the namespace in $SHMQ_NAMESPACE).
`test_tutorials_are_upstream_but_two_lines` proves it: reverting the two
lines gives back upstream's files byte for byte (their git blob ids).

Each tutorial then runs as its README and web page say, consumers first,
each program a separate process started with the tutorial's command line,
twice: once as it is, against shmq, and once with the two lines reverted to
real pika and pointed at a private RabbitMQ (the `rabbitmq` fixture). What
each process printed, its exit status and the last line of its stderr must
be the same, and must be what the tutorial says. Consumers loop for ever:
they are stopped with SIGINT, as a user stops them with Ctrl-C, and must exit
as the tutorial's code makes them (`Interrupted` and status 0 where it
catches KeyboardInterrupt; the KeyboardInterrupt traceback where it does
not). Every process and every wait is bounded.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "examples/python/tutorials"
MARK = "# shmq: changed"
SHMQ_IMPORT = f"import shmq as pika  {MARK}"
SHMQ_PARAMETERS = f"pika.ConnectionParameters(),  {MARK}"
UPSTREAM_PARAMETERS = 'pika.ConnectionParameters(host="localhost"),'

# Git blob ids of rabbitmq/rabbitmq-tutorials python/*.py at commit
# 8aec6005a0247cdad228c3518b9f412e74d990c0 (`git rev-parse HEAD:python/<file>`).
UPSTREAM = {
    "send.py": "720151ece22bfb22d0485e15fc8e2cbb30b38fbf",
    "receive.py": "874e9a19333892ae6910dea26d6fe10aa826479a",
    "new_task.py": "4118bdb4ad573d22bef3bfb927cb2b4e31f47ca2",
    "worker.py": "a672967118b2fdfca4c65eeff349f7d30e5d7ab7",
    "emit_log.py": "5bd35d1f48fad8bfee8ca0c6c11581a098ffcac3",
    "receive_logs.py": "c48f3aace9555742b1b3525bc02f169ca41483e7",
    "emit_log_direct.py": "dfeca1047715b8c98563363a21b58150fa809dd8",
    "receive_logs_direct.py": "fbbce12f2172aeb89b631ebb0541ddc7efaa7d16",
    "emit_log_topic.py": "8c9d0fc2ea2e607794a7cf61c7de8966f4c8b5ab",
    "receive_logs_topic.py": "bf5b3b4f84f949761f5bdb3a4357128d92021798",
    "rpc_server.py": "c953a822adbd40f4dc82f34ec6ab23c96e45d034",
    "rpc_client.py": "2ccc24692fa8dfedc45762d42a91989d88f27dbc",
}

WAIT = 30  # seconds: the bound on any one wait for output or exit
KEYBOARD_INTERRUPT = -signal.SIGINT  # an uncaught KeyboardInterrupt: Python exits by SIGINT


def git_blob_id(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def revert(text: str, parameters: str) -> str:
    """The tutorial for real pika: the import back, and `parameters` as the
    connection parameters."""
    return text.replace(SHMQ_IMPORT, "import pika").replace(SHMQ_PARAMETERS, parameters)


def test_tutorials_are_upstream_but_two_lines():
    assert sorted(p.name for p in TUTORIALS.glob("*.py")) == sorted(UPSTREAM)
    assert (TUTORIALS / "LICENSE.txt").read_text().lstrip().startswith("Apache License")
    for name, blob in UPSTREAM.items():
        text = (TUTORIALS / name).read_text()
        changed = [line.strip() for line in text.splitlines() if MARK in line]
        assert changed == [SHMQ_IMPORT, SHMQ_PARAMETERS], (name, changed)
        assert git_blob_id(revert(text, UPSTREAM_PARAMETERS)) == blob, f"{name} differs from upstream beyond the two lines"


class Process:
    """A tutorial program running in its own process; its stdout lines are
    collected as they come (PYTHONUNBUFFERED, as on a terminal)."""

    def __init__(self, argv: List[str], cwd: Path, env: Dict[str, str]) -> None:
        self.name = " ".join(argv[1:])
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        self.stderr = ""
        self._changed = threading.Condition()
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        self.stderr = self.proc.stderr.read()

    def wait_for(self, predicate: Callable[[List[str]], bool], what: str) -> None:
        """Until `predicate(lines)` holds (at most WAIT seconds)."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.lines) or self.proc.poll() is not None, WAIT):
                pytest.fail(f"{self.name}: no {what} within {WAIT} s; printed {self.lines}")
            if not predicate(self.lines):
                self.finish()
                pytest.fail(f"{self.name} exited ({self.proc.returncode}) before {what}; printed {self.lines}, "
                            f"stderr:\n{self.stderr}")

    def wait_lines(self, count: int) -> None:
        self.wait_for(lambda lines: len(lines) >= count, f"{count} lines")

    def finish(self) -> Dict[str, Any]:
        """Wait for it to exit; what it showed: stdout lines, exit status,
        the last line of stderr."""
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.name} did not exit within {WAIT} s; printed {self.lines}")
        self._out.join(WAIT)
        self._err.join(WAIT)
        last = self.stderr.strip().splitlines()[-1:] or [""]
        return {"stdout": self.lines, "status": self.proc.returncode, "stderr": last[0]}

    def interrupt(self) -> Dict[str, Any]:
        """Ctrl-C: SIGINT, then what it showed once it exited."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Backend:
    """Runs tutorial programs from `directory`, with `env`."""

    def __init__(self, name: str, directory: Path, env: Dict[str, str]) -> None:
        self.name = name
        self.directory = directory
        self.env = dict(env, PYTHONUNBUFFERED="1")
        self.started: List[Process] = []

    def start(self, script: str, *args: str) -> Process:
        """A consumer, started and waited for until it printed its first
        line (" [*] Waiting ..."/" [x] Awaiting ...")."""
        process = Process([sys.executable, script, *args], self.directory, self.env)
        self.started.append(process)
        process.wait_lines(1)
        return process

    def run(self, script: str, *args: str) -> Dict[str, Any]:
        """A program that ends by itself (a producer, the RPC client)."""
        process = Process([sys.executable, script, *args], self.directory, self.env)
        self.started.append(process)
        return process.finish()

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


def consumer_output(seen: Dict[str, Any]) -> Dict[str, Any]:
    """Order-insensitive where deliveries may interleave."""
    return dict(seen, stdout=sorted(seen["stdout"]))


# ----------------------------------------------------------------- tutorials


def hello_world(b: Backend) -> Dict[str, Any]:
    """Tutorial 1: `python receive.py`, `python send.py`."""
    receiver = b.start("receive.py")
    sent = b.run("send.py")
    receiver.wait_lines(2)
    return {"send.py": sent, "receive.py": receiver.interrupt()}


TASKS = ["First message.", "Second message..", "Third message.", "Fourth message."]


def work_queues(b: Backend) -> Dict[str, Any]:
    """Tutorial 2: two `python worker.py`, then `python new_task.py <task>`
    for each task (a task sleeps a second per dot); prefetch_count=1 shares
    them out between the workers."""
    workers = [b.start("worker.py"), b.start("worker.py")]
    sent = [b.run("new_task.py", *task.split()) for task in TASKS]
    done = lambda: sum(line == " [x] Done" for w in workers for line in w.lines)  # noqa: E731
    workers[0].wait_for(lambda _: done() == len(TASKS), f"{len(TASKS)} tasks done")
    # A worker prints " [x] Done" and then acks: interrupted in between, its
    # task goes back unacked and the other worker gets it again (RabbitMQ
    # and shmq alike, at-least-once). Give the last ack time to go out.
    time.sleep(1.0)
    seen = [w.interrupt() for w in workers]
    received = sorted(line for s in seen for line in s["stdout"] if "Received" in line)
    return {
        "new_task.py": sent,
        "tasks received": received,
        # each worker: waiting, then (Received, Done) pairs. How many tasks
        # each got depends on timing (a slow machine may finish one task
        # before the next is published), so it is not compared.
        "workers": [(s["stdout"][0],
                     all(a.startswith(" [x] Received ") and d == " [x] Done"
                         for a, d in zip(s["stdout"][1::2], s["stdout"][2::2])) and len(s["stdout"]) % 2 == 1,
                     s["status"], s["stderr"]) for s in seen],
    }


def publish_subscribe(b: Backend) -> Dict[str, Any]:
    """Tutorial 3: two `python receive_logs.py`, `python emit_log.py ...`."""
    receivers = [b.start("receive_logs.py"), b.start("receive_logs.py")]
    sent = [b.run("emit_log.py", "info: This is the log message"), b.run("emit_log.py")]
    for r in receivers:
        r.wait_lines(3)
    return {"emit_log.py": sent, "receive_logs.py": [consumer_output(r.interrupt()) for r in receivers]}


def routing(b: Backend) -> Dict[str, Any]:
    """Tutorial 4: `python receive_logs_direct.py warning error`, `...
    info warning error`, `python emit_log_direct.py error "Run. Run. Or it
    will explode."` and the like; without a severity, the usage message."""
    usage = b.run("receive_logs_direct.py")
    usage["stderr"] = usage["stderr"].replace(str(b.directory), "<dir>").replace("receive_logs_direct.py", "<prog>")
    receivers = {"warning error": b.start("receive_logs_direct.py", "warning", "error"),
                 "info warning error": b.start("receive_logs_direct.py", "info", "warning", "error"),
                 "info": b.start("receive_logs_direct.py", "info")}
    sent = [b.run("emit_log_direct.py", "error", "Run. Run. Or it will explode."),
            b.run("emit_log_direct.py", "info", "The message"),
            b.run("emit_log_direct.py", "warning", "Disk", "almost", "full"),
            b.run("emit_log_direct.py", "debug", "nobody listens")]
    for keys, count in (("warning error", 2), ("info warning error", 3), ("info", 1)):
        receivers[keys].wait_lines(1 + count)
    time.sleep(0.5)  # room for a wrongly routed message to show up
    return {"no severity": usage, "emit_log_direct.py": sent,
            "receivers": {keys: consumer_output(r.interrupt()) for keys, r in receivers.items()}}


def topics(b: Backend) -> Dict[str, Any]:
    """Tutorial 5: `python receive_logs_topic.py "#"`, `"kern.*"`,
    `"*.critical"`, `"kern.*" "*.critical"`, `"*.rabbit"`, then
    `python emit_log_topic.py "kern.critical" "A critical kernel error"`,
    `python emit_log_topic.py red.rabbit Hello` and the like."""
    patterns = {"#": 5, "kern.*": 2, "*.critical": 2, "kern.* *.critical": 3, "*.rabbit": 1, "lazy.#": 0}
    receivers = {p: b.start("receive_logs_topic.py", *p.split()) for p in patterns}
    sent = [b.run("emit_log_topic.py", "kern.critical", "A critical kernel error"),
            b.run("emit_log_topic.py", "red.rabbit", "Hello"),
            b.run("emit_log_topic.py"),
            b.run("emit_log_topic.py", "cron.critical", "cron failed"),
            b.run("emit_log_topic.py", "kern.info", "booted")]
    for p, count in patterns.items():
        receivers[p].wait_lines(1 + count)
    time.sleep(0.5)  # room for a wrongly routed message to show up
    return {"emit_log_topic.py": sent, "receivers": {p: consumer_output(r.interrupt()) for p, r in receivers.items()}}


def rpc(b: Backend) -> Dict[str, Any]:
    """Tutorial 6: `python rpc_server.py`, `python rpc_client.py`."""
    server = b.start("rpc_server.py")
    client = b.run("rpc_client.py")
    server.wait_lines(2)
    return {"rpc_client.py": client, "rpc_server.py": server.interrupt()}


def ok(*stdout: str) -> Dict[str, Any]:
    return {"stdout": list(stdout), "status": 0, "stderr": ""}


def interrupted(*stdout: str) -> Dict[str, Any]:
    """A consumer that catches KeyboardInterrupt, stdout sorted."""
    return {"stdout": sorted([*stdout, "Interrupted"]), "status": 0, "stderr": ""}


WAITING_LOGS = " [*] Waiting for logs. To exit press CTRL+C"

# What the tutorials' pages say each program prints, and what RabbitMQ 3.10
# with pika 1.4 showed this harness.
EXPECTED = {
    hello_world: {
        "send.py": ok(" [x] Sent 'Hello World!'"),
        "receive.py": {"stdout": [" [*] Waiting for messages. To exit press CTRL+C", " [x] Received Hello World!",
                                  "Interrupted"], "status": 0, "stderr": ""},
    },
    work_queues: {
        "new_task.py": [ok(f" [x] Sent {task}") for task in TASKS],
        "tasks received": sorted(f" [x] Received {task}" for task in TASKS),
        "workers": [(" [*] Waiting for messages. To exit press CTRL+C", True, KEYBOARD_INTERRUPT,
                     "KeyboardInterrupt")] * 2,
    },
    publish_subscribe: {
        "emit_log.py": [ok(" [x] Sent info: This is the log message"), ok(" [x] Sent info: Hello World!")],
        "receive_logs.py": [interrupted(WAITING_LOGS, " [x] info: This is the log message",
                                        " [x] info: Hello World!")] * 2,
    },
    routing: {
        "no severity": {"stdout": [], "status": 1, "stderr": "Usage: <prog> [info] [warning] [error]"},
        "emit_log_direct.py": [ok(" [x] Sent error:Run. Run. Or it will explode."), ok(" [x] Sent info:The message"),
                               ok(" [x] Sent warning:Disk almost full"), ok(" [x] Sent debug:nobody listens")],
        "receivers": {
            "warning error": interrupted(WAITING_LOGS, " [x] error:Run. Run. Or it will explode.",
                                         " [x] warning:Disk almost full"),
            "info warning error": interrupted(WAITING_LOGS, " [x] error:Run. Run. Or it will explode.",
                                              " [x] info:The message", " [x] warning:Disk almost full"),
            "info": interrupted(WAITING_LOGS, " [x] info:The message"),
        },
    },
    topics: {
        "emit_log_topic.py": [ok(" [x] Sent kern.critical:A critical kernel error"), ok(" [x] Sent red.rabbit:Hello"),
                              ok(" [x] Sent anonymous.info:Hello World!"), ok(" [x] Sent cron.critical:cron failed"),
                              ok(" [x] Sent kern.info:booted")],
        "receivers": {
            "#": interrupted(WAITING_LOGS, " [x] kern.critical:A critical kernel error", " [x] red.rabbit:Hello",
                             " [x] anonymous.info:Hello World!", " [x] cron.critical:cron failed",
                             " [x] kern.info:booted"),
            "kern.*": interrupted(WAITING_LOGS, " [x] kern.critical:A critical kernel error", " [x] kern.info:booted"),
            "*.critical": interrupted(WAITING_LOGS, " [x] kern.critical:A critical kernel error",
                                      " [x] cron.critical:cron failed"),
            "kern.* *.critical": interrupted(WAITING_LOGS, " [x] kern.critical:A critical kernel error",
                                             " [x] cron.critical:cron failed", " [x] kern.info:booted"),
            "*.rabbit": interrupted(WAITING_LOGS, " [x] red.rabbit:Hello"),
            "lazy.#": interrupted(WAITING_LOGS),
        },
    },
    rpc: {
        "rpc_client.py": ok(" [x] Requesting fib(30)", " [.] Got 832040"),
        "rpc_server.py": {"stdout": [" [x] Awaiting RPC requests", " [.] fib(30)"], "status": KEYBOARD_INTERRUPT,
                          "stderr": "KeyboardInterrupt"},
    },
}


@pytest.fixture
def rabbitmq_tutorials(rabbitmq, tmp_path):
    """The tutorials for real pika, connecting to the private broker."""
    directory = tmp_path / "rabbitmq"
    directory.mkdir()
    parameters = f'pika.ConnectionParameters(host="127.0.0.1", port={rabbitmq.port}),'
    for name in UPSTREAM:
        (directory / name).write_text(revert((TUTORIALS / name).read_text(), parameters))
    backend = Backend("rabbitmq", directory, dict(os.environ))
    yield backend
    backend.kill_all()


@pytest.fixture
def shmq_tutorials(namespace):
    backend = Backend("shmq", TUTORIALS, dict(os.environ, SHMQ_NAMESPACE=namespace))
    yield backend
    backend.kill_all()


@pytest.mark.parametrize("tutorial", list(EXPECTED), ids=lambda t: t.__name__)
def test_tutorial_runs_on_shmq_as_on_rabbitmq(tutorial, rabbitmq_tutorials, shmq_tutorials):
    on_rabbitmq = tutorial(rabbitmq_tutorials)
    on_shmq = tutorial(shmq_tutorials)
    assert on_shmq == on_rabbitmq
    assert on_rabbitmq == EXPECTED[tutorial]


# ------------------------------------------- what the tutorials rely on, probed


def tutorial_calls(pika_module: Any, connect: Callable[[], Any]) -> Dict[str, Any]:
    """The calls the tutorials make beyond the basics: quorum queues (with
    RabbitMQ's checks on their properties), `DeliveryMode.Persistent`, and
    `process_data_events` dispatching consumer callbacks."""
    seen: Dict[str, Any] = {}
    for name, kw in (("non-durable", dict(durable=False)), ("exclusive", dict(durable=True, exclusive=True)),
                     ("auto-delete", dict(durable=True, auto_delete=True)),
                     ("all three", dict(exclusive=True, auto_delete=True))):
        try:
            connect().channel().queue_declare(queue="tq", arguments={"x-queue-type": "quorum"}, **kw)
            seen[name] = "declared"
        except pika_module.exceptions.ChannelClosedByBroker as e:
            seen[name] = (e.reply_code, e.reply_text)
    connection = connect()
    ch = connection.channel()
    declared = ch.queue_declare(queue="tq", durable=True, arguments={"x-queue-type": "quorum"}).method
    seen["declare-ok"] = (declared.queue, declared.message_count, declared.consumer_count)
    got: List[Any] = []
    ch.basic_consume(queue="tq", on_message_callback=lambda c, m, p, body: got.append((body, p.delivery_mode)),
                     auto_ack=True)
    began = time.monotonic()
    connection.process_data_events(time_limit=0.3)  # nothing to dispatch: waits out the limit
    seen["idle wait"] = (got[:], 0.25 <= time.monotonic() - began < 2)
    publisher = connect()
    props = pika_module.BasicProperties(delivery_mode=pika_module.DeliveryMode.Persistent)
    seen["delivery_mode stored"] = (props.delivery_mode, type(props.delivery_mode) is int)
    publisher.channel().basic_publish(exchange="", routing_key="tq", body=b"one", properties=props)
    began = time.monotonic()
    while not got and time.monotonic() - began < 10:
        connection.process_data_events(time_limit=None)  # returns once something was dispatched
    seen["dispatched"] = (got[:], time.monotonic() - began < 5)
    seen["enum"] = [(m.name, m.value, isinstance(m, int)) for m in pika_module.DeliveryMode]
    ch.queue_delete(queue="tq")
    publisher.close()
    connection.close()
    # shmq's native publishers belong to this thread: collect the channels
    # the refused declares left in reference cycles now, not on whatever
    # thread the collector runs next.
    gc.collect()
    return seen


def test_quorum_queues_delivery_mode_and_process_data_events_as_pika(rabbitmq, namespace):
    import pika

    import shmq

    on_rabbitmq = tutorial_calls(pika, rabbitmq.connect)
    on_shmq = tutorial_calls(shmq, lambda: shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)))
    assert on_shmq == on_rabbitmq
    refused = "PRECONDITION_FAILED - invalid property '{}' for queue 'tq' in vhost '/'"
    assert on_rabbitmq == {
        "non-durable": (406, refused.format("non-durable")),
        "exclusive": (406, refused.format("exclusive-owner")),
        "auto-delete": (406, refused.format("auto-delete")),
        "all three": (406, refused.format("auto-delete")),
        "declare-ok": ("tq", 0, 0),
        "idle wait": ([], True),
        "delivery_mode stored": (2, True),
        "dispatched": ([(b"one", 2)], True),
        "enum": [("Transient", 1, False), ("Persistent", 2, False)],
    }
