"""The command line's side of several processes: the launch options of ``train`` and
``finetune``, and how a command runs under torchrun.

- ``--nproc N [--max-restarts K] [--port P]`` starts torchrun's elastic agent in this process
  (:mod:`cnnlab.training.launch`); the workers run the same command line without these options.
- Under torchrun (``torchrun ... -m cnnlab train ...``, or a worker of ``--nproc``), ``train``,
  ``finetune`` and ``evaluate`` join the process group for the whole command (training, then
  the test evaluation, both sharded over the processes); only rank 0 prints on stdout, and an
  error of another rank is printed with its rank (one the ranks met together, once).
- ``--dist-timeout S`` bounds every wait for the other processes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.training.launch import DEFAULT_TIMEOUT, LaunchOptions, launched_by_torchrun

DISTRIBUTED_COMMANDS = ("train", "finetune", "evaluate")


def add_timeout_option(p: argparse.ArgumentParser) -> None:
    """``--dist-timeout`` (commands that run under torchrun)."""
    p.add_argument(
        "--dist-timeout",
        dest="dist_timeout",
        type=float,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others, when joining and in "
        f"every exchange, before it gives up (default {DEFAULT_TIMEOUT:g})",
    )


def add_launch_options(p: argparse.ArgumentParser) -> None:
    """``--nproc``, ``--max-restarts``, ``--port`` and ``--dist-timeout`` of train and finetune."""
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (torchrun's agent, one per GPU on CUDA; "
        "--batch-size stays the global batch); see docs/distributed.md",
    )
    p.add_argument(
        "--max-restarts",
        dest="max_restarts",
        type=int,
        default=0,
        metavar="K",
        help="with --nproc: restart the processes up to K times when one dies; they continue "
        "from the last checkpoint (see --checkpoint-every) (default 0)",
    )
    p.add_argument(
        "--port",
        type=int,
        metavar="P",
        help="with --nproc: the rendezvous port on 127.0.0.1 (default: a free one)",
    )
    add_timeout_option(p)


def rank_prefix() -> str:
    """``"rank R: "`` in a process of torchrun other than rank 0, else ``""``."""
    rank = os.environ.get("RANK", "0") if launched_by_torchrun() else "0"
    return "" if rank == "0" else f"rank {rank}: "


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the parsed command: through the ``--nproc`` launcher, in torchrun's process group,
    or as it is."""
    if getattr(args, "nproc", None) is not None:
        return _launch(args, argv)
    if args.command in DISTRIBUTED_COMMANDS and launched_by_torchrun():
        from cnnlab.training.distributed import session

        with session(getattr(args, "dist_timeout", None)) as ctx:
            if ctx.is_main:
                return args.func(args)
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                warnings.simplefilter("ignore")  # rank 0 shows the same warnings
                return args.func(args)
    launch_options = hasattr(args, "max_restarts")  # train and finetune (explore has a --port)
    if launch_options and (args.max_restarts or args.port is not None):
        from cnnlab.errors import ConfigError

        raise ConfigError(
            "expected --max-restarts and --port only with --nproc, received "
            f"max_restarts={args.max_restarts}, port={args.port} without --nproc"
        )
    return args.func(args)


def _launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from cnnlab.inference import resolve_device
    from cnnlab.training.distributed import check_training
    from cnnlab.training.launch import launch

    options = LaunchOptions(args.nproc, args.max_restarts, args.port)
    options.check()
    config = _preflight(args)
    device = resolve_device(config.device)
    check_training(config, args.nproc, device)
    from cnnlab.runs import CONFIG_FILE
    from cnnlab.training.run_lock import RunOwnership

    # this process holds the run for the workers (their rank 0 sees its parent holds it)
    run = getattr(args, "resume", None) or args.out
    owner = RunOwnership(Path(run), config_file=CONFIG_FILE)
    with owner.claim() if getattr(args, "resume", None) is not None else owner.claim_new():
        launch(argv, dataclasses.replace(options, cuda=device.type == "cuda"), run)
    return 0


def _preflight(args: argparse.Namespace) -> Any:
    """What can be refused before any process starts: the training options and a resumed
    run's world size. Returns the (partial) training config."""
    from cnnlab.runs import read_run_config, read_run_meta
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.distributed import check_resumed_world

    names = {field.name for field in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if args.command == "train" and getattr(args, "resume", None) is not None:
        saved = read_run_config(Path(args.resume))
        world = read_run_meta(Path(args.resume)).world_size
        check_resumed_world(world, args.resume, args.nproc)
        return TrainConfig.from_dict(saved["config"], f"{args.resume}/config.json")
    if args.command == "train":
        if args.model is None or args.out is None:
            from cnnlab.errors import ConfigError

            raise ConfigError(
                "expected MODEL and --out DIR (or --resume DIR), received "
                f"model={args.model!r}, out={args.out!r}"
            )
        config = TrainConfig(**{k: v for k, v in given.items() if k != "model_kwargs"})
    else:  # finetune: the model and freeze come from the source run, checked by the workers
        shared = ("engine", "sync_bn", "batch_size", "device")
        config = TrainConfig(**{k: given[k] for k in shared if k in given})
    return config
