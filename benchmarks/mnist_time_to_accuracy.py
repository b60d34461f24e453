"""Seconds to 99.0% MNIST test accuracy: cnnlab's default LeNet-5 recipe against a plain loop.

In one process: the default `cnnlab` recipe (``fit`` with TrainConfig's defaults) for seeds
0, 1, 2, and the plain hand-written loop of ``plain_loop.py`` (Adam 1e-3, batch 128, 3 epochs).
Test accuracy is measured after every epoch (outside the timed training). Then, as whole
commands with start-up and data loading: ``cnnlab train lenet5 --data mnist`` against
``python benchmarks/plain_loop.py``. Prints one JSON document.

    python benchmarks/mnist_time_to_accuracy.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.data.datasets import load_dataset
from cnnlab.training.callbacks import Callback
from cnnlab.training.run import fit

sys.path.insert(0, str(Path(__file__).parent))
from plain_loop import train_plain

TARGET = 0.99


class TestAccuracy(Callback):
    """Records test accuracy after each epoch (not part of the epoch's timed seconds)."""

    key = "test_accuracy"

    def __init__(self, test) -> None:
        self.test = test
        self.accuracies: list[float] = []

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        logits = trainer.engine.logits(self.test.images, trainer.preprocessing)
        self.accuracies.append((logits.argmax(1) == self.test.labels).float().mean().item())


def seconds_to_target(rows: list[dict]) -> float | None:
    return next((r["train_seconds"] for r in rows if r["test_accuracy"] >= TARGET), None)


def cnnlab_recipe(data, seed: int) -> dict:
    callback = TestAccuracy(data.test)
    history = fit("lenet5", data, verbose=False, progress=False, seed=seed, callbacks=[callback])
    seconds = 0.0
    rows = []
    for epoch, epoch_seconds, accuracy in zip(
        history.epoch, history.history["seconds"], callback.accuracies
    ):
        seconds += epoch_seconds
        rows.append({"epoch": epoch, "train_seconds": seconds, "test_accuracy": accuracy})
    images = len(history.epoch) * 54_000  # 90% of the 60,000 training digits per epoch
    return {
        "loop": "cnnlab",
        "seed": seed,
        "epochs": rows,
        "seconds_to_99": seconds_to_target(rows),
        "final_test_accuracy": rows[-1]["test_accuracy"],
        "images_per_second": images / seconds,
    }


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    data = load_dataset("mnist")
    recipe = [cnnlab_recipe(data, seed) for seed in (0, 1, 2)]
    plain = train_plain(data, epochs=3, seed=0)
    plain["seconds_to_99"] = seconds_to_target(plain["epochs"])
    plain["final_test_accuracy"] = plain["epochs"][-1]["test_accuracy"]
    with tempfile.TemporaryDirectory() as tmp:
        cli_wall = wall(
            [
                sys.executable,
                "-m",
                "cnnlab",
                "train",
                "lenet5",
                "--data",
                "mnist",
                "--out",
                os.path.join(tmp, "run"),
                "--no-progress",
            ]
        )
    plain_wall = wall([sys.executable, str(Path(__file__).parent / "plain_loop.py")])
    print(
        json.dumps(
            {
                "benchmark": "mnist_time_to_accuracy",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "load_average_1min": os.getloadavg()[0],
                "cnnlab_default_recipe": recipe,
                "plain_loop": plain,
                "all_seeds_reach_99_within_15s": all(
                    r["seconds_to_99"] is not None and r["seconds_to_99"] < 15 for r in recipe
                ),
                "wall_seconds": {"cnnlab_train_command": cli_wall, "plain_loop_script": plain_wall},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
