"""A process that imports the cnnlab CLI (and torch) once, then runs each command it is sent
in a fresh child process it forks: the child runs ``cnnlab.cli.main`` exactly as
``python -m cnnlab`` does, without paying the imports again (2-3 s of a 2-core machine).

Used by tests that start many short-lived commands only to kill them (their subject is what
the killed command leaves behind, not how it starts). See :class:`process_helpers.ForkingCli`.

Usage: python tests/forking_cli.py CACHE_DIR, then one JSON request a line on stdin:

- ``{"run": [ARG, ...], "stderr": PATH}``: fork a child running ``cnnlab ARG... --cache-dir
  CACHE_DIR`` (stdout to /dev/null, stderr to PATH); answers ``{"pid": PID}``;
- ``{"wait": PID}``: wait for that child to end; answers ``{"status": EXIT_STATUS}`` (minus
  the signal number when a signal ended it, as :attr:`subprocess.Popen.returncode`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# imported once here, what the children do not pay again: torch, torch._dynamo (which the
# first optimizer a process builds imports: seconds), the training code, matplotlib (curves)
import torch._dynamo  # noqa: F401

import cnnlab.training.run
import cnnlab.viz.plots  # noqa: F401
from cnnlab.cli import main
from subset_cli import register_subset


def _child(argv: list[str], cache_dir: str, stderr: str) -> None:
    """In the forked child: run the command and leave with its exit status (never returns)."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
        sys.argv = ["cnnlab", *argv]  # what the run lock records as the holder's command
        status = main([*argv, "--cache-dir", cache_dir])
    except SystemExit as exc:  # argparse usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def serve(cache_dir: str) -> None:
    register_subset()
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            pid = os.fork()
            if pid == 0:
                _child([str(a) for a in request["run"]], cache_dir, request["stderr"])
            answer = {"pid": pid}
        else:
            _, code = os.waitpid(int(request["wait"]), 0)
            answer = {"status": os.waitstatus_to_exitcode(code)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
