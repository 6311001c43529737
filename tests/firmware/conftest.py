"""Fixtures for the firmware core tests: the ASan + UBSan harness, built once per session."""

from __future__ import annotations

import pytest
from qnharness import Harness, build


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    h = Harness(build(tmp_path_factory.mktemp("qnode_harness")))
    yield h
    err = h.close()
    assert "ERROR" not in err and "runtime error" not in err, err
