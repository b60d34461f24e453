"""Throughput of ``fit`` against a bare loop for the same model, batch and optimizer.

Both train LeNet-5 on MNIST for one epoch with Adam at batch 128 on the 60,000 digits in
memory, in the same memory layout (the bare loop also pads and normalises each batch on the
fly, as ``fit`` does). ``fit`` includes its callbacks, metrics, checkpoints and progress
bookkeeping. Prints one JSON document.

    python benchmarks/overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch
import torch.nn.functional as F

from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.datasets import load_dataset
from cnnlab.data.preprocess import fit_preprocessing
from cnnlab.inference import to_model_layout
from cnnlab.models import create_model
from cnnlab.training.run import fit


def bare_loop(train, channels_last: bool) -> float:
    """Images/second of one epoch of a bare loop."""
    torch.manual_seed(0)
    model = create_model("lenet5")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    preprocessing = fit_preprocessing(train, (1, 32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(train))
    start = time.perf_counter()
    for i in range(0, len(order), 128):
        batch = order[i : i + 128]
        x = to_model_layout(preprocessing(train.images[batch]), channels_last)
        loss = F.cross_entropy(model(x), train.labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train) / (time.perf_counter() - start)


def fit_throughput(data: DatasetSplits, channels_last: bool) -> float:
    """Images/second of one epoch of ``fit`` (run directory, callbacks, checkpoint and all;
    no validation split, so the epoch's seconds are all training)."""
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(
            "lenet5",
            data,
            out=os.path.join(tmp, "run"),
            verbose=False,
            progress=False,
            epochs=1,
            channels_last=channels_last,
            optimizer="adam",
            schedule="constant",
            lr=1e-3,
            val_split=0.0,
            monitor="loss",
        )
    return len(data.train) / history.history["seconds"][0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load_dataset("mnist")
    train = data.train
    results = {}
    for layout, channels_last in (("channels_last", True), ("contiguous", False)):
        bare = max(bare_loop(train, channels_last) for _ in range(args.repeats))
        ours = max(fit_throughput(data, channels_last) for _ in range(args.repeats))
        results[layout] = {
            "bare_images_per_second": bare,
            "fit_images_per_second": ours,
            "fit_over_bare": ours / bare,
        }
    print(
        json.dumps(
            {
                "benchmark": "overhead",
                "threads": torch.get_num_threads(),
                "load_average_1min": os.getloadavg()[0],
                "best_of": args.repeats,
                **results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
