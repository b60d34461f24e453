"""Overheads of training: ``fit``'s loop against a bare loop, and a ``cnnlab train``
command's start-up and finish.

Throughput (``--throughput``): both train LeNet-5 on MNIST for one epoch with Adam at batch
128 on the 60,000 digits in memory, in the same memory layout (the bare loop also pads and
normalises each batch on the fly, as ``fit`` does). ``fit`` includes its callbacks, metrics,
checkpoints and progress bookkeeping.

Start-up and finish (``--phases``): ``cnnlab train lenet5 --data mnist`` run as a command
(``python -m cnnlab``), with 20 training digits per class so that the training itself is a
few steps; a wrapper records when the first training step starts, when the last one ends,
when the result line is printed and when the process ends. ``--before SRC`` runs another
source tree (e.g. ``/work/main/src``) alternately with this one: the two side by side.
Prints one JSON document.

    python benchmarks/overhead.py [--throughput] [--phases] [--repeats 5] [--before SRC]
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
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.datasets import load_dataset
from cnnlab.data.preprocess import fit_preprocessing
from cnnlab.inference import to_model_layout
from cnnlab.models import create_model
from cnnlab.training.run import fit


def bare_loop(train, channels_last: bool) -> float:
    """Images/second of one epoch of a bare loop."""
    torch.manual_seed(0)
    model = create_model("lenet5")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    preprocessing = fit_preprocessing(train, (1, 32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(train))
    start = time.perf_counter()
    for i in range(0, len(order), 128):
        batch = order[i : i + 128]
        x = to_model_layout(preprocessing(train.images[batch]), channels_last)
        loss = F.cross_entropy(model(x), train.labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train) / (time.perf_counter() - start)


def fit_throughput(data: DatasetSplits, channels_last: bool) -> float:
    """Images/second of one epoch of ``fit`` (run directory, callbacks, checkpoint and all;
    no validation split, so the epoch's seconds are all training)."""
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(
            "lenet5",
            data,
            out=os.path.join(tmp, "run"),
            verbose=False,
            progress=False,
            epochs=1,
            channels_last=channels_last,
            optimizer="adam",
            schedule="constant",
            lr=1e-3,
            val_split=0.0,
            monitor="loss",
        )
    return len(data.train) / history.history["seconds"][0]


def throughput(repeats: int) -> dict:
    """Best-of-``repeats`` images/second of ``fit`` and the bare loop, in both layouts."""
    data = load_dataset("mnist")
    results = {"best_of": repeats}
    for layout, channels_last in (("channels_last", True), ("contiguous", False)):
        bare = max(bare_loop(data.train, channels_last) for _ in range(repeats))
        ours = max(fit_throughput(data, channels_last) for _ in range(repeats))
        results[layout] = {
            "bare_images_per_second": bare,
            "fit_images_per_second": ours,
            "fit_over_bare": ours / bare,
        }
    return results


# Runs `cnnlab ARGV` in this process and prints, as JSON on the last line of stderr, the
# seconds (from this code's start) at which the first training step started, the last one
# ended, the result line was printed and the command returned; atexit runs after Python has
# joined the command's remaining threads (a curves thread), so "exit" includes them.
_PHASES_CHILD = """
import atexit, json, sys, time
t0 = time.perf_counter()
marks = {}
def mark(name, once=False):
    if not (once and name in marks):
        marks[name] = time.perf_counter() - t0
class Out:
    def __init__(self, stream): self.stream = stream
    def write(self, text):
        if text.strip(): mark("result", once=True)
        return self.stream.write(text)
    def flush(self): self.stream.flush()
sys.stdout = Out(sys.stdout)
import cnnlab.training.loop as loop
step = loop.Trainer._train_step
def timed_step(self, *args):
    mark("first_step", once=True)
    value = step(self, *args)
    mark("last_step")
    return value
loop.Trainer._train_step = timed_step
atexit.register(lambda: (mark("exit"), print(json.dumps(marks), file=sys.stderr)))
from cnnlab.cli import main
status = main(sys.argv[1:])
mark("returned")
sys.exit(status)
"""


def command_phases(src: str) -> dict:
    """One ``cnnlab train`` command of source tree ``src``: its wall time cut into phases."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "lenet5", "--data", "mnist", "--per-class", "20", "--epochs", "1"]
        argv += ["--out", os.path.join(tmp, "run")]
        env = {**os.environ, "PYTHONPATH": src}
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _PHASES_CHILD, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        wall = time.perf_counter() - start
        curves = (Path(tmp) / "run" / "curves.png").is_file()
    marks = json.loads(done.stderr.strip().splitlines()[-1])
    python = wall - marks["exit"]  # interpreter start-up and teardown
    return {
        "wall": wall,
        "before_first_step": python + marks["first_step"],
        "training": marks["last_step"] - marks["first_step"],
        "last_step_to_result_line": marks["result"] - marks["last_step"],
        "result_line_to_exit": wall - marks["result"] - python,
        "python_start_and_teardown": python,
        "curves_written": curves,
    }


def phases(trees: dict[str, str], repeats: int) -> dict:
    """Medians over ``repeats`` commands of each source tree, the trees alternating."""
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, src in trees.items():
            runs[name].append(command_phases(src))
    medians = {}
    for name, rows in runs.items():
        medians[name] = {
            key: statistics.median(row[key] for row in rows)
            for key in rows[0]
            if key != "curves_written"
        }
        medians[name]["curves_written"] = all(row["curves_written"] for row in rows)
        medians[name]["src"] = trees[name]
    return {
        "command": "cnnlab train lenet5 --data mnist --per-class 20 --epochs 1 --out DIR",
        "median_of": repeats,
        "seconds": medians,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--throughput", action="store_true", help="fit against a bare loop")
    parser.add_argument("--phases", action="store_true", help="a command's start-up and finish")
    parser.add_argument("--before", metavar="SRC", help="also time this source tree's command")
    args = parser.parse_args()
    if not (args.throughput or args.phases):
        args.throughput = args.phases = True
    results: dict = {
        "benchmark": "overhead",
        "threads": torch.get_num_threads(),
        "load_average_1min_before": os.getloadavg()[0],
    }
    if args.phases:
        here = str(Path(__file__).resolve().parent.parent / "src")
        trees = {"before": args.before, "after": here} if args.before else {"this": here}
        results["phases"] = phases(trees, args.repeats)
    if args.throughput:
        results["throughput"] = throughput(args.repeats)
    results["load_average_1min_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
