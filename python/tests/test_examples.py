"""The Python examples end to end, including Python <-> Rust pairs.

RabbitMQ's tutorials (examples/python/tutorials/) are run by
test_tutorials.py, against shmq and against RabbitMQ."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples/python"


def start(namespace, argv, ready=None):
    env = dict(os.environ, SHMQ_NAMESPACE=namespace, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ready:
        line = proc.stdout.readline()
        assert ready in line, line + proc.stderr.read()
    return proc


def py(name, *args):
    return [sys.executable, str(EXAMPLES / name), *args]


def run(namespace, argv):
    env = dict(os.environ, SHMQ_NAMESPACE=namespace)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.fixture(scope="session")
def rust_examples():
    subprocess.run(["cargo", "build", "--quiet", "--examples"], cwd=REPO, check=True)
    return REPO / "target/debug/examples"


def test_seed_scenarios(namespace):
    email = start(namespace, py("notification_service.py", "email", "1"), ready="waiting")
    sms = start(namespace, py("notification_service.py", "sms", "1"), ready="waiting")
    run(namespace, py("register_user.py", "bob@example.com"))
    assert "sent welcome email to bob@example.com" in email.communicate(timeout=30)[0]
    assert "sent welcome sms to bob@example.com" in sms.communicate(timeout=30)[0]
    run(namespace, py("place_order.py", "2"))
    out = run(namespace, py("inventory_service.py", "2"))
    assert "order-1" in out and "order-2" in out


def test_python_producer_rust_consumer_and_the_reverse(namespace, rust_examples):
    rust_receiver = start(namespace, [str(rust_examples / "receive"), "1"], ready="Waiting")
    run(namespace, py("tutorials/send.py"))
    assert " [x] Received Hello World!" in rust_receiver.communicate(timeout=30)[0]
    # The tutorial's receive.py runs until Ctrl-C.
    py_receiver = start(namespace, py("tutorials/receive.py"), ready="Waiting")
    run(namespace, [str(rust_examples / "send")])
    watchdog = threading.Timer(30, py_receiver.kill)  # bounds the readline
    watchdog.start()
    try:
        assert py_receiver.stdout.readline() == " [x] Received Hello World!\n"
    finally:
        watchdog.cancel()
        py_receiver.send_signal(signal.SIGINT)
        out, err = py_receiver.communicate(timeout=30)
    assert (out, py_receiver.returncode) == ("Interrupted\n", 0), err
