"""Shared fixtures: a small real-MNIST subset (first 4000 training and 1000 test digits of the
original IDX files, committed gzip-compressed under tests/fixtures/mnist-subset) registered as the
dataset ``mnist-subset``, and a run trained on it once per session; and the thread count every
test process computes with."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from cnnlab.data import datasets
from cnnlab.data.sources import RemoteFile, sha256_of

SUBSET = Path(__file__).parent / "fixtures" / "mnist-subset"
SUBSET_NAME = "mnist-subset"


def pytest_configure(config: pytest.Config) -> None:
    """Each test process computes with its share of the cores: one thread when pytest-xdist
    runs as many workers as there are cores (``make test``), every core in a plain ``pytest``
    run; a count the environment sets is kept.

    ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` say it to torch in the processes the tests
    start, and with one thread ``OPENBLAS_NUM_THREADS`` says it to NumPy's BLAS: two workers
    then never fight over two cores with spinning threads. It also makes torch's results
    independent of the machine's load: ``fit`` chooses no count from the load when
    ``OMP_NUM_THREADS`` is set (tests/test_threads.py unsets it to test that choice)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None and getattr(
        config.option, "numprocesses", None
    ):
        return  # the xdist controller runs no test: each worker sets its own count
    import torch

    from cnnlab.bridge.runtime import keep_all_freed_memory, set_blas_threads
    from cnnlab.threads import cpu_cores, requested_threads

    share = max(1, cpu_cores() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.setdefault("OMP_NUM_THREADS", str(share))
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    torch.set_num_threads(requested_threads() or share)
    # one zoo network after another: freed memory is reused, not handed back to be touched
    # fresh at 3-8 s per GiB (cnnlab.bridge.runtime); the processes tests start are left alone
    keep_all_freed_memory()
    if share == 1 and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        set_blas_threads(1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup``: each test marked ``xdist_group(NAME)`` gets its node id's
    ``@NAME`` suffix, by which pytest-xdist's scheduler sends a group to one worker.

    pytest-xdist 3.8 appends the suffix in this hook (in each worker) through an attribute
    pytest 9.2 no longer reads (pytest-dev/pytest-xdist#1386), so the marks were ignored and
    the costly module fixtures of a marked module were built in both workers. This sets the
    suffix where xdist's own did not take; it does nothing when xdist's works, and without
    ``--dist loadgroup``."""
    if not getattr(config.option, "loadgroup", False):  # set in the workers by pytest-xdist
        return
    try:
        from _pytest.nodeid import NodeId  # pytest >= 9.2: structured node ids
    except ImportError:
        return
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(names))
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)


def subset_files() -> dict[str, bytes]:
    """The subset's four IDX files, decompressed."""
    return {p.name[:-3]: gzip.decompress(p.read_bytes()) for p in sorted(SUBSET.glob("*.gz"))}


@pytest.fixture(scope="session", autouse=True)
def mnist_subset_registered():
    """Register ``mnist-subset`` in the dataset catalogue (no sources: it is placed by hand)."""
    files = tuple(
        RemoteFile(name, sha256_of(data), len(data)) for name, data in subset_files().items()
    )
    info = datasets.DatasetInfo(SUBSET_NAME, files, (), datasets.MNIST.classes, datasets.MNIST.load)
    datasets.DATASETS[SUBSET_NAME] = info
    yield info
    datasets.DATASETS.pop(SUBSET_NAME, None)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A dataset cache holding the subset, as if fetched."""
    root = tmp_path_factory.mktemp("cache")
    folder = root / SUBSET_NAME
    folder.mkdir()
    for name, data in subset_files().items():
        (folder / name).write_bytes(data)
    return root


@pytest.fixture(scope="session")
def subset(cache_dir):
    """The subset loaded as DatasetSplits (4000 train / 1000 test)."""
    return datasets.load_dataset(SUBSET_NAME, cache_dir)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cache_dir) -> Path:
    """A LeNet-5 run trained for 3 epochs on the subset (shared, do not modify)."""
    from cnnlab.training.run import fit

    out = tmp_path_factory.mktemp("runs") / "lenet5"
    fit("lenet5", SUBSET_NAME, out=out, cache_dir=cache_dir, verbose=False, epochs=3, seed=0)
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the trained run, safe to modify."""
    target = tmp_path / "run"
    shutil.copytree(trained_run, target)
    return target


@pytest.fixture
def cli(capsys, cache_dir):
    """``cli(*argv) -> (status, stdout, stderr)`` of ``cnnlab ARGV --cache-dir CACHE``."""
    from cli_helpers import run_cli

    def run(*argv: object, cache: bool = True) -> tuple[int, str, str]:
        return run_cli(capsys, *argv, *(["--cache-dir", cache_dir] if cache else []))

    return run


@pytest.fixture
def expect_error():
    """``expect_error(status, err, *fragments) -> line``: a one-line user error (exit 2)."""
    from cli_helpers import assert_one_line_error

    return assert_one_line_error
