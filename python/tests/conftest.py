import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def namespace():
    """A fresh namespace directory under /dev/shm, removed afterwards."""
    path = f"/dev/shm/shmq-pytest-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
