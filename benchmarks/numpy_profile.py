"""Where a NumPy-engine training step spends its time: LeNet-5 at batch 128, per graph node,
and what each of the engine's two speed-ups is worth; prints one JSON document.

    .venv/bin/python benchmarks/numpy_profile.py [--batch 128] [--steps 60] [--threads 1]

Three configurations, each in a fresh process (the allocator setting cannot be undone):

* ``batch_first``: every op in PyTorch's ``(N, C, H, W)`` layout (``to_scratch(...,
  batch_last=False)``), glibc's default allocator behaviour;
* ``batch_last``: the layout plan of ``cnnlab.scratch.layout_plan``;
* ``batch_last+keep_freed_memory``: plus ``cnnlab.bridge.runtime.keep_freed_memory``, i.e.
  what ``cnnlab train --engine numpy`` runs.

A step is forward, cross-entropy and backward through the graph (no optimizer: it is the same
in all three). Per-node times wrap each op's forward and backward; their sum is a little less
than the step. The 1-minute load average is part of the output: other processes change every
number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import torch

from cnnlab.bridge import to_scratch
from cnnlab.bridge.runtime import keep_freed_memory, set_blas_threads
from cnnlab.models import create_model
from cnnlab.scratch.functional import cross_entropy, cross_entropy_backward

CONFIGS = ("batch_first", "batch_last", "batch_last+keep_freed_memory")


def _timed(fn, totals: dict[str, float], name: str):
    def wrapper(*args):
        start = time.perf_counter()
        result = fn(*args)
        totals[name] += time.perf_counter() - start
        return result

    return wrapper


def profile(config: str, batch: int, steps: int) -> dict[str, object]:
    """Time ``steps`` training steps of LeNet-5's graph in one configuration."""
    if config.endswith("keep_freed_memory"):
        keep_freed_memory()
    torch.manual_seed(0)
    net = to_scratch(create_model("lenet5"), np.float32, batch_last=config != "batch_first")
    net.train()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    forward: dict[str, float] = defaultdict(float)
    backward: dict[str, float] = defaultdict(float)
    for node in net.graph.nodes:
        node.op.forward = _timed(node.op.forward, forward, node.name)
        node.op.backward = _timed(node.op.backward, backward, node.name)

    def step() -> None:
        _, cache = cross_entropy(net.forward(x), y)
        net.backward(cross_entropy_backward(cache), needs_input_grad=False)

    for _ in range(5):
        step()
    forward.clear()
    backward.clear()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    step_ms = (time.perf_counter() - start) / steps * 1000
    nodes = [
        {
            "node": node.name,
            "op": type(getattr(node.op, "layer", node.op)).__name__,
            "forward_ms": round(forward[node.name] / steps * 1000, 3),
            "backward_ms": round(backward[node.name] / steps * 1000, 3),
        }
        for node in net.graph.nodes
    ]
    return {"step_ms": round(step_ms, 2), "nodes": nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="OpenBLAS threads")
    parser.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_blas_threads(args.threads)
    if args.config:  # one configuration, in this (fresh) process
        print(json.dumps(profile(args.config, args.batch, args.steps)))
        return
    load_start = os.getloadavg()[0]
    results = {}
    for config in CONFIGS:
        command = [sys.executable, __file__, "--config", config]
        command += ["--batch", str(args.batch), "--steps", str(args.steps)]
        command += ["--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[config] = json.loads(done.stdout)
    report = {
        "benchmark": "lenet5 NumPy-engine training step (forward, loss, backward), 1x32x32",
        "batch": args.batch,
        "blas_threads": args.threads,
        "load_avg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "step_ms": {config: results[config]["step_ms"] for config in CONFIGS},
        "nodes": {config: results[config]["nodes"] for config in CONFIGS[1:]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
