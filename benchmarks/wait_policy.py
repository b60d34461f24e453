"""How long OpenMP threads should spin before they sleep: torch's LeNet-5 training step with two
threads under each wait setting, on an idle machine and with one core busy. One JSON document:

    .venv/bin/python benchmarks/wait_policy.py [--rounds 3] [--steps 60]

Each setting runs in a fresh process (OpenMP reads its environment once, at start-up), with
``OMP_NUM_THREADS=2``: ``passive`` (``OMP_WAIT_POLICY=PASSIVE``: sleep at once, what cnnlab
set before), ``spin-N`` (``GOMP_SPINCOUNT=N``: spin N iterations, then sleep) and ``default``
(libgomp's own: 300,000 iterations), plus one thread for scale. A process measures the median
of ``--steps`` Adam steps of LeNet-5 on a batch of 128 random 1x32x32 images (after 10 warm-up
steps); the step does not depend on the pixels. "busy" runs the same while
``busy_core.start_hog`` spins on one core. Settings and conditions alternate within each
round; the medians over the rounds are reported. Run it on a machine with nothing else running.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import machine
from busy_core import start_hog, stop

STEP = """
import statistics, sys, time
import torch
import torch.nn.functional as F
from cnnlab.models import create_model

torch.manual_seed(0)
model = create_model("lenet5")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
images, labels = torch.randn(128, 1, 32, 32), torch.randint(0, 10, (128,))
times = []
for step in range(10 + int(sys.argv[1])):
    start = time.perf_counter()
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    times.append(time.perf_counter() - start)
print(statistics.median(times[10:]) * 1000)
"""

SETTINGS = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"},
    "spin-1000": {"GOMP_SPINCOUNT": "1000"},
    "spin-10000": {"GOMP_SPINCOUNT": "10000"},
    "spin-100000": {"GOMP_SPINCOUNT": "100000"},
    "default": {},
}
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")


def step_ms(setting: dict[str, str], threads: int, steps: int) -> float:
    """Median milliseconds of one training step in a fresh process with ``setting``."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    env.update(setting, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(
        [sys.executable, "-c", STEP, str(steps)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return float(result.stdout.strip())


def main() -> None:
    parser = machine.benchmark_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    runs = {**{(name, 2): setting for name, setting in SETTINGS.items()}, ("default", 1): {}}
    load_start = machine.load_average()
    rows: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for (name, threads), setting in runs.items():
            for condition in ("idle", "busy") if r % 2 == 0 else ("busy", "idle"):
                hog = start_hog(600) if condition == "busy" else None
                try:
                    if hog is not None:
                        time.sleep(0.2)  # the hog is spinning before the step starts
                    ms = step_ms(setting, threads, args.steps)
                finally:
                    if hog is not None:
                        stop(hog)
                key = f"{name} x{threads} {condition}"
                rows.setdefault(key, []).append(round(ms, 2))
                print(f"{key}: {ms:.2f} ms", file=sys.stderr, flush=True)
    medians = {key: round(statistics.median(values), 2) for key, values in rows.items()}
    print(
        json.dumps(
            {
                "benchmark": "LeNet-5 training step (batch 128), OpenMP wait settings",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "cpu": machine.cpu_name(),
                "cores": os.cpu_count(),
                "load_avg_1min": {"start": load_start, "end": machine.load_average()},
                "median_step_ms": medians,
                "rounds_ms": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
