"""What the test run imports is the installed wheel (scripts/test.sh builds
an abi3 wheel with maturin and installs it into a fresh venv), not the
source tree: a module missing from the wheel fails here and in the tests
that use it. Run outside scripts/test.sh, only the checks that hold for any
install are made."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

import pytest

import shmq

SOURCE = Path(__file__).resolve().parents[1] / "shmq"


def test_every_module_of_the_source_tree_is_installed():
    installed = Path(shmq.__file__).resolve().parent
    assert installed != SOURCE.resolve(), "the source tree was imported, not an installed package"
    for module in sorted(p.name for p in SOURCE.glob("*.py")):
        assert (installed / module).exists(), f"{module} is not in the installed package"
    assert (installed / "py.typed").exists()
    assert importlib.metadata.version("shmq") == "0.1.0"


@pytest.mark.skipif(not os.environ.get("SHMQ_EXPECT_WHEEL"), reason="scripts/test.sh sets SHMQ_EXPECT_WHEEL")
def test_the_wheel_is_abi3_in_a_venv():
    assert sys.prefix != sys.base_prefix, "not running in a venv"
    assert Path(shmq.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert shmq._native.__file__.endswith(".abi3.so"), shmq._native.__file__
