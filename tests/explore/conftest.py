"""Fixtures of the explorer tests: the explorer of the shared trained LeNet-5 run and its API
through Starlette's TestClient."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cnnlab.explore.api import create_app
from cnnlab.explore.explorer import Explorer
from cnnlab.explore.target import load_target


@pytest.fixture(scope="session")
def explorer(trained_run, cache_dir) -> Explorer:
    """The explorer of the trained run (its test split from the subset cache)."""
    return Explorer(load_target(trained_run), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def client(explorer):
    """The API of the trained run, in-process."""
    with TestClient(create_app(explorer)) as test_client:
        yield test_client
