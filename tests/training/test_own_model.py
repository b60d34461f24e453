"""Training a model of one's own: ``cnnlab train FILE.py:CALLABLE`` and ``fit(nn.Module)``, on
the real MNIST subset, then loading the run again (the file must be the one trained)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CheckpointError, ModelError
from conftest import SUBSET_NAME

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("own-model")

SUBSET_CLI = Path(__file__).parents[1] / "subset_cli.py"  # the CLI, with mnist-subset

MODEL_FILE = textwrap.dedent(
    """
    from torch import nn


    def build(num_classes=10, in_channels=1):
        return nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8 x 14 x 14
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 7 x 7
            nn.Flatten(), nn.Linear(16 * 7 * 7, num_classes),
        )
    """
)


class SmallNet(nn.Module):
    """A module of the user's, defined in a test module (not in a file given to train)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU())  # 8 x 12 x 12
        self.head = nn.Linear(8 * 12 * 12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))  # N x 1152 -> N x classes


@pytest.fixture(scope="module")
def file_run(tmp_path_factory, cache_dir) -> tuple[Path, Path]:
    """(run directory, model file) of ``cnnlab train mynet.py:build`` on the subset."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("own")
    (folder / "mynet.py").write_text(MODEL_FILE)
    argv = [sys.executable, str(SUBSET_CLI), str(cache_dir), "train", "mynet.py:build"]
    argv += ["--data", SUBSET_NAME, "--out", "run", "--epochs", "2", "--json"]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["test"]["accuracy"] > 0.85  # a small net learns the subset
    return folder / "run", folder / "mynet.py"


def test_train_from_file_records_path_and_hash(file_run):
    run_dir, model_file = file_run
    import hashlib

    model = json.loads((run_dir / "config.json").read_text())["meta"]["model"]
    assert model["source"] == "file"
    assert model["name"] == "mynet.py:build"
    assert model["file"] == str(model_file.resolve())
    assert model["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()


def test_file_run_evaluates_from_another_folder(file_run, cli, monkeypatch, tmp_path):
    run_dir, _ = file_run
    monkeypatch.chdir(tmp_path)  # the run records the file's absolute path
    status, out, err = cli("evaluate", run_dir, "--json")
    assert status == 0, err
    assert json.loads(out)["accuracy"] > 0.85


def test_changed_or_missing_file_is_refused(file_run, cli, expect_error, tmp_path):
    run_dir, model_file = file_run
    original = model_file.read_text()
    try:
        model_file.write_text(original.replace("8, 3, padding=1", "12, 3, padding=1", 1))
        status, _, err = cli("evaluate", run_dir)
        expect_error(status, err, "unchanged since the run was trained", str(model_file))
        with pytest.raises(CheckpointError, match="received a changed file"):
            cnnlab.load_run(run_dir)
        model_file.unlink()
        status, _, err = cli("evaluate", run_dir)
        expect_error(status, err, "received no such file", str(model_file))
    finally:
        model_file.write_text(original)
    assert cnnlab.load_run(run_dir).meta.model.source == "file"  # restored: loads again


def test_file_run_resumes(file_run, tmp_path, cache_dir):
    import shutil

    run_dir, _ = file_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    history = cnnlab.resume(copy, cache_dir=cache_dir, verbose=False)
    assert len(history.history["loss"]) == 2  # already complete: the saved run, unchanged


def test_file_model_with_wrong_outputs_is_refused(tmp_path, cache_dir):
    (tmp_path / "fixed.py").write_text(
        "from torch import nn\n\n\ndef build():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 3))\n"
    )
    with pytest.raises(ModelError, match=r"to give 10 outputs .*received output \(1, 3\)"):
        cnnlab.fit(f"{tmp_path}/fixed.py:build", SUBSET_NAME, cache_dir=cache_dir, verbose=False)


def test_fit_module_instance_and_reload_with_model(tmp_path, cache_dir):
    torch.manual_seed(0)
    net = SmallNet()
    out = tmp_path / "run"
    history = cnnlab.fit(net, SUBSET_NAME, out=out, cache_dir=cache_dir, verbose=False, epochs=2)
    assert history.history["val_accuracy"][-1] > 0.8
    meta = json.loads((out / "config.json").read_text())["meta"]["model"]
    assert meta["source"] == "module" and meta["name"].endswith("SmallNet")
    with pytest.raises(CheckpointError, match=r"expected model= .*received none") as info:
        cnnlab.load_run(out)
    assert "\n" not in str(info.value)
    run = cnnlab.load_run(out, model=SmallNet())
    report = cnnlab.evaluate(out, model=SmallNet(), cache_dir=cache_dir)
    assert report.accuracy > 0.8
    torch.testing.assert_close(run.model.head.weight, net.head.weight.cpu())  # trained in place


def test_fit_module_run_refused_by_the_cli(tmp_path, cache_dir, cli, expect_error):
    out = tmp_path / "run"
    cnnlab.fit(SmallNet(), SUBSET_NAME, out=out, cache_dir=cache_dir, verbose=False, epochs=1)
    status, _, err = cli("evaluate", out)
    expect_error(status, err, "expected model=", "SmallNet")
