"""The Python examples end to end, including Python <-> Rust pairs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples/python"


def start(namespace, argv, ready=None):
    env = dict(os.environ, SHMQ_NAMESPACE=namespace)
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


def test_tutorial_one(namespace):
    receiver = start(namespace, py("receive.py", "1"), ready="Waiting")
    assert "Sent 'Hello World!'" in run(namespace, py("send.py"))
    assert " [x] Received Hello World!" in receiver.communicate(timeout=30)[0]


def test_tutorial_two_two_workers(namespace):
    workers = [start(namespace, py("worker.py", "2"), ready="Waiting") for _ in range(2)]
    for i in range(4):
        run(namespace, py("new_task.py", f"task {i}."))
    outs = [w.communicate(timeout=60)[0] for w in workers]
    received = sorted(l.split("Received ")[1] for o in outs for l in o.splitlines() if "Received" in l)
    assert received == [f"task {i}." for i in range(4)]


def test_tutorials_three_to_five(namespace):
    logs = start(namespace, py("receive_logs.py", "1"), ready="Waiting")
    direct = start(namespace, py("receive_logs_direct.py", "--count", "1", "error"), ready="Waiting")
    topic = start(namespace, py("receive_logs_topic.py", "--count", "1", "*.critical"), ready="Waiting")
    run(namespace, py("emit_log.py", "hello all"))
    run(namespace, py("emit_log_direct.py", "info", "ignored"))
    run(namespace, py("emit_log_direct.py", "error", "disk full"))
    run(namespace, py("emit_log_topic.py", "kern.info", "ignored"))
    run(namespace, py("emit_log_topic.py", "kern.critical", "panic"))
    assert " [x] hello all" in logs.communicate(timeout=30)[0]
    assert " [x] error:disk full" in direct.communicate(timeout=30)[0]
    assert " [x] kern.critical:panic" in topic.communicate(timeout=30)[0]


def test_tutorial_six_rpc(namespace):
    server = start(namespace, py("rpc_server.py", "1"), ready="Awaiting")
    assert " [.] Got 832040" in run(namespace, py("rpc_client.py", "30"))
    server.communicate(timeout=30)


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
    run(namespace, py("send.py"))
    assert " [x] Received Hello World!" in rust_receiver.communicate(timeout=30)[0]
    py_receiver = start(namespace, py("receive.py", "1"), ready="Waiting")
    run(namespace, [str(rust_examples / "send")])
    assert " [x] Received Hello World!" in py_receiver.communicate(timeout=30)[0]
