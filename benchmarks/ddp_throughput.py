"""One process with 2 threads against 2 processes with 1 thread each (DDP over gloo): LeNet-5
on the full MNIST, images per second and seconds to 99% test accuracy; prints one JSON
document.

    python benchmarks/ddp_throughput.py [--seeds 0 1] [--epochs 3]

Both run the default recipe (``cnnlab.fit``: Adam, one-cycle to 1e-2, global batch 128,
3 epochs, 54,000 training digits and 6,000 for validation) in fresh processes: one
``python`` process with ``OMP_NUM_THREADS=2``, and two processes started by torchrun
(``python -m torch.distributed.run --standalone --nproc-per-node 2``, ``OMP_NUM_THREADS=1``)
that each train on half of every batch and average their gradients with DDP. Test accuracy
is measured after every epoch (sharded over the processes, outside the epoch's seconds).
Seconds are the history's training seconds (the validation pass included); images/s is
54,000 x epochs over those seconds; wall seconds are the whole command's, start-up and data
loading included. Configurations alternate per seed so that load from other processes hits
both alike; the load average is recorded.

``--worker OUT.json`` is the training itself (run by the configurations above).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from cnnlab.data.datasets import load_dataset

sys.path.insert(0, str(Path(__file__).parent))
from epoch_accuracy import fit_with_test_accuracy, seconds_to
from machine import add_seeds_argument, benchmark_parser, cpu_name, load_average, timed_run

TARGET = 0.99
TRAIN_IMAGES = 54_000  # 90% of the 60,000 training digits


def worker(out: Path, seed: int, epochs: int) -> None:
    data = load_dataset("mnist")
    rows = fit_with_test_accuracy("lenet5", data, seed=seed, epochs=epochs)
    if os.environ.get("RANK", "0") != "0":
        return
    seconds = rows[-1]["train_seconds"]
    for row in rows:
        row["train_seconds"] = round(row["train_seconds"], 2)
    out.write_text(
        json.dumps(
            {
                "threads_per_process": torch.get_num_threads(),
                "epochs": rows,
                "seconds_to_99": seconds_to(rows, TARGET),
                "images_per_second": round(TRAIN_IMAGES * len(rows) / seconds),
            }
        )
    )


CONFIGS = {
    "1 process x 2 threads": ([], "2"),
    "2 processes x 1 thread": (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
        "1",
    ),
}


def run_config(name: str, seed: int, epochs: int, folder: Path) -> dict:
    launcher, threads = CONFIGS[name]
    out = folder / f"{name.replace(' ', '_')}-{seed}.json"
    command = [
        sys.executable,
        *launcher,
        __file__,
        "--worker",
        str(out),
        "--seed",
        str(seed),
        "--epochs",
        str(epochs),
    ]
    wall, _ = timed_run(command, env={**os.environ, "OMP_NUM_THREADS": threads})
    return {"config": name, "seed": seed, **json.loads(out.read_text()), "wall_seconds": wall}


def main() -> None:
    parser = benchmark_parser(__doc__)
    add_seeds_argument(parser, (0,))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.seed, args.epochs)
        return
    load_dataset("mnist")  # fetched and verified before anything is timed
    load = [load_average()]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for name in CONFIGS:
                results.append(run_config(name, seed, args.epochs, Path(folder)))
                load.append(load_average())
    print(
        json.dumps(
            {
                "benchmark": "ddp_throughput",
                "model": "lenet5",
                "data": "mnist",
                "recipe": "default (adam, onecycle 1e-2, global batch 128)",
                "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__},
                "load_average_1min": load,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
