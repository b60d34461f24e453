"""Transfer with few examples: ``finetune`` without ``--epochs`` trains enough optimiser steps
(``min_steps``), so the README's 100-digits-per-class example does not stop half trained."""

from __future__ import annotations

import json

from cnnlab.runs import read_run_config
from cnnlab.training.history import History
from cnnlab.transfer import FINETUNE_MIN_STEPS

TARGET = "5,6,7,8,9"


def _epochs(run) -> int:
    return len(History.from_dict(json.loads((run / "history.json").read_text())).epoch)


def test_finetune_without_epochs_trains_enough_steps_and_says_so(source_run, tmp_path, cli):
    out = tmp_path / "few"
    status, text, err = cli(
        "finetune", source_run, "--data", "mnist-subset", "--classes", TARGET,
        "--per-class", 20, "--head-only", "--cache-features", "--out", out, "--json",
    )  # fmt: skip
    assert status == 0, err
    # 100 images, 10 held out: 90 training images, one batch of 128 per epoch
    assert f"are 3 optimiser steps, fewer than min_steps={FINETUNE_MIN_STEPS}" in err
    assert f"training {FINETUNE_MIN_STEPS} epochs ({FINETUNE_MIN_STEPS} steps)" in err
    config = read_run_config(out)["config"]
    assert config["epochs"] == FINETUNE_MIN_STEPS and config["min_steps"] == FINETUNE_MIN_STEPS
    assert _epochs(out) == FINETUNE_MIN_STEPS
    accuracy = json.loads(text)["test"]["accuracy"]
    three = tmp_path / "three"
    status, text, err = cli(
        "finetune", source_run, "--data", "mnist-subset", "--classes", TARGET,
        "--per-class", 20, "--head-only", "--cache-features", "--out", three, "--json",
        "--epochs", 3,
    )  # fmt: skip
    assert status == 0 and "min_steps" not in err  # --epochs given: as asked
    assert _epochs(three) == 3
    assert accuracy > json.loads(text)["test"]["accuracy"] + 0.05  # enough steps help


def test_train_min_steps_raises_the_epochs(tmp_path, cache_dir, capsys):
    from cnnlab.training.run import fit

    history = fit(
        "lenet5", "mnist-subset", out=tmp_path / "run", cache_dir=cache_dir, per_class=30,
        epochs=1, batch_size=64, min_steps=10,
    )  # fmt: skip
    # 300 images, 30 held out: 270 = 5 batches of 64 an epoch -> 2 epochs for 10 steps
    assert len(history.epoch) == 2
    assert "training 2 epochs (10 steps) instead" in capsys.readouterr().err
    assert (
        len(
            fit(
                "lenet5", "mnist-subset", cache_dir=cache_dir, per_class=30, epochs=1, verbose=False
            ).epoch
        )
        == 1
    )  # fmt: skip  (train: off by default)
