"""Run cnnlab commands in one torchrun process group and record what this rank did.

Usage (as torchrun's training script)::

    torchrun --nproc-per-node 2 tests/training/ddp_probe.py RECORD_DIR ARGS [--then ARGS ...]

Each ``ARGS`` is a cnnlab command line; they run one after the other in the same process
group (``cnnlab.cli.main``, exactly as ``python -m cnnlab`` would run them). Nothing is
changed; the probe only watches, and writes ``RECORD_DIR/rank-R.json`` with

- ``batches``: ``[epoch, position, [example indices]]`` of every training step of this rank,
- ``decoded``: the image files this rank decoded (streamed folders),
- ``written``: every path this rank opened for writing, renamed to or created (Python's
  audit events ``open``, ``os.rename``, ``os.link`` and ``os.mkdir``),
- ``outputs``: what each command printed on stdout, and ``status``: its exit status.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

from cnnlab.cli import main
from cnnlab.data import image_files
from cnnlab.training import loop
from cnnlab.training.distributed import session

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _record_writes(written: list[str]) -> None:
    def hook(event: str, args: tuple) -> None:
        if event == "open" and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (not mode and flags & WRITE_FLAGS):
                written.append(os.fspath(args[0]))
        elif event in ("os.rename", "os.link"):  # os.link: config.json, created exclusively
            written.append(os.fspath(args[1]))
        elif event == "os.mkdir":
            written.append(os.fspath(args[0]))

    sys.addaudithook(hook)


def _record_steps(batches: list) -> None:
    original = loop.Trainer._train_step

    def step(self: loop.Trainer, batch, images, global_size):
        batches.append([self.epoch, self.batches_done, batch.tolist()])
        return original(self, batch, images, global_size)

    loop.Trainer._train_step = step


def _record_decoding(decoded: list[str]) -> None:
    original = image_files.ImageFiles.__getitem__

    def getitem(self: image_files.ImageFiles, index: int):
        decoded.append(str(self.paths[index]))
        return original(self, index)

    image_files.ImageFiles.__getitem__ = getitem


def run(record_dir: Path, commands: list[list[str]]) -> int:
    record = {"batches": [], "decoded": [], "written": [], "outputs": [], "status": []}
    _record_steps(record["batches"])
    _record_decoding(record["decoded"])
    _record_writes(record["written"])
    with session():
        for argv in commands:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                record["status"].append(main(argv))
            record["outputs"].append(out.getvalue())
    rank = os.environ["RANK"]
    (record_dir / f"rank-{rank}.json").write_text(json.dumps(record))
    return max(record["status"])


if __name__ == "__main__":
    record_dir, *rest = sys.argv[1:]
    commands: list[list[str]] = [[]]
    for token in rest:
        if token == "--then":
            commands.append([])
        else:
            commands[-1].append(token)
    raise SystemExit(run(Path(record_dir), commands))
