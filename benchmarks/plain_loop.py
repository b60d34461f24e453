"""A plain, hand-written PyTorch loop for LeNet-5 on MNIST: the yardstick for cnnlab's recipe.

Adam 1e-3, batch 128, 3 epochs, tensors in memory, no schedule, no validation split, the same
LeNet-5 and the same 28x28 -> 32x32 zero padding. Prints one JSON document: per-epoch seconds
and test accuracy, images/second. Run as a script so its wall time includes start-up:

    python benchmarks/plain_loop.py [--epochs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.datasets import load_dataset
from cnnlab.models import create_model


def prepare(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 1 x 28 x 28 -> float N x 1 x 32 x 32, MNIST mean/std normalised."""
    x = F.pad(images.float() / 255.0, (2, 2, 2, 2))
    return (x - 0.1307) / 0.3081


def train_plain(data: DatasetSplits, epochs: int = 3, seed: int = 0) -> dict:
    """Train with the plain loop; per-epoch cumulative training seconds and test accuracy."""
    torch.manual_seed(seed)
    x_train, y_train = prepare(data.train.images), data.train.labels
    x_test, y_test = prepare(data.test.images), data.test.labels
    model = create_model("lenet5")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows = []
    train_seconds = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train))
        for i in range(0, len(order), 128):
            batch = order[i : i + 128]
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        train_seconds += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        rows.append({"epoch": epoch + 1, "train_seconds": train_seconds, "test_accuracy": accuracy})
    return {
        "loop": "plain",
        "epochs": rows,
        "images_per_second": epochs * len(y_train) / train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(train_plain(load_dataset("mnist"), args.epochs, args.seed)))


if __name__ == "__main__":
    main()
