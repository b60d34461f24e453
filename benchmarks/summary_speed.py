"""Wall time of ``cnnlab summary MODEL`` as a whole command (start-up and import included).

Target (issue 3): under 3 s for vgg16 and resnet152 at 224x224. Prints one JSON document with
the best and median of ``--repeats`` runs per model.

    python benchmarks/summary_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ("vgg16", "resnet152", "googlenet", "lenet5")


def wall(model: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab",
            "summary",
            model,
            "--input",
            "3,224,224" if model != "lenet5" else "1,32,32",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {}
    for model in MODELS:
        times = [wall(model) for _ in range(args.repeats)]
        results[model] = {"best_s": min(times), "median_s": statistics.median(times)}
    print(
        json.dumps(
            {
                "benchmark": "summary_speed",
                "load_average_1min": os.getloadavg()[0],
                "repeats": args.repeats,
                "wall_seconds": results,
                "under_3s": all(r["median_s"] < 3 for r in results.values()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
