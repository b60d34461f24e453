"""Training end to end on the real-MNIST subset: run directory, history, callbacks, NaN."""

import csv
import json
import math

import pytest
import torch

from cnnlab.errors import ConfigError, TrainingError
from cnnlab.runs import load_run
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit


def test_run_directory_follows_the_contract(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {
        "config.json",
        "history.json",
        "history.csv",
        "best.safetensors",
        "last.safetensors",
        "curves.png",
    } <= names
    history = json.loads((trained_run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert set(history["history"]) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    }
    rows = list(csv.DictReader((trained_run / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(history["history"]["val_accuracy"][-1])
    config = json.loads((trained_run / "config.json").read_text())
    assert config["config"]["model"] == "lenet5" and config["meta"]["classes"] == list("0123456789")


def test_learns_the_digits(trained_run):
    run = load_run(trained_run)
    history = run.history.history
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9  # 3600 digits, 3 epochs


def test_best_checkpoint_is_the_best_epoch(trained_run):
    run = load_run(trained_run)
    scores = run.history.history["val_accuracy"]
    best = load_checkpoint(trained_run / "best.safetensors").meta
    assert best["epoch"] == 1 + scores.index(max(scores))
    assert best["val_accuracy"] == max(scores)


def test_history_object_mirrors_keras(subset):
    history = fit("lenet5", subset, verbose=False, epochs=2, batch_size=256)
    assert history.epoch == [1, 2]
    assert (
        len(history.history["val_loss"]) == 2 and history.history["lr"][-1] < 1e-2 / 100
    )  # one-cycle annealed


def test_existing_run_is_never_overwritten(run_copy, cache_dir):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    with pytest.raises(ConfigError, match=r"which holds a run \(use --resume"):
        fit("lenet5", "mnist-subset", out=run_copy, cache_dir=cache_dir, verbose=False)
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, cache_dir):
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"received loss=(nan|inf) at epoch 1 step \d+") as info:
        fit(
            "lenet5",
            "mnist-subset",
            out=out,
            cache_dir=cache_dir,
            verbose=False,
            optimizer="sgd",
            lr=1e30,
            schedule="constant",
            checkpoint_every=1,
        )
    step = int(str(info.value).split(" step ")[1].split()[0])
    kept = load_checkpoint(out / "last.safetensors")
    assert kept.training["step"] == step - 1
    assert all(torch.isfinite(v).all() for v in kept.model_state.values())


def test_early_stopping_stops(subset):
    # a constant learning rate far too small: val_loss barely moves, patience 1 ends it early
    history = fit(
        "lenet5",
        subset,
        verbose=False,
        epochs=6,
        optimizer="sgd",
        lr=1e-9,
        schedule="constant",
        monitor="val_loss",
        early_stopping=1,
    )
    assert len(history.epoch) < 6
    assert not any(math.isnan(v) for v in history.history["val_loss"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_every_optimizer_trains(subset, optimizer):
    lr = {"sgd": 0.1, "momentum": 0.03, "nesterov": 0.03, "rmsprop": 1e-3}.get(optimizer, 2e-3)
    batch_size = 32 if optimizer == "sgd" else 64  # plain SGD needs more steps in one epoch
    history = fit(
        "lenet5",
        subset,
        verbose=False,
        epochs=1,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        schedule="constant",
        label_smoothing=0.1,
        weight_decay=1e-4,
    )
    assert history.history["val_accuracy"][0] > 0.5  # chance is 0.1
