import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Tests stop example processes with Ctrl-C (SIGINT). A suite started in the
# background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT
# ignored, and an ignored signal stays ignored across exec, so those
# processes would never see it. Handled here, it is reset to the default in
# every process the tests start.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def namespace():
    """A fresh namespace directory under /dev/shm, removed afterwards."""
    path = f"/dev/shm/shmq-pytest-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbitmq():
    """A private RabbitMQ broker (Debian's rabbitmq-server) for differential
    tests, on free ports with its own node name and data directory. Yields a
    `rabbitmq.Broker`: `.connection_parameters()` is a
    `pika.ConnectionParameters`, `.connect()` a `pika.BlockingConnection`.
    Fails, never skips, when rabbitmq-server or pika is missing."""
    try:
        import pika  # noqa: F401
    except ImportError:
        pytest.fail("pika is not installed: the RabbitMQ differential tests need it (pip install pika)", pytrace=False)
    from rabbitmq import Broker, BrokerError

    try:
        broker = Broker().start()
    except BrokerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def shmq_bin():
    """The Rust `shmq` binary, for interop tests (built by `cargo build`)."""
    for candidate in [os.environ.get("SHMQ_BIN"), REPO / "target/debug/shmq", REPO / "target/release/shmq"]:
        if candidate and Path(candidate).exists():
            return str(candidate)
    subprocess.run(["cargo", "build", "--quiet", "--bin", "shmq"], cwd=REPO, check=True)
    return str(REPO / "target/debug/shmq")


def run_python(code: str, namespace: str, **kwargs) -> subprocess.Popen:
    """Starts `code` in a separate Python process with SHMQ_NAMESPACE set."""
    env = dict(os.environ, SHMQ_NAMESPACE=namespace)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
