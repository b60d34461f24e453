"""Run the cnnlab CLI in a fresh process with the ``mnist-subset`` dataset registered.

Usage: python tests/subset_cli.py CACHE_DIR CLI_ARG...   (used by tests that kill processes)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cnnlab.cli import main
from cnnlab.data import datasets
from cnnlab.data.sources import RemoteFile, sha256_of
from conftest import SUBSET_NAME, subset_files


def register_subset() -> None:
    """Register ``mnist-subset`` in this process's dataset catalogue (as tests/conftest.py)."""
    files = tuple(RemoteFile(n, sha256_of(d), len(d)) for n, d in subset_files().items())
    datasets.DATASETS[SUBSET_NAME] = datasets.DatasetInfo(
        SUBSET_NAME, files, (), datasets.MNIST.classes, datasets.MNIST.load
    )


if __name__ == "__main__":
    register_subset()
    raise SystemExit(main([*sys.argv[2:], "--cache-dir", sys.argv[1]]))
