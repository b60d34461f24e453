"""Full MNIST, fetched the way a user would (official mirrors, then npm), one epoch, >= 98%."""

import json
import subprocess
import sys

import pytest


def cnnlab(*args):
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.mark.e2e
def test_fetch_and_train_one_epoch_on_full_mnist(tmp_path):
    cache = tmp_path / "cache"
    fetched = cnnlab("data", "fetch", "mnist", "--cache-dir", cache, "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["path"] == str(cache / "mnist")
    again = cnnlab("data", "fetch", "mnist", "--cache-dir", cache)
    assert again.returncode == 0 and "verified and cached" in again.stdout

    result = cnnlab(
        "train",
        "lenet5",
        "--data",
        "mnist",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--cache-dir",
        cache,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["test"]["accuracy"] >= 0.98
    assert len(document["epoch"]) == 1
