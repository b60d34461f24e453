"""The default training run on an idle machine and with one core busy; prints one JSON document.

    .venv/bin/python benchmarks/busy_core.py [--rounds 3] [--epochs 1] [--engines torch numpy]
        [--trees new=src before=/path/to/other/checkout/src] [--timeout 400]

For every round, engine and source tree (``--trees NAME=SRC``: the same command run against
other checkouts' ``src`` side by side, e.g. the code before a change), the whole command

    python -m cnnlab train lenet5 --data mnist --epochs 1 --engine ENGINE --out TMP --no-progress

runs twice: on the machine as it is ("idle") and while a *hog* spins on one core ("busy": a
separate Python process in a busy loop, started just before the command and killed right
after it; it also stops on its own after ``--timeout`` seconds, so it cannot outlive the
benchmark). The order alternates within each round so drifting machine load hits every
configuration alike. Reported per configuration: the medians over the rounds of the whole
command's wall seconds and of the epoch's training seconds (``history.json``), the busy/idle
ratios of those medians, the thread line the run printed, and each round's numbers.

Run it without ``nice`` on a machine with nothing else running: other processes' load (the
1-minute load average before and after is in the output) is exactly what this measures. The
mnist dataset must be in the cache (``cnnlab data fetch mnist``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import machine

HOG = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: pass"
)
ROOT = Path(__file__).resolve().parents[1]


def start_hog(seconds: float) -> subprocess.Popen:
    """A process spinning on one core for at most ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", HOG, str(seconds)])


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=30)


def train_once(src: str, engine: str, epochs: int, timeout: float) -> dict:
    """One whole ``cnnlab train`` command; its wall and training seconds and thread line."""
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryDirectory(prefix="busy-core-") as tmp:
        out = Path(tmp) / "run"
        command = machine.cnnlab_command(
            "train", "lenet5", "--data", "mnist", "--epochs", str(epochs), "--engine", engine
        )
        try:
            wall, result = machine.timed_run(
                [*command, "--out", str(out), "--no-progress"],
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"wall_s": None, "train_s": None, "error": f"timed out after {timeout} s"}
        if result.returncode != 0:
            return {"wall_s": None, "train_s": None, "error": result.stderr.strip()[-300:]}
        history = json.loads((out / "history.json").read_text())
        train = sum(history["history"]["seconds"])
        threads = [line for line in result.stderr.splitlines() if line.startswith("threads:")]
        return {
            "wall_s": round(wall, 2),
            "train_s": round(train, 2),
            "threads_line": threads[0] if threads else None,
        }


def rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def main() -> None:
    parser = machine.benchmark_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--engines", nargs="+", default=["torch", "numpy"])
    parser.add_argument(
        "--trees",
        nargs="+",
        default=[f"new={ROOT / 'src'}"],
        metavar="NAME=SRC",
        help="source trees to run side by side (PYTHONPATH of the command)",
    )
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds per command")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.trees)
    load_start = machine.load_average()

    rows: dict[str, list[dict]] = {}
    for r in range(args.rounds):
        for engine in args.engines:
            for name, src in trees.items():
                conditions = ("idle", "busy") if r % 2 == 0 else ("busy", "idle")
                for condition in conditions:
                    hog = start_hog(args.timeout + 10) if condition == "busy" else None
                    try:
                        row = train_once(src, engine, args.epochs, args.timeout)
                    finally:
                        if hog is not None:
                            stop(hog)
                    row["load_1min"] = machine.load_average()
                    rows.setdefault(f"{name} {engine} {condition}", []).append(row)
                    print(f"{name} {engine} {condition}: {row}", file=sys.stderr, flush=True)

    summary = {}
    for name in trees:
        for engine in args.engines:
            idle, busy = rows[f"{name} {engine} idle"], rows[f"{name} {engine} busy"]
            wall = {
                c: rounded(machine.median(row["wall_s"] for row in rs))
                for c, rs in (("idle", idle), ("busy", busy))
            }
            train = {
                c: rounded(machine.median(row["train_s"] for row in rs))
                for c, rs in (("idle", idle), ("busy", busy))
            }
            summary[f"{name} {engine}"] = {
                "wall_s_median": wall,
                "train_s_median": train,
                "busy_over_idle_wall": rounded(machine.ratio(wall["busy"], wall["idle"])),
                "busy_over_idle_train": rounded(machine.ratio(train["busy"], train["idle"])),
                "threads_lines": {
                    c: sorted({str(row.get("threads_line")) for row in rs})
                    for c, rs in (("idle", idle), ("busy", busy))
                },
            }
    report = {
        "benchmark": "cnnlab train lenet5 --data mnist, idle vs one core busy (a spinning hog)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": machine.cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "epochs": args.epochs,
        "rounds": args.rounds,
        "trees": trees,
        "load_avg_1min": {"start": load_start, "end": machine.load_average()},
        "summary": summary,
        "rounds_detail": rows,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
