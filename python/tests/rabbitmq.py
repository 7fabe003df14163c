"""A private RabbitMQ broker for differential tests: the same pika script
runs against it and against shmq's pika API, and the observations are
compared.

`Broker.start()` runs Debian's rabbitmq-server (3.10.x) as the current user
on free ports, with its own node name, Erlang cookie, config and data
directory, so it neither needs nor disturbs a system broker (the package's
own node `rabbit@<host>` on 5672, if any). It calls the scripts under
/usr/lib/rabbitmq/bin directly: Debian's /usr/sbin wrappers `su` to the
`rabbitmq` user, which resets HOME and so the cookie the CLI uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional, Sequence

INSTALL_HINT = "apt-get install -y rabbitmq-server (scripts/test.sh installs it)"


class BrokerError(RuntimeError):
    """The broker is missing or did not start; the text says what to do."""


def _script(name: str) -> str:
    """The real script (not Debian's `su` wrapper in /usr/sbin)."""
    debian = Path("/usr/lib/rabbitmq/bin") / name
    if debian.exists():
        return str(debian)
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        raise BrokerError(f"{name} is not installed: the RabbitMQ differential tests need it; {INSTALL_HINT}")
    return found


def free_port() -> int:
    """A TCP port nobody listens on now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _epmd_running() -> bool:
    epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
    try:
        return subprocess.run([epmd, "-names"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Broker:
    """One private RabbitMQ node. `start()` returns once it accepts AMQP
    connections on `port`; `stop()` stops it and removes its directory.

    `plugins` names plugins to enable (none by default, as before):
    `rabbitmq_management` listens on `management_port` and
    `rabbitmq_prometheus` on `prometheus_port`, both on 127.0.0.1 (free
    ports picked here; the attributes are set whether or not the plugin is
    enabled). `extra_conf` is appended to its rabbitmq.conf (a TLS
    listener, say)."""

    def __init__(self, plugins: Sequence[str] = (), extra_conf: str = "") -> None:
        self.server = _script("rabbitmq-server")
        self.ctl = _script("rabbitmqctl")
        self.node = f"shmq-test-{os.getpid()}-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.plugins = list(plugins)
        taken = {self.port, self.dist_port}
        self.management_port = self.prometheus_port = 0
        for attr in ("management_port", "prometheus_port"):
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            setattr(self, attr, port)
        self.dir = Path(tempfile.mkdtemp(prefix="shmq-rabbitmq-"))
        self.process: Optional[subprocess.Popen] = None
        self.startup_seconds: Optional[float] = None
        self._epmd_was_running = _epmd_running()
        home = self.dir / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        (self.dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        # Our own config, so a system /etc/rabbitmq/rabbitmq.conf does not
        # apply; a low disk limit, so a nearly full /tmp does not block
        # publishers (pika would then wait for the block to lift).
        conf = "disk_free_limit.absolute = 1MB\nloopback_users.guest = true\n"
        if "rabbitmq_management" in self.plugins:
            conf += f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
        if "rabbitmq_prometheus" in self.plugins:
            conf += f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {self.prometheus_port}\n"
        (self.dir / "rabbitmq.conf").write_text(conf + extra_conf)
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = dict(
            os.environ,
            HOME=str(home),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(self.dir / "feature_flags"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def _ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.ctl, "-n", self.node, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for f in [self.dir / "stdout", *sorted((self.dir / "log").glob("*.log"))]:
            if f.exists():
                out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def start(self, timeout: float = 60) -> "Broker":
        """Start the node and wait until it is up (at most `timeout` s)."""
        began = time.monotonic()
        with open(self.dir / "stdout", "wb") as out:
            self.process = subprocess.Popen([self.server], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        # `await_startup` fails at once while the node is not registered with
        # epmd yet, so poll it until it succeeds or the deadline passes.
        deadline = began + timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise BrokerError(f"rabbitmq-server exited with {self.process.returncode} during start-up:\n"
                                  f"{self.log_tail()}")
            try:
                left = max(1.0, deadline - time.monotonic())
                if self._ctl("await_startup", "--timeout", str(int(left)), timeout=left + 15).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise BrokerError(f"rabbitmq-server did not start within {timeout:.0f} s:\n{tail}")
            time.sleep(0.5)
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the node (rabbitmqctl stop, then SIGKILL to its process
        group if it lingers) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            try:
                self._ctl("stop", timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # our own session: the server and its beam.smp
                self.process.wait(timeout=30)
        if not self._epmd_was_running:
            # The node started epmd; `epmd -kill` refuses while other nodes
            # are registered, so it never pulls epmd from under another node.
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            subprocess.run([epmd, "-kill"], capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def connection_parameters(self):
        import pika

        return pika.ConnectionParameters(host="127.0.0.1", port=self.port, blocked_connection_timeout=30,
                                         connection_attempts=3, retry_delay=1)

    def connect(self):
        """A new `pika.BlockingConnection` to this broker."""
        import pika

        return pika.BlockingConnection(self.connection_parameters())
