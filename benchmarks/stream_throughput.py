"""Training throughput on an image folder: streamed from the files vs held in memory.

Writes the first ``--images`` MNIST training digits as PNG files into a temporary folder (one
sub-folder per digit; a fixed 10% is held out as the test split), then trains LeNet-5 for one
epoch on it with ``fit`` (the default recipe, batch 128, no validation split): once with the
decoded images in memory and once streamed, decoded batch by batch by ``--workers`` DataLoader
processes (each also with other worker counts given). Rounds alternate between the settings so
that load from other processes hits all alike; the median round is reported. Images per second
are training images / epoch seconds (from the run's history). Also timed: the first, uncached
load of each kind (decoding every file into memory; the streaming index pass, which decodes
every file once for its pixel statistics and to find bad files) and the time to decode one file
as a worker does. Prints one JSON document.

    .venv/bin/python benchmarks/stream_throughput.py [--images 20000] [--rounds 3] \
        [--workers 2 1 0] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from cnnlab.data.datasets import load_dataset
from cnnlab.data.folders import TEST_FRACTION
from cnnlab.data.image_files import FolderOptions, ImageFiles
from cnnlab.training.run import fit

FOLDER_OPTIONS = {"image_size": [28, 28], "channels": 1}  # MNIST's size, padded for LeNet-5


def write_png_folder(root: Path, count: int) -> int:
    """The first ``count`` MNIST training digits as ``root/<digit>/<index>.png``."""
    train = load_dataset("mnist").train
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
    for i in range(count):
        label = int(train.labels[i])
        Image.fromarray(train.images[i, 0].numpy(), "L").save(root / str(label) / f"{i:05d}.png")
    return count


def first_load_seconds(folder: Path, cache: Path, stream: bool, workers: int) -> float:
    started = time.perf_counter()
    load_dataset(str(folder), cache, stream=stream, workers=workers, **FOLDER_OPTIONS)
    return time.perf_counter() - started


def decode_microseconds(folder: Path, count: int = 2000) -> float:
    """Microseconds to decode one file as a streaming worker does (in this process)."""
    paths = sorted(str(p) for p in folder.rglob("*.png"))[:count]
    files = ImageFiles(paths, FolderOptions(tuple(FOLDER_OPTIONS["image_size"]), 1))
    started = time.perf_counter()
    for i in range(len(files)):
        files[i]
    return (time.perf_counter() - started) / len(files) * 1e6


def epoch_images_per_second(
    folder: Path, cache: Path, stream: bool, workers: int, train_images: int
) -> float:
    """One epoch of ``fit``; training images per second of the epoch."""
    history = fit(
        "lenet5",
        str(folder),
        cache_dir=cache,
        verbose=False,
        epochs=1,
        val_split=0.0,
        monitor="loss",
        stream=stream,
        workers=workers,
        **FOLDER_OPTIONS,
    )
    return train_images / history.history["seconds"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="digits written as PNG")
    parser.add_argument("--rounds", type=int, default=3, help="epochs per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1, 0], help="streamed runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # the training process's; workers use one each

    root = Path(tempfile.mkdtemp(prefix="cnnlab-stream-bench-"))
    folder, cache = root / "digits", root / "cache"
    started = time.perf_counter()
    write_png_folder(folder, args.images)
    train_images = args.images - max(1, round(args.images * TEST_FRACTION))  # test: fixed 10%
    write_seconds = time.perf_counter() - started
    first_loads = {
        "in_memory_decode_s": first_load_seconds(folder, cache, False, args.workers[0]),
        "stream_index_pass_s": first_load_seconds(folder, cache, True, args.workers[0]),
    }
    decode_us = decode_microseconds(folder)
    settings = {"in_memory": (False, args.workers[0])}
    settings.update({f"streamed_workers_{w}": (True, w) for w in args.workers})
    epoch_images_per_second(folder, cache, False, args.workers[0], train_images)  # warm-up
    load_before = os.getloadavg()[0]
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (stream, workers) in settings.items():
            rates[name].append(
                epoch_images_per_second(folder, cache, stream, workers, train_images)
            )
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        json.dumps(
            {
                "benchmark": "stream_throughput",
                "model": "lenet5",
                "images_written": args.images,
                "train_images": train_images,
                "image_size": FOLDER_OPTIONS["image_size"],
                "batch_size": 128,
                "write_png_s": round(write_seconds, 2),
                "first_load_s": {k: round(v, 2) for k, v in first_loads.items()},
                "decode_us_per_file": round(decode_us, 1),
                "images_per_s": {k: round(v, 1) for k, v in median.items()},
                "streamed_vs_in_memory": {
                    k: round(v / median["in_memory"], 3) for k, v in median.items()
                },
                "rounds_images_per_s": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
                "torch_threads": torch.get_num_threads(),
                "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
