"""Transfer learning on real MNIST: digits 0-4 -> digits 5-9 (seed 002's three regimes).

1. Train LeNet-5 on MNIST digits 0-4 only (``fit(..., classes="0,1,2,3,4")``).
2. For 10, 100 and 1000 labelled training examples per class of digits 5-9
   (``per_class``, drawn with the seed), train four ways on the same examples:
   - ``scratch``: a fresh LeNet-5;
   - ``head-only``: the 0-4 network, new output layer, everything else frozen
     (``finetune(..., head_only=True, cache_features=True)``);
   - ``frozen-backbone``: the convolutional backbone frozen, the whole head (F6 + output)
     trains on cached features (``freeze="all", cache_features=True``);
   - ``shallow-frozen``: the first conv block (C1) frozen (``freeze="1"``), the rest trains,
     backbone at ``lr_backbone`` = lr / 10;
   - ``full``: nothing frozen, backbone at ``lr_backbone`` = lr / 10.
3. Test accuracy on all 5-9 test digits (5139 images) of the last checkpoint, mean and
   standard deviation over seeds 0, 1, 2 (the seed draws the examples and the new weights).

Every run uses the shipped functions (``fit``, ``finetune``, ``evaluate``) with Adam and the
one-cycle schedule at lr 1e-2, no validation split; the number of epochs gives each data size
a similar number of steps. Prints one JSON document.

    python benchmarks/transfer_experiment.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.evaluation.evaluate import evaluate
from cnnlab.runs import load_run
from cnnlab.training.run import fit
from cnnlab.transfer import finetune

SOURCE_CLASSES = "0,1,2,3,4"
TARGET_CLASSES = "5,6,7,8,9"
# per class -> (batch size, epochs): about 120, 200 and 400 optimisation steps
SCHEDULE = {10: (25, 60), 100: (50, 20), 1000: (100, 8)}
REGIMES = {
    "scratch": None,
    "head-only": {"head_only": True, "cache_features": True},
    "frozen-backbone": {"freeze": "all", "cache_features": True},
    "shallow-frozen": {"freeze": "1", "lr_backbone": 1e-3},
    "full": {"freeze": "none", "lr_backbone": 1e-3},
}


def test_accuracy(run_dir: Path) -> float:
    return evaluate(load_run(run_dir, checkpoint="last")).accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--source-epochs", type=int, default=2)
    parser.add_argument("--source", type=Path, help="reuse this 0-4 run instead of training one")
    parser.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated subset")
    args = parser.parse_args()
    regimes = {name: REGIMES[name] for name in args.regimes.split(",")}
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="cnnlab-transfer-"))
    common = {"verbose": False, "val_split": 0.0, "monitor": "loss", "lr": 1e-2}
    source = args.source or root / "source-0-4"
    if args.source is None:
        fit(
            "lenet5",
            "mnist",
            out=source,
            classes=SOURCE_CLASSES,
            epochs=args.source_epochs,
            seed=0,
            **common,
        )
    source_accuracy = test_accuracy(source)
    results: dict[str, dict[str, dict[str, float | list[float]]]] = {}
    for per_class, (batch, epochs) in SCHEDULE.items():
        results[str(per_class)] = {}
        for regime, options in regimes.items():
            accuracies, seconds = [], 0.0
            for seed in range(args.seeds):
                out = root / f"{regime}-{per_class}-{seed}"
                t0 = time.perf_counter()
                train = dict(
                    classes=TARGET_CLASSES,
                    per_class=per_class,
                    seed=seed,
                    epochs=epochs,
                    batch_size=batch,
                    **common,
                )
                if options is None:
                    fit("lenet5", "mnist", out=out, **train)
                else:
                    finetune(source, "mnist", out=out, **options, **train)
                seconds += time.perf_counter() - t0
                accuracies.append(test_accuracy(out))
            results[str(per_class)][regime] = {
                "mean": statistics.mean(accuracies),
                "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                "accuracies": accuracies,
                "train_seconds_per_run": seconds / len(accuracies),
            }
    print(
        json.dumps(
            {
                "experiment": "LeNet-5, MNIST 0-4 -> 5-9",
                "source": {"classes": SOURCE_CLASSES, "test_accuracy_0_4": source_accuracy},
                "schedule": {
                    str(k): {"batch_size": b, "epochs": e} for k, (b, e) in SCHEDULE.items()
                },
                "results": results,
                "seeds": args.seeds,
                "total_seconds": time.perf_counter() - started,
                "torch_threads": torch.get_num_threads(),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
