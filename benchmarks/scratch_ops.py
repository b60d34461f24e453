"""Time a LeNet-5-sized training step (forward + backward + SGD) of the NumPy engine against
torch on CPU, at batch 128 on 1x32x32 inputs; prints one JSON document.

    .venv/bin/python benchmarks/scratch_ops.py [--batch 128] [--repeats 30] [--threads 2]

``--threads`` gives both engines the same number of threads (torch.set_num_threads, and
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS for NumPy's BLAS, set by re-executing the script).

Both engines start from the same weights and see the same batch. Per-op timings of the scratch
engine (forward and backward of each layer) show where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn as tnn

from cnnlab import scratch
from cnnlab.scratch import nn as snn


def lenet5_scratch(rng: np.random.Generator) -> snn.Sequential:
    """LeNet-5 as cnnlab.models.lenet builds it (ReLU, max pooling), flattened into one
    Sequential."""
    return snn.Sequential(
        snn.Conv2d(1, 6, 5, rng=rng),  # N x 6 x 28 x 28
        snn.ReLU(),
        snn.MaxPool2d(2, 2),  # N x 6 x 14 x 14
        snn.Conv2d(6, 16, 5, rng=rng),  # N x 16 x 10 x 10
        snn.ReLU(),
        snn.MaxPool2d(2, 2),  # N x 16 x 5 x 5
        snn.Conv2d(16, 120, 5, rng=rng),  # N x 120 x 1 x 1
        snn.ReLU(),
        snn.Flatten(),  # N x 120
        snn.Linear(120, 84, rng=rng),
        snn.ReLU(),
        snn.Linear(84, 10, rng=rng),
    )


def lenet5_torch() -> tnn.Sequential:
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2, 2),
        tnn.Conv2d(6, 16, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2, 2),
        tnn.Conv2d(16, 120, 5),
        tnn.ReLU(),
        tnn.Flatten(),
        tnn.Linear(120, 84),
        tnn.ReLU(),
        tnn.Linear(84, 10),
    )


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def paired_ms(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median times of ``a`` and ``b`` run alternately, so that background load hits both."""
    for _ in range(3):
        a()
        b()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return 1000 * float(np.median(ta)), 1000 * float(np.median(tb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    threads = str(args.threads)
    if os.environ.get("OPENBLAS_NUM_THREADS") != threads:  # BLAS reads it at import: re-exec
        os.environ.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)

    smodel = lenet5_scratch(rng)
    tmodel = lenet5_torch()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in smodel.state_dict().items()})
    sloss = snn.CrossEntropyLoss()
    sopt = scratch.SGD(smodel.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def scratch_step() -> None:
        sopt.zero_grad()
        logits = smodel(x)
        sloss(logits, y)
        smodel.backward(sloss.backward(), needs_input_grad=False)
        sopt.step()

    def torch_step() -> None:
        topt.zero_grad()
        loss = tnn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()

    def scratch_infer() -> None:
        smodel.eval()
        smodel(x)
        smodel.train()

    def torch_infer() -> None:
        with torch.inference_mode():
            tmodel.eval()
            tmodel(tx)
            tmodel.train()

    train_np, train_t = paired_ms(scratch_step, torch_step, args.repeats)
    infer_np, infer_t = paired_ms(scratch_infer, torch_infer, args.repeats)

    # Per-layer breakdown of the scratch engine.
    per_layer: list[dict[str, object]] = []
    acts = [x]
    for layer in smodel:
        acts.append(layer(acts[-1]))
    for i, layer in enumerate(smodel):
        inp, out = acts[i], acts[i + 1]
        g = np.ones_like(out)

        def fwd(layer: snn.Module = layer, inp: np.ndarray = inp) -> None:
            layer(inp)

        def fwd_bwd(
            layer: snn.Module = layer,
            inp: np.ndarray = inp,
            g: np.ndarray = g,
            first: bool = i == 0,
        ) -> None:
            layer(inp)
            layer.backward(g, needs_input_grad=not first)

        f = median_ms(fwd, args.repeats)
        per_layer.append(
            {
                "layer": f"{i}:{type(layer).__name__}",
                "forward_ms": round(f, 3),
                "backward_ms": round(median_ms(fwd_bwd, args.repeats) - f, 3),
            }
        )
    report = {
        "benchmark": "lenet5 train step (forward+backward+SGD momentum), 1x32x32",
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "train_step_ms": {"numpy": round(train_np, 3), "torch": round(train_t, 3)},
        "train_ratio_numpy_over_torch": round(train_np / train_t, 3),
        "inference_ms": {"numpy": round(infer_np, 3), "torch": round(infer_t, 3)},
        "inference_ratio_numpy_over_torch": round(infer_np / infer_t, 3),
        "numpy_per_layer": per_layer,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
