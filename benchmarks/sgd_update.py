"""The NumPy engine's SGD step on one large parameter, updated in one piece against a slice at a
time (``cnnlab.scratch.optim.add_scaled``); prints one JSON document.

    .venv/bin/python benchmarks/sgd_update.py [--steps 6] [--dtype float32]

The parameter is VGG's first classifier layer (4096 x 25088, 102.8M weights) with momentum 0.9,
as ``cnnlab train --engine numpy`` would step it. Each way runs in a fresh process under
``keep_freed_memory`` (what the NumPy engine sets), twice, alternating. Reported per run: each
step's seconds and how much the peak of resident memory grew during the steps beyond the momentum
buffer (the one-piece update makes a temporary of the parameter's size, a slice only one of 1M
elements).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from machine import benchmark_parser, cpu_name, load_average, median

SHAPE = (4096, 25088)
WAYS = ("one_piece", "sliced")


def _peak_mb() -> float:
    """The most resident memory this process has held (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _steps(way: str, steps: int, dtype: str) -> dict:
    """One way's step times and resident-memory growth (in this process)."""
    import numpy as np

    from cnnlab.bridge.runtime import keep_freed_memory
    from cnnlab.scratch import SGD, Parameter, optim

    keep_freed_memory()
    if way == "one_piece":
        optim.UPDATE_SLICE = 2**62  # every parameter below it: the one-line update
    p = Parameter(np.ones(SHAPE, dtype))
    p.grad = np.full_like(p.data, 0.5)
    opt = SGD([p], lr=0.01, momentum=0.9)
    before = _peak_mb()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        opt.step()
        seconds.append(round(time.perf_counter() - start, 3))
    buffer_mb = p.data.nbytes / 2**20  # the momentum buffer, made on the first step
    return {"seconds": seconds, "peak_growth_mb": round(_peak_mb() - before - buffer_mb)}


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--steps", type=int, default=6, help="SGD steps per run")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:  # one way, in its own process
        print(json.dumps(_steps(args.way, args.steps, args.dtype)))
        return
    runs: dict[str, list[dict]] = {way: [] for way in WAYS}
    for _ in range(2):
        for way in WAYS:
            command = [sys.executable, __file__, "--way", way, "--steps", str(args.steps)]
            command += ["--dtype", args.dtype]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[way].append(json.loads(out))
    summary = {
        way: {
            "median_step_seconds": median(s for run in runs[way] for s in run["seconds"][1:]),
            "max_peak_growth_mb": max(run["peak_growth_mb"] for run in runs[way]),
        }
        for way in WAYS
    }
    print(
        json.dumps(
            {
                "benchmark": "sgd_update",
                "cpu": cpu_name(),
                "load_average": load_average(),
                "shape": list(SHAPE),
                "dtype": args.dtype,
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
