"""The all-reduce of a model's gradients over gloo on 127.0.0.1 between 2 processes, and its
share of a DDP training step: LeNet-5 (61,706 float32, 247 KB) and ResNet-50 (25,557,032
float32, 102 MB); prints one JSON document.

    python benchmarks/ddp_allreduce.py [--reps 20] [--steps N] [--resnet-batch 4]

Starts 2 processes with torchrun (``python -m torch.distributed.run --standalone
--nproc-per-node 2``, one thread each), which measure, for each model:

- ``allreduce_seconds``: ``dist.all_reduce`` (sum) of one flat float32 tensor of the model's
  parameter count, the median of ``--reps`` after a warm-up (both ranks start together);
- ``step_seconds``: one training step (forward, backward, SGD) on this process's share of
  the batch (LeNet-5: 64 of a global 128 MNIST-sized images; ResNet-50: ``--resnet-batch``
  224x224 images) through ``DistributedDataParallel``, whose bucketed all-reduce overlaps
  with the backward pass, and ``compute_seconds``: the same step under ``no_sync()`` (no
  communication). The two alternate; medians of ``--steps`` each (default 30 for LeNet-5, 3
  for ResNet-50), the slower rank's.

Shares: ``allreduce / (compute + allreduce)`` (the all-reduce after the backward pass, not
overlapped) and ``(step - compute) / step`` (what communication adds to a DDP step).

``--worker OUT.json`` is the measurement itself (run by torchrun).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from cnnlab import create_model
from machine import cpu_name

MODELS = {"lenet5": ((1, 32, 32), 10, 64), "resnet50": ((3, 224, 224), 1000, None)}
STEPS = {"lenet5": 30, "resnet50": 3}  # timed steps per mode (ResNet-50 steps take seconds)


def timed(run: Callable[[], None], times: int) -> list[float]:
    """Seconds of each of ``times`` calls, both ranks starting each call together."""
    seconds = []
    for _ in range(times):
        dist.barrier()
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def slower_rank_median(seconds: list[float]) -> float:
    medians = [None] * dist.get_world_size()
    dist.all_gather_object(medians, statistics.median(seconds))
    return max(medians)


def measure(name: str, reps: int, steps: int, resnet_batch: int) -> dict:
    shape, classes, batch = MODELS[name]
    batch = batch or resnet_batch
    torch.manual_seed(0)
    model = create_model(name, num_classes=classes, in_channels=shape[0]).train()
    count = sum(p.numel() for p in model.parameters())
    flat = torch.ones(count)
    timed(lambda: dist.all_reduce(flat), 3)  # warm-up: connections, buffers
    allreduce = slower_rank_median(timed(lambda: dist.all_reduce(flat), reps))

    replica = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, *shape), torch.randint(0, classes, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs = replica(x)
        F.cross_entropy(outputs, y).backward()
        optimizer.step()

    def local_step() -> None:
        with replica.no_sync():
            step()

    timed(step, 2)  # warm-up, and DDP regroups its buckets after the first step
    timed(local_step, 1)
    with_ddp, local = [], []
    for _ in range(steps or STEPS[name]):  # alternating, so that load hits both alike
        with_ddp += timed(step, 1)
        local += timed(local_step, 1)
    with_ddp, compute = slower_rank_median(with_ddp), slower_rank_median(local)
    return {
        "model": name,
        "parameters": count,
        "gradient_bytes": count * 4,
        "batch_per_process": batch,
        "allreduce_seconds": allreduce,
        "allreduce_gbit_per_s": count * 4 * 8 / allreduce / 1e9,
        "compute_seconds": compute,
        "step_seconds": with_ddp,
        "allreduce_share_not_overlapped": allreduce / (compute + allreduce),
        "communication_share_of_ddp_step": max(0.0, (with_ddp - compute) / with_ddp),
    }


def worker(out: Path, reps: int, steps: int, resnet_batch: int) -> None:
    dist.init_process_group("gloo")
    rows = [measure(name, reps, steps, resnet_batch) for name in MODELS]
    if dist.get_rank() == 0:
        out.write_text(json.dumps(rows))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="all-reduces timed per model")
    parser.add_argument(
        "--steps", type=int, default=0, help="steps timed per mode (0: 30 LeNet-5, 3 ResNet-50)"
    )
    parser.add_argument("--resnet-batch", type=int, default=4, help="ResNet-50 images per rank")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.reps, args.steps, args.resnet_batch)
        return
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rows.json"
        command = [
            *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
            *("--nproc-per-node", "2", __file__, "--worker", str(out)),
            *("--reps", str(args.reps), "--steps", str(args.steps)),
            *("--resnet-batch", str(args.resnet_batch)),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, env=env, capture_output=True)
        rows = json.loads(out.read_text())
    load.append(os.getloadavg()[0])
    print(
        json.dumps(
            {
                "benchmark": "ddp_allreduce",
                "backend": "gloo",
                "transport": "127.0.0.1 (loopback)",
                "processes": 2,
                "threads_per_process": 1,
                "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__},
                "load_average_1min": [round(v, 2) for v in load],
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
