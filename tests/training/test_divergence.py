"""Divergence stops training with one line naming only files that exist; no checkpoint ever
holds non-finite weights; a finite explosion is caught; a diverged run can be rescued."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from cnnlab.training.callbacks import Callback
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.divergence import DIVERGED_FILE, DivergedError, loss_bound
from cnnlab.training.run import fit

SMALL = ("--data", "mnist-subset", "--per-class", "40", "--batch-size", "16", "--no-progress")


def _named_files(line: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(/\S+\.(?:safetensors|json))", line)]


def _all_finite(run: Path) -> None:
    for checkpoint in run.glob("*.safetensors"):
        state = load_checkpoint(checkpoint).model_state
        assert all(torch.isfinite(v).all() for v in state.values()), checkpoint


def test_non_finite_loss_names_only_files_that_exist(cli, expect_error, tmp_path):
    out = tmp_path / "run"
    status, _, err = cli(
        "train", "lenet5", *SMALL, "--out", out, "--optimizer", "sgd", "--lr", "1e30",
        "--schedule", "constant",
    )  # fmt: skip
    line = expect_error(status, err, "expected a finite loss, received loss=", "--lr")
    assert not (out / "last.safetensors").exists()  # diverged in epoch 1: never written
    assert "no checkpoint was written" in line
    for path in _named_files(line):
        assert path.exists(), (path, line)
    _all_finite(out)
    assert (out / DIVERGED_FILE).is_file()


def test_a_loss_exploding_while_finite_is_caught_and_the_run_rescued(cli, expect_error, tmp_path):
    out = tmp_path / "run"
    train = ("train", "lenet5", *SMALL, "--out", out, "--epochs", "2", "--optimizer", "adam")
    status, _, err = cli(*train, "--lr", "1e6")
    line = expect_error(status, err, "median loss", "lower --lr", f"--resume {out} --lr 0.01")
    bound = float(re.search(r"typical loss below (\S+)", line).group(1))
    assert bound == pytest.approx(loss_bound(10), rel=1e-2)
    median = float(re.search(r"median loss of (\S+)", line).group(1))
    assert median > bound
    for path in _named_files(line):
        assert path.exists(), (path, line)
    _all_finite(out)
    record = json.loads((out / DIVERGED_FILE).read_text())
    assert record["lr"] == 1e6 and math.isfinite(record["loss"])
    # a rescue: the same run with a sane rate, from its last good checkpoint or the start
    status, _, err = cli("train", "--resume", out, "--lr", "0.01", "--no-progress")
    assert status == 0, err
    assert not (out / DIVERGED_FILE).exists()
    assert json.loads((out / "config.json").read_text())["config"]["lr"] == 0.01
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history["loss"]) == 2 and history["val_accuracy"][-1] > 0.5
    assert max(history["lr"]) <= 0.01 * (1 + 1e-9)


def test_another_lr_for_a_healthy_run_is_refused(cli, expect_error, tmp_path):
    out = tmp_path / "run"
    status, _, err = cli("train", "lenet5", *SMALL, "--out", out, "--epochs", "1")
    assert status == 0, err
    status, _, err = cli("train", "--resume", out, "--lr", "0.5")
    expect_error(status, err, "expected --lr 0.01", "received --lr 0.5", "diverged")


def test_a_rescue_from_a_checkpoint_scales_the_schedule(tmp_path, cache_dir, monkeypatch):
    """The rescue continues from the last checkpoint with every rate of the optimizer and
    the one-cycle schedule scaled to the new --lr."""
    from cnnlab.training import loop
    from cnnlab.training.run import resume

    options = {"epochs": 2, "batch_size": 16, "per_class": 40, "optimizer": "adam", "lr": 0.01}
    reference = tmp_path / "reference"
    fit("lenet5", "mnist-subset", out=reference, cache_dir=cache_dir, verbose=False, **options)
    lrs = json.loads((reference / "history.json").read_text())["history"]["lr"]
    out = tmp_path / "run"
    original, calls = loop.Trainer._train_step, {"n": 0}

    def dies_in_epoch_2(self, *step):
        calls["n"] += 1
        if calls["n"] > self.steps_per_epoch + 2:
            raise KeyboardInterrupt  # after the checkpoint at the end of epoch 1
        return original(self, *step)

    monkeypatch.setattr(loop.Trainer, "_train_step", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, **options)
    monkeypatch.setattr(loop.Trainer, "_train_step", original)
    (out / DIVERGED_FILE).write_text("{}")  # as if it had diverged after that checkpoint
    history = resume(out, cache_dir=cache_dir, verbose=False, lr=0.001)
    assert history.history["lr"][0] == lrs[0]  # epoch 1, trained before the rescue
    assert history.history["lr"][1] == pytest.approx(lrs[1] / 10, rel=1e-6)


class _Poison(Callback):
    """Turns one weight into NaN at the end of the first epoch (a stand-in for a bad step)."""

    key = "poison"

    def on_epoch_end(self, trainer, epoch, logs):
        with torch.no_grad():
            next(trainer.model.parameters()).view(-1)[0] = math.nan


def test_non_finite_weights_are_never_saved(tmp_path, cache_dir):
    out = tmp_path / "run"
    with pytest.raises(DivergedError, match=r"finite weights, received NaN or inf in \S+"):
        fit(
            "lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, epochs=2,
            batch_size=16, per_class=40, callbacks=[_Poison()],
        )  # fmt: skip
    _all_finite(out)
    assert not (out / "last.safetensors").exists()  # the end of epoch 1 was not saved


def test_a_healthy_run_never_trips_the_bound(subset):
    history = fit("lenet5", subset, verbose=False, epochs=1, lr=0.05, optimizer="adam")
    assert max(history.history["loss"]) < loss_bound(10)
