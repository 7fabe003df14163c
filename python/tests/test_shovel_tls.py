"""Shovels over TLS (`amqps://`): a private RabbitMQ with a TLS listener that
requires a client certificate (certificates made here with openssl), and
`shmq shovel run` moving messages in both directions through it, with the
URI query keys RabbitMQ's shovel takes (cacertfile, certfile, keyfile,
verify, server_name_indication). A broker certificate from another CA is
refused: nothing moves and the shovel says why."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pika
import pytest

from rabbitmq import Broker, free_port
from test_shovel import WAIT, check_intact, drain_shmq, publish_to_shmq, runner, shovel

import shmq


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(dir: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=dir)


def make_cert(dir: Path, name: str, ca: str, san: str) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            cwd=dir)
    (dir / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
            "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=dir)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (apt-get install openssl)", pytrace=False)
    certs = tmp_path_factory.mktemp("tls")
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_cert(certs, "server", "ca", "DNS:localhost")
    make_cert(certs, "client", "ca", "DNS:shmq-shovel")
    port = free_port()
    conf = (f"listeners.ssl.1 = 127.0.0.1:{port}\n"
            f"ssl_options.cacertfile = {certs / 'ca.pem'}\n"
            f"ssl_options.certfile = {certs / 'server.pem'}\n"
            f"ssl_options.keyfile = {certs / 'server.key'}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n")
    broker = Broker(extra_conf=conf).start()
    broker.tls_port = port
    broker.certs = certs
    yield broker
    broker.stop()


def amqps_uri(broker: Any, ca: str = "ca.pem") -> str:
    c = broker.certs
    return (f"amqps://guest:guest@localhost:{broker.tls_port}/%2f?cacertfile={c / ca}&certfile={c / 'client.pem'}"
            f"&keyfile={c / 'client.key'}&verify=verify_peer&server_name_indication=localhost")


def wait_state(shmq_bin: str, namespace: str, check, name: str = "") -> Dict[str, Any]:
    """The listing of shovel `name` (or the only one) once `check` holds."""
    deadline = time.monotonic() + WAIT
    while True:
        listing = json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)
        listed = next(s for s in listing if s["name"] == name) if name else listing[0]
        if check(listed):
            return listed
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)


def test_both_directions_over_tls_with_a_client_certificate(shmq_bin, namespace, tls_broker):
    count = 300
    remote = f"tls-{uuid.uuid4().hex[:6]}"
    publish_to_shmq(namespace, "local-out", range(count))
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        connection.channel().queue_declare("local-in")
    shovel(shmq_bin, namespace, "declare", "out", "--src-uri", f"shm://{namespace}", "--src-queue", "local-out",
           "--dest-uri", amqps_uri(tls_broker), "--dest-queue", remote)
    shovel(shmq_bin, namespace, "declare", "in", "--src-uri", amqps_uri(tls_broker), "--src-queue", remote,
           "--dest-uri", f"shm://{namespace}", "--dest-queue", "local-in", "--dest-add-forward-headers")
    run = runner(shmq_bin, namespace, "out", "in")
    try:
        # Out over TLS into RabbitMQ, and back over TLS into shmq.
        received: List[Tuple[bytes, Any]] = []
        deadline = time.monotonic() + WAIT
        while len(received) < count:
            assert time.monotonic() < deadline and run.poll() is None, (len(received), run.stderr.read() if run.poll() is not None else "")
            received += drain_shmq(namespace, "local-in")
            time.sleep(0.05)
        # The runner writes its counts every so often: wait for them.
        wait_state(shmq_bin, namespace, lambda s: s["transferred"] == count, name="out")
        wait_state(shmq_bin, namespace, lambda s: s["transferred"] == count, name="in")
    finally:
        run.kill()
        run.wait()
    check_intact(received, count)
    listed = {s["name"]: s for s in json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)}
    assert "guest:***@" in listed["out"]["dest"] and "guest:guest" not in listed["out"]["dest"]


def test_a_broker_certificate_from_another_ca_is_refused(shmq_bin, namespace, tls_broker):
    publish_to_shmq(namespace, "local", range(5))
    shovel(shmq_bin, namespace, "declare", "wrong-ca", "--src-uri", f"shm://{namespace}", "--src-queue", "local",
           "--dest-uri", amqps_uri(tls_broker, ca="other-ca.pem"), "--dest-queue", "never")
    run = runner(shmq_bin, namespace, "wrong-ca")
    try:
        listed = wait_state(shmq_bin, namespace, lambda s: s.get("last_error"))
    finally:
        run.kill()
        run.wait()
    assert "certificate" in listed["last_error"].lower() or "issuer" in listed["last_error"].lower(), listed
    assert not listed["transferred"]
    assert len(drain_shmq(namespace, "local")) == 5, "nothing left the source"
    with pika.BlockingConnection(tls_broker.connection_parameters()) as connection:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare("never", passive=True)
