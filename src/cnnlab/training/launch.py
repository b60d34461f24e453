"""``cnnlab train ... --nproc N``: torchrun's elastic agent started from the command line.

The shortcut runs the agent of ``torchrun --standalone --nproc-per-node N`` in this process
through torch's own API (:func:`torch.distributed.launcher.api.elastic_launch` with a
:class:`~torch.distributed.launcher.api.LaunchConfig`: one machine, a c10d rendezvous on
127.0.0.1), which starts N workers running the same ``cnnlab`` command line without the launch
options (``python -m cnnlab train ...``). Each worker then finds the process group in its
environment, exactly as under ``torchrun`` (:func:`cnnlab.training.distributed.session`).

With ``--max-restarts K`` the agent restarts the whole group when a worker dies, up to K
times; the restarted workers continue the run from its last checkpoint. When a worker fails
and no restart is left, the shortcut stops with one line and exit status 2; the run's last
checkpoint is intact and ``--resume`` continues it.

The workers die with the shortcut (:func:`follow_launcher`): killed in any way, SIGKILL
included, it leaves no worker training on in a run folder whose lock it no longer holds.

This module imports torch only inside :func:`launch`, so the command line stays quick to load.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import ConfigError, DistributedError, ReportedError
from cnnlab.threads import cpu_cores

DEFAULT_TIMEOUT = 1800.0  # seconds a process waits for its peers (joining, and in collectives)
JOIN_TIMEOUT = 600.0  # seconds the agents wait for each other at the rendezvous (torch's default)
LAUNCH_FLAGS = ("--nproc", "--max-restarts", "--port")  # the shortcut's options, not the workers'
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_ENV = "CNNLAB_LAUNCHER_PID"  # tells the shortcut's workers who started them
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun (or by the ``--nproc`` shortcut): its
    environment names its rank, the world size and where the process group meets."""
    return all(name in os.environ for name in TORCHRUN_ENV)


@dataclass(frozen=True)
class LaunchOptions:
    """How the shortcut starts the workers.

    Attributes:
        nproc: worker processes (one per GPU on CUDA machines).
        max_restarts: how often the agent restarts the group after a worker died.
        port: the rendezvous port on 127.0.0.1 (None: a free one).
        cuda: the workers train on CUDA (their CPU threads are not split).
    """

    nproc: int
    max_restarts: int = 0
    port: int | None = None
    cuda: bool = False

    def check(self) -> None:
        """Refuse impossible launches, one line each.

        Raises:
            ConfigError: ``--nproc`` below 1, negative restarts, ``--nproc`` inside torchrun,
                a port outside 1..65535 or one that is in use.
        """
        if type(self.nproc) is not int or self.nproc < 1:
            raise ConfigError(f"expected --nproc of at least 1 process, received {self.nproc}")
        if self.max_restarts < 0:
            raise ConfigError(f"expected --max-restarts >= 0, received {self.max_restarts}")
        if launched_by_torchrun():
            raise ConfigError(
                f"expected --nproc only outside torchrun, received --nproc {self.nproc} in rank "
                f"{os.environ['RANK']} of the {os.environ['WORLD_SIZE']} processes torchrun started"
            )
        if self.port is not None:
            _check_port_free(self.port)


def _root_failure(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure to report: a worker killed by a signal or crashed, before the others that
    stopped because of it; a user error (exit status 2) only when all are."""

    def weight(rank: int) -> tuple[bool, float]:
        return failures[rank].exitcode == 2, failures[rank].timestamp

    rank = min(failures, key=weight)
    return rank, failures[rank]


def follow_launcher() -> None:
    """In a worker of the ``--nproc`` shortcut: end when the shortcut ends, however it ends.

    The kernel SIGKILLs this process when its parent (the shortcut, whose elastic agent
    started it) exits (Linux ``PR_SET_PDEATHSIG``). Without it, a shortcut killed with
    SIGKILL would leave its workers training on, unsupervised, in a run folder whose lock
    died with the shortcut. Does nothing outside the shortcut's workers, or off Linux.
    """
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if str(os.getppid()) != launcher:  # the shortcut ended before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def oversubscription(processes: int, cores: int) -> str | None:
    """The warning for ``processes`` CPU training processes on ``cores`` cores, if too many."""
    if processes <= cores:
        return None
    return (
        f"{processes} training processes on {cores} CPU cores: the cores are oversubscribed "
        f"and every step waits for the slowest process (use {cores} processes or fewer)"
    )


def _check_port_free(port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"expected --port in 1..65535, received --port {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(
                f"expected a free --port on 127.0.0.1 for the rendezvous, received --port "
                f"{port}, which is in use ({exc.strerror})"
            ) from None


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The command line each worker runs: ``argv`` without the launch options.

    Raises:
        ConfigError: a launch option abbreviated (it could not be removed reliably).
    """
    kept: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = "=" not in token
            continue
        if token.startswith("--") and any(
            flag.startswith(name) and len(name) > 2 for flag in LAUNCH_FLAGS
        ):
            raise ConfigError(
                f"expected the launch options spelled in full ({', '.join(LAUNCH_FLAGS)}), "
                f"received {token!r}"
            )
        kept.append(token)
    return kept


def launch(argv: Sequence[str], options: LaunchOptions, run: str | None = None) -> None:
    """Start ``options.nproc`` workers running ``python -m cnnlab ARGV`` (ARGV without the
    launch options) under torchrun's elastic agent, and wait for them. ``run`` is the run
    folder (named in the message when the workers fail).

    Workers use ``max(1, cores // nproc)`` threads each on the CPU unless ``OMP_NUM_THREADS``
    says otherwise.

    ``options`` are checked first (:meth:`LaunchOptions.check`).

    Raises:
        ReportedError: a worker stopped with a user error it printed itself (exit status 2).
        DistributedError: a worker died (signal, crash) and no restart was left, or the
            agent could not start the group; the message names the rank and the cause.
    """
    options.check()
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if not options.cuda and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, cpu_cores() // options.nproc))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=options.nproc,
        run_id=uuid.uuid4().hex,
        role="cnnlab",
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{options.port or 0}",
        rdzv_configs={"join_timeout": int(JOIN_TIMEOUT)},
        max_restarts=options.max_restarts,
        monitor_interval=0.1,
    )
    command = ["-u", "-m", "cnnlab", *worker_argv(argv)]
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # failures are reported below, restarts by rank 0
    os.environ[LAUNCHER_ENV] = str(os.getpid())  # the workers die with this process
    try:
        elastic_launch(config, sys.executable)(*command)
    except ChildFailedError as exc:
        rank, failure = _root_failure(exc.failures)
        if failure.exitcode == 2:  # a user error: the worker printed its one line
            raise ReportedError(f"rank {rank} stopped with a user error") from None
        cause = (
            f"signal {failure.signal_name()}"
            if failure.exitcode < 0
            else f"exit {failure.exitcode}"
        )
        restarts = options.max_restarts
        resume = f"cnnlab train --resume {run or 'RUN'} --nproc {options.nproc}"
        raise DistributedError(
            f"expected {options.nproc} training processes to finish, received rank {rank} "
            f"stopped by {cause} with no restart left (--max-restarts {restarts}); the run's "
            f"last checkpoint is kept: continue with {resume}"
        ) from None
    except (RendezvousError, RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"expected torchrun's agent to start {options.nproc} processes on 127.0.0.1, "
            f"received: {reason}"
        ) from None
    finally:
        quiet.setLevel(level)
        os.environ.pop(LAUNCHER_ENV, None)
