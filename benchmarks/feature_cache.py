"""Seconds per epoch: training the head on cached features vs through the frozen backbone.

A LeNet-5 trained briefly on MNIST digits 0-4 (2000 per class, 1 epoch) is fine-tuned on all
training images of digits 5-9 with ``finetune(..., freeze="all")`` (backbone frozen, head F6 +
output trains): once through the frozen backbone, once with ``cache_features=True`` (the first
cached run computes and stores the features in ~/.cache/cnnlab/features unless an earlier run
of this script did) and once more reusing them. Same data, seed, batch size and epochs.
Prints one JSON document; the target is a speed-up of at least 5x per epoch.

    python benchmarks/feature_cache.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.training.run import fit
from cnnlab.transfer import finetune


def main() -> None:
    torch.set_num_threads(1)  # one thread per process: less noise on a shared 2-core machine
    root = Path(tempfile.mkdtemp(prefix="cnnlab-feature-cache-"))
    source = {"classes": "0,1,2,3,4", "per_class": 2000, "epochs": 1, "verbose": False}
    fit("lenet5", "mnist", out=root / "source", **source)  # a quick source: speed is the point
    common = {"classes": "5,6,7,8,9", "epochs": 3, "seed": 0, "verbose": False}
    runs = {}
    for name, cached in (
        ("through_backbone", False),
        ("cached_first", True),
        ("cached_reuse", True),
    ):
        t0 = time.perf_counter()
        history = finetune(
            root / "source",
            "mnist",
            out=root / name,
            freeze="all",
            cache_features=cached,
            **common,
        )
        runs[name] = {
            "seconds_per_epoch": statistics.median(history.history["seconds"]),
            "fastest_epoch_seconds": min(history.history["seconds"]),
            "val_accuracy": history.history["val_accuracy"][-1],
            "wall_seconds": time.perf_counter() - t0,
        }
    slow, fast = runs["through_backbone"], runs["cached_reuse"]
    print(
        json.dumps(
            {
                "task": "LeNet-5 0-4 -> 5-9, head (F6 + output) on all 5-9 training digits",
                "runs": runs,
                "speedup_per_epoch": slow["seconds_per_epoch"] / fast["seconds_per_epoch"],
                "speedup_fastest_epochs": slow["fastest_epoch_seconds"]
                / fast["fastest_epoch_seconds"],
                "target": 5.0,
                "torch_threads": torch.get_num_threads(),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
