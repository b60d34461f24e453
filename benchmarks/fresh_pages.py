"""What touching memory costs: a block of fresh pages against the same block reused, under
glibc's default allocator behaviour, ``keep_freed_memory`` and ``keep_all_freed_memory``
(``cnnlab.bridge.runtime``); prints one JSON document.

    .venv/bin/python benchmarks/fresh_pages.py [--gib 1] [--rounds 4] [--pause 4]

Each setting runs in a fresh process (an allocator setting cannot be undone): it allocates and
fills ``--gib`` GiB with NumPy, frees it, waits ``--pause`` seconds (long enough for a virtual
machine's host to take freed pages back) and does it again, ``--rounds`` times. On a machine
whose host backs guest memory lazily, every round under the default setting pays for fresh
pages; with ``keep_all_freed_memory`` only the first does. The test workers use the latter
(tests/conftest.py), since the zoo tests allocate and free networks of 0.5-1.2 GB one after
another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from machine import benchmark_parser, cpu_name, load_average

SETTINGS = ("default", "keep_freed_memory", "keep_all_freed_memory")


def _rounds(setting: str, gib: float, rounds: int, pause: float) -> list[float]:
    """Seconds to allocate and fill the block in each round (in this process)."""
    import numpy as np

    from cnnlab.bridge import runtime

    if setting != "default":
        assert getattr(runtime, setting)(), f"glibc refused {setting}"
    values = int(gib * 2**30) // 8
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        block = np.ones(values)  # float64: allocated and every page touched
        seconds.append(round(time.perf_counter() - start, 3))
        del block
        time.sleep(pause)
    return seconds


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--gib", type=float, default=1.0, help="block size in GiB")
    parser.add_argument("--rounds", type=int, default=4, help="allocations per setting")
    parser.add_argument("--pause", type=float, default=4.0, help="seconds between rounds")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setting:  # one setting, in its own process
        print(json.dumps(_rounds(args.setting, args.gib, args.rounds, args.pause)))
        return
    results = {}
    for setting in SETTINGS:
        command = [sys.executable, __file__, "--setting", setting, "--gib", str(args.gib)]
        command += ["--rounds", str(args.rounds), "--pause", str(args.pause)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        seconds = json.loads(out)
        results[setting] = {"seconds": seconds, "later_rounds_max": max(seconds[1:], default=None)}
    print(
        json.dumps(
            {
                "benchmark": "fresh_pages",
                "cpu": cpu_name(),
                "load_average": load_average(),
                "gib": args.gib,
                "pause_seconds": args.pause,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
