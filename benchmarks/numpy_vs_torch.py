"""LeNet-5 on MNIST, NumPy engine against torch engine in the same process; prints one JSON
document.

    .venv/bin/python benchmarks/numpy_vs_torch.py [--batch 128] [--steps 40] [--rounds 5]
        [--threads N] [--no-rss]

* Training throughput: both engines (``cnnlab.training.engine``, exactly what ``cnnlab train
  --engine torch|numpy`` runs per step: forward, loss, backward, optimizer, schedule) start from
  the same weights and see the same preprocessed batches; rounds alternate between the engines
  so machine load hits both alike; the best (least disturbed) round is reported, with the ratio
  ``numpy_seconds / torch_seconds`` (1.0 = as fast as torch).
* Inference throughput: eval-mode logits of the 10,000 test digits, likewise.
* Peak memory: a separate process trains the NumPy engine with ``cnnlab.fit`` (100 steps of
  batch 128 plus validation and test evaluation) and reports its peak RSS.

``--threads`` sets torch's intra-op threads (default: torch's default, one per core); the NumPy
engine computes the two halves of each batch on as many threads (``cnnlab.scratch.parallel``),
each with one OpenBLAS thread (``cnnlab.bridge.runtime`` says why), so each engine runs as
``cnnlab train`` would run it; ``numpy_1_thread`` is the NumPy engine on one thread, side by
side. The 1-minute load average
before and after is part of the output: on a shared machine, other processes' load changes
every number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cnnlab.threads import choose_waiting, cpu_snapshot

WAITING = choose_waiting(cpu_snapshot())  # as the cnnlab command does, before torch loads

import torch  # noqa: E402

from cnnlab.bridge.engine import NumpyEngine  # noqa: E402
from cnnlab.bridge.runtime import get_blas_threads  # noqa: E402
from cnnlab.data.datasets import load_dataset  # noqa: E402
from cnnlab.models import create_model  # noqa: E402
from cnnlab.training.config import TrainConfig  # noqa: E402
from cnnlab.training.engine import TorchEngine  # noqa: E402
from cnnlab.training.loop import epoch_order  # noqa: E402
from cnnlab.training.network_start import choose_preprocessing  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name  # noqa: E402

RSS_SCRIPT = textwrap.dedent(
    """
    import resource, torch
    from cnnlab.data.dataset import DatasetSplits
    from cnnlab.data.datasets import load_dataset
    from cnnlab.training.run import fit
    torch.set_num_threads({threads})
    full = load_dataset("mnist")
    train = full.train.subset(torch.arange(128 * 100 * 10 // 9 + 1))  # 100 steps after val split
    fit("lenet5", DatasetSplits("mnist", train, full.test), engine="numpy", epochs=1,
        batch_size=128, verbose=False, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """
)


def _time(fn, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-rss", dest="rss", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = create_model("lenet5")
    preprocessing = choose_preprocessing(model, data)
    config = TrainConfig(batch_size=args.batch, epochs=1)
    steps_per_epoch = len(data.train) // args.batch
    twins = [create_model("lenet5") for _ in range(2)]
    for twin in twins:
        twin.load_state_dict(model.state_dict())
    engines = {
        "torch": TorchEngine(model, config, torch.device("cpu"), steps_per_epoch),
        "numpy": NumpyEngine(twins[0], config, steps_per_epoch),  # as cnnlab train runs it
        "numpy_1_thread": NumpyEngine(twins[1], config, steps_per_epoch, threads=1),
    }
    order = epoch_order(len(data.train), 0, 0)
    batches = [
        (
            preprocessing(data.train.images[order[i * args.batch : (i + 1) * args.batch]]),
            data.train.labels[order[i * args.batch : (i + 1) * args.batch]],
        )
        for i in range(args.steps * args.rounds + 5)
    ]

    def train(engine, chunk):
        for x, y in chunk:
            engine.forward_loss(x, y)
            engine.step()

    for engine in engines.values():  # warm-up (allocations, first-call costs)
        engine.train()
        train(engine, batches[:5])
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(args.rounds):
        chunk = batches[5 + r * args.steps : 5 + (r + 1) * args.steps]
        for name, engine in engines.items():
            seconds[name].append(_time(lambda e=engine, c=chunk: train(e, c)))
    train_seconds = {name: min(s) for name, s in seconds.items()}  # best round: least disturbed

    infer: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(3):
        for name, engine in engines.items():
            infer[name].append(_time(lambda e=engine: e.logits(data.test.images, preprocessing)))
    infer_seconds = {name: min(s) for name, s in infer.items()}

    rss = None
    if args.rss:
        result = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT.format(threads=args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        rss = float(result.stdout.strip().splitlines()[-1])

    images = args.steps * args.batch
    report = {
        "benchmark": "lenet5 on MNIST (1x32x32), NumPy engine vs torch engine",
        "batch": args.batch,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "waiting": WAITING,
        "blas_threads": get_blas_threads(),
        "load_avg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "train_images_per_s": {n: round(images / s, 1) for n, s in train_seconds.items()},
        "train_ratio_numpy_over_torch": round(train_seconds["numpy"] / train_seconds["torch"], 3),
        "train_ratio_numpy_1_thread_over_torch": round(
            train_seconds["numpy_1_thread"] / train_seconds["torch"], 3
        ),
        "train_rounds_s": seconds,
        "inference_images_per_s": {
            n: round(len(data.test) / s, 1) for n, s in infer_seconds.items()
        },
        "inference_ratio_numpy_over_torch": round(
            infer_seconds["numpy"] / infer_seconds["torch"], 3
        ),
        "inference_ratio_numpy_1_thread_over_torch": round(
            infer_seconds["numpy_1_thread"] / infer_seconds["torch"], 3
        ),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_name(),
        "numpy_training_peak_rss_mb": None if rss is None else round(rss, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
