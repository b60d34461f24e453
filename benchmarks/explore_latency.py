"""Server time per live update of ``cnnlab explore`` for LeNet-5 (target, issue 12: < 100 ms).

One update is what the page sends while a digit is being drawn: the 280x280 canvas as a
drawing, answered with MNIST's preprocessing, the probabilities and every layer's maps. Timed
two ways, over ``--updates`` updates of a growing stroke after ``--warmup`` ones:

* in process: ``Explorer.forward`` (preprocessing, forward with hooks, standardised tiles,
  base64), on one torch thread (what the server uses for models this small) and on torch's
  default threads;
* over HTTP: POST /api/forward to a real server (``python -m cnnlab explore ... --port 0``),
  wall time at the client, JSON encoding and decoding included.

Prints one JSON document (milliseconds: median and 95th percentile).

    python benchmarks/explore_latency.py [--run RUN_DIR] [--updates 200]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

import numpy as np
import torch

from cnnlab.explore.explorer import Explorer
from cnnlab.explore.inputs import parse_input
from cnnlab.explore.target import load_target

TARGET_MS = 100.0


def strokes(count: int) -> list[dict]:
    """The canvas after each step of drawing a "1": a stroke growing down, 22 pixels wide."""
    ink = np.zeros((280, 280), dtype=np.uint8)
    drawings = []
    for step in range(count):
        y = 40 + (step * 200) // count
        ink[y : y + 8, 129:151] = 255
        data = base64.b64encode(ink.tobytes()).decode()
        drawings.append({"kind": "drawing", "width": 280, "height": 280, "data": data})
    return drawings


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "median": round(statistics.median(ms), 2),
        "p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
    }


def in_process(explorer: Explorer, drawings: list[dict], warmup: int) -> dict[str, float]:
    specs = [parse_input(d) for d in drawings]
    for spec in specs[:warmup]:
        explorer.forward(spec)
    times = []
    for spec in specs[warmup:]:
        start = time.perf_counter()
        explorer.forward(spec)
        times.append(time.perf_counter() - start)
    return summary_ms(times)


def over_http(target: str, drawings: list[dict], warmup: int) -> dict[str, float]:
    command = [sys.executable, "-m", "cnnlab", "explore", target, "--port", "0", "--no-browser"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        match = re.search(r" at (http://\S+/) ", line)
        if match is None:
            raise SystemExit(f"the server did not start: {line!r}")
        url = match.group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "api/model", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        times = []
        for i, drawing in enumerate(drawings):
            body = json.dumps({"input": drawing}).encode()
            request = urllib.request.Request(url + "api/forward", data=body)
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                json.loads(response.read())
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return summary_ms(times)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", help="a LeNet-5 run directory (default: lenet5, untrained)")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    target = args.run or "lenet5"
    drawings = strokes(args.warmup + args.updates)
    explorer = Explorer(load_target(target))
    default_threads = torch.get_num_threads()
    default = in_process(explorer, drawings, args.warmup)
    torch.set_num_threads(1)
    one_thread = in_process(explorer, drawings, args.warmup)
    http = over_http(target, drawings, args.warmup)
    print(
        json.dumps(
            {
                "benchmark": "explore_latency",
                "model": explorer.target.name,
                "target": target,
                "load_average_1min": round(os.getloadavg()[0], 2),
                "updates": args.updates,
                "layers": len(explorer.rows),
                "in_process_ms": {
                    "one_thread": one_thread,
                    f"default_{default_threads}_threads": default,
                },
                "http_ms": http,
                "target_ms": TARGET_MS,
                "under_target": http["median"] < TARGET_MS and one_thread["p95"] < TARGET_MS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
