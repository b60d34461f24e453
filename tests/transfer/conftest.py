"""Fixtures of the transfer tests: a LeNet-5 trained on digits 0-4 of the MNIST subset."""

from __future__ import annotations

from pathlib import Path

import pytest

from run_helpers import trained_subset_run


@pytest.fixture(scope="session")
def source_run(tmp_path_factory, cache_dir) -> Path:
    """LeNet-5 trained for 2 epochs on digits 0-4 of ``mnist-subset`` (shared, do not modify)."""
    return trained_subset_run(
        tmp_path_factory, cache_dir, name="transfer", epochs=2, classes="0,1,2,3,4"
    )
