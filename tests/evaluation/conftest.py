"""Fixtures of the evaluation tests: a second run (another seed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def second_run(tmp_path_factory, cache_dir) -> Path:
    """Another LeNet-5 on ``mnist-subset`` (seed 1, 2 epochs): an ensemble member."""
    from cnnlab.training.run import fit

    out = tmp_path_factory.mktemp("evaluation") / "lenet5-seed1"
    fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, epochs=2, seed=1)
    return out
