"""The anchor: tuomaso/train_mnist_fast's final network and recipe, hand-written in plain torch.

github.com/tuomaso/train_mnist_fast, ``8_Final_00s76.ipynb`` (99.04% mean test accuracy in one
epoch): conv 5x5 24, max pool 2, ReLU, conv 3x3 32, max pool 2, ReLU, fc 256, ReLU, fc 10;
Adam lr 0.01, betas (0.7, 0.9), one-cycle (torch's OneCycleLR, no momentum cycling), batch 256,
batches taken in order without shuffling, inputs normalised with mean 0.1307 / std 0.3081,
the whole dataset in memory as one float tensor. Its "more epochs and shifts" variant for
99.5% adds random integer shifts of up to ``--shift`` pixels (zero fill) and reshuffles the
examples every epoch.

It uses torch and numpy only (no cnnlab): the MNIST IDX files are read from the folder
``cnnlab data fetch mnist`` fills (``--mnist DIR``). Run as a script, its wall time is the
whole job (imports, data, training, test). Prints one JSON document:

    python benchmarks/anchor_mnist.py --mnist ~/.cache/cnnlab/mnist [--epochs 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (big-endian header: magic, then one int32 per dimension) as a uint8 tensor."""
    raw = path.read_bytes()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    pixels = np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
    return torch.from_numpy(pixels.copy())


def load_mnist(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised float images ``(N, 1, 28, 28)`` and int64 labels, train and test."""

    def images(name: str) -> torch.Tensor:
        x = read_idx(folder / name).float().div_(255.0).unsqueeze(1)  # N x 1 x 28 x 28
        return (x - 0.1307) / 0.3081

    def labels(name: str) -> torch.Tensor:
        return read_idx(folder / name).long()

    return (
        images("train-images-idx3-ubyte"),
        labels("train-labels-idx1-ubyte"),
        images("t10k-images-idx3-ubyte"),
        labels("t10k-labels-idx1-ubyte"),
    )


class Net(nn.Module):
    """The anchor's network, exactly as its notebook writes it (log-softmax output)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5, 1)
        self.conv2 = nn.Conv2d(24, 32, 3, 1)
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # N x 24 x 12 x 12
        x = F.relu(F.max_pool2d(self.conv2(x), 2))  # N x 32 x 5 x 5
        x = F.relu(self.fc1(torch.flatten(x, 1)))  # N x 256
        return F.log_softmax(self.fc2(x), dim=1)


def shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each image moved by a random whole number of pixels in [-max_shift, max_shift] along
    each axis, zero (background) fill. Shape: ``(N, 1, 28, 28) -> (N, 1, 28, 28)``."""
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=float(x.min()))  # N x 1 x H+2s x W+2s
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n))
    rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1).expand(n, 1, h, w + 2 * max_shift)
    cropped = pad.gather(2, rows)  # N x 1 x H x W+2s
    cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w).expand(n, 1, h, w)
    return cropped.gather(3, cols)  # N x 1 x H x W


def train(
    data: tuple[torch.Tensor, ...], epochs: int = 1, seed: int = 0, max_shift: int = 0
) -> dict:
    """Train the anchor; cumulative training seconds and test accuracy after each epoch (the
    test evaluation is outside the timed training)."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = Net()
    batch_size, lr = 256, 1e-2
    steps_per_epoch = (len(x_train) - 1) // batch_size + 1
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.7, 0.9))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps_per_epoch * epochs, cycle_momentum=False
    )
    rows, seconds = [], 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train)) if epoch else torch.arange(len(x_train))
        for i in range(steps_per_epoch):
            batch = order[i * batch_size : (i + 1) * batch_size]
            x = x_train[batch]
            if max_shift:
                x = shift(x, max_shift)
            loss = F.nll_loss(model(x), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        seconds += time.perf_counter() - start
        accuracy = test(model, x_test, y_test)
        rows.append({"epoch": epoch + 1, "train_seconds": seconds, "test_accuracy": accuracy})
    return {"epochs": rows, "train_seconds": seconds, "test_accuracy": rows[-1]["test_accuracy"]}


def test(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy in batches of 2,000, as the notebook evaluates."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_test), 2000):
            correct += int((model(x_test[i : i + 2000]).argmax(1) == y_test[i : i + 2000]).sum())
    return correct / len(y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=Path, default=Path.home() / ".cache" / "cnnlab" / "mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=int, default=0, help="random shifts of up to N pixels")
    args = parser.parse_args()
    result = train(load_mnist(args.mnist), args.epochs, args.seed, args.shift)
    print(json.dumps({"anchor": "tuomaso/train_mnist_fast", **vars(args), **result}, default=str))


if __name__ == "__main__":
    main()
