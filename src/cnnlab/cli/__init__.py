"""The ``cnnlab`` command line: a thin argparse layer over the public API.

Every user error is a :class:`~cnnlab.errors.CnnlabError`; it is printed as one line (no
traceback) and the process exits with status 2. ``--json`` prints one JSON document on
stdout; progress and human lines go to stderr.

Layout: one module per command family, listed in :data:`COMMANDS` (their order is the order
of ``cnnlab --help``):

- :mod:`~cnnlab.cli.models`: ``models``, ``summary``, ``gradcheck``
- :mod:`~cnnlab.cli.data`: ``data fetch``, ``data list``, ``show``
- :mod:`~cnnlab.cli.recipes`: ``recipes`` (the named recipes of ``train --recipe``)
- :mod:`~cnnlab.cli.train`: ``train``, ``finetune`` (options generated from ``TrainConfig``
  field metadata by :mod:`~cnnlab.cli.config_flags`)
- :mod:`~cnnlab.cli.evaluate`: ``evaluate``, ``predict``, ``ensemble``, ``report``
- :mod:`~cnnlab.cli.pictures`: ``plot``, ``features``, ``filters``, ``cam``, ``confusion``
- :mod:`~cnnlab.cli.export`: ``export`` (a verified ONNX file, :mod:`cnnlab.export`)
- :mod:`~cnnlab.cli.explore`: ``explore`` (the local web page of :mod:`cnnlab.explore`)
- :mod:`~cnnlab.cli.common`: the parser class, common flags as argparse parents (``JSON``,
  ``CACHE_DIR``, ``PROGRESS``, ``SPLIT``, ``INVERT``), JSON output, ``KEY=VALUE`` options.

Adding a command: write a module with

- ``add_parser(subparsers) -> None``: calls ``subparsers.add_parser(NAME, help=...)`` for its
  command(s), taking common flags from :mod:`cnnlab.cli.common` as parents, e.g.
  ``subparsers.add_parser("export", parents=[JSON], help=...)`` (never declare ``--json``,
  ``--cache-dir`` or ``--progress`` again);
- ``run(args) -> int``: the handler of its command, returning the exit status. It imports the
  API it calls inside the function (``cnnlab --help`` stays fast and torch-free), makes ONE
  call into the API and prints the result (``emit_json`` for ``--json``); no computing here.
  A module with several commands instead gives each parser its handler with
  ``parser.set_defaults(func=run_NAME)``.

then add the module to :data:`COMMANDS`: that one line is all the registration there is.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from cnnlab import __version__
from cnnlab.cli import data, evaluate, explore, export, models, pictures, recipes, train
from cnnlab.cli.common import SHOWN_WARNINGS, Parser, add_threads, show_warning
from cnnlab.cli.examples import examples_text
from cnnlab.cli.launch import rank_prefix, run_command
from cnnlab.errors import CnnlabError, ReportedError
from cnnlab.threads import (
    choose_waiting,
    cpu_snapshot,
    request_threads,
    thread_settings_restored,
)

COMMANDS = (models, data, recipes, train, evaluate, pictures, export, explore)


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnlab`` parser: one sub-parser per command of the :data:`COMMANDS` modules;
    ``args.func(args)`` runs the parsed command."""
    parser = Parser(
        prog="cnnlab",
        description="Build, inspect, train, evaluate and look inside convolutional networks.",
        epilog=examples_text("cnnlab"),
    )
    parser.add_argument(
        "--version", action="version", version=f"cnnlab {__version__}", help="print the version"
    )
    add_threads(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        run = getattr(module, "run", None)  # the handler of a one-command module
        for name in subparsers.choices.keys() - before:
            command = subparsers.choices[name]
            if run is not None and command.get_default("func") is None:
                command.set_defaults(func=run)
            _add_threads_to_leaves(command)
    _add_examples(parser, "")
    return parser


def _add_threads_to_leaves(command: argparse.ArgumentParser) -> None:
    """``--threads`` on a command, or on each sub-command of a command group."""
    groups = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        add_threads(command)
    for group in groups:
        for sub in set(group.choices.values()):
            _add_threads_to_leaves(sub)


def _add_examples(parser: argparse.ArgumentParser, path: str) -> None:
    """Put each command's examples (:mod:`cnnlab.cli.examples`) at the end of its help,
    nested commands (``data fetch``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                full = f"{path} {name}".strip()
                command.epilog = command.epilog or examples_text(full)
                _add_examples(command, full)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnlab``; returns the exit status (2 for user errors). The thread
    settings it changes (``--threads``, OpenMP's waiting) are restored when it returns."""
    with thread_settings_restored():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    started = cpu_snapshot()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    choose_waiting(started)  # before torch is imported: see cnnlab.threads
    SHOWN_WARNINGS.clear()  # each command shows each warning once
    try:
        if getattr(args, "threads", None) is not None:
            request_threads(args.threads)  # this process and any it starts (--nproc workers)
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return run_command(args, argv)  # --nproc, torchrun's process group, or as it is
    except ReportedError:  # another process printed it
        return 2
    except CnnlabError as exc:
        for line in str(exc).splitlines() or [""]:  # one line per problem (resume conflicts)
            print(f"cnnlab: error: {rank_prefix()}{line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        hint = f"; {exc}" if str(exc) else ""  # train: how to go on
        print(f"cnnlab: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `cnnlab models | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
