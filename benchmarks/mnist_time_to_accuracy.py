"""Seconds to 99.0% MNIST test accuracy: cnnlab's default LeNet-5 recipe against a plain loop.

In one process: the default `cnnlab` recipe (``fit`` with TrainConfig's defaults) for seeds
0, 1, 2, and the plain hand-written loop of ``plain_loop.py`` (Adam 1e-3, batch 128, 3 epochs).
Test accuracy is measured after every epoch (outside the timed training). Then, as whole
commands with start-up and data loading: ``cnnlab train lenet5 --data mnist`` against
``python benchmarks/plain_loop.py``. Prints one JSON document.

    python benchmarks/mnist_time_to_accuracy.py [--seeds 0 1 2] [--epochs 3]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from cnnlab.data.datasets import load_dataset

sys.path.insert(0, str(Path(__file__).parent))
from epoch_accuracy import fit_with_test_accuracy, seconds_to
from machine import add_seeds_argument, benchmark_parser, cnnlab_command, load_average, timed_run
from plain_loop import train_plain

TARGET = 0.99
TRAIN_IMAGES = 54_000  # 90% of the 60,000 training digits per epoch


def cnnlab_recipe(data, seed: int, epochs: int) -> dict:
    rows = fit_with_test_accuracy("lenet5", data, seed=seed, epochs=epochs)
    return {
        "loop": "cnnlab",
        "seed": seed,
        "epochs": rows,
        "seconds_to_99": seconds_to(rows, TARGET),
        "final_test_accuracy": rows[-1]["test_accuracy"],
        "images_per_second": len(rows) * TRAIN_IMAGES / rows[-1]["train_seconds"],
    }


def main() -> None:
    parser = benchmark_parser(__doc__)
    add_seeds_argument(parser, (0, 1, 2))
    parser.add_argument("--epochs", type=int, default=3, help="of every run and command")
    args = parser.parse_args()
    data = load_dataset("mnist")
    recipe = [cnnlab_recipe(data, seed, args.epochs) for seed in args.seeds]
    plain = train_plain(data, epochs=args.epochs, seed=0)
    plain["seconds_to_99"] = seconds_to(plain["epochs"], TARGET)
    plain["final_test_accuracy"] = plain["epochs"][-1]["test_accuracy"]
    epochs = ("--epochs", str(args.epochs))
    with tempfile.TemporaryDirectory() as tmp:
        out = ("--out", os.path.join(tmp, "run"), "--no-progress")
        cli_wall, _ = timed_run(cnnlab_command("train", "lenet5", "--data", "mnist", *epochs, *out))
    plain_wall, _ = timed_run(
        [sys.executable, str(Path(__file__).parent / "plain_loop.py"), *epochs]
    )
    print(
        json.dumps(
            {
                "benchmark": "mnist_time_to_accuracy",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "load_average_1min": load_average(),
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
