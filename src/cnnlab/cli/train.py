"""``train`` and ``finetune``: write a run directory, then print its test metrics.

Their training options are generated from :class:`~cnnlab.training.config.TrainConfig` (see
:mod:`cnnlab.cli.config_flags`); the line or JSON printed at the end is
:class:`~cnnlab.evaluation.training_result.TrainingResult`'s.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import (
    CACHE_DIR,
    JSON,
    PROGRESS,
    add_model_option,
    model_options,
    passed_on,
    print_result,
)
from cnnlab.cli.config_flags import add_config_flag, config_fields, given_options
from cnnlab.cli.launch import add_launch_options
from cnnlab.errors import ConfigError

_TRAINING_OPTIONS = "training options"


def add_parser(subparsers: Any) -> None:
    common = [JSON, CACHE_DIR, PROGRESS]
    p = subparsers.add_parser("train", parents=common, help="train a model; writes a run directory")
    p.add_argument(
        "model",
        nargs="?",
        help="registered model name (see `cnnlab models`; default: the recipe's) or "
        "path/to/file.py:callable (a function returning an nn.Module)",
    )
    p.add_argument(  # None when not given: a resume compares only what the user gave
        "--data",
        help="dataset: mnist, fashion-mnist, cifar10 or an image folder (default: mnist, or the "
        "recipe's)",
    )
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help="start from a named recipe (model, data, options; see `cnnlab recipes`); the "
        "model, --data and options given here override its values",
    )
    p.add_argument("--out", help="new run directory")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    add_model_option(p)
    options = p.add_argument_group(_TRAINING_OPTIONS)
    for config_field in config_fields("train"):
        add_config_flag(options, config_field)
    add_launch_options(p)
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "finetune", parents=common, help="transfer a trained network to new data (new head)"
    )
    p.add_argument("source", metavar="RUN_OR_CKPT", help="trained run directory or checkpoint")
    p.add_argument("--data", required=True, help="dataset of the new task")
    p.add_argument("--out", required=True, help="new run directory")
    options = p.add_argument_group(_TRAINING_OPTIONS)
    for config_field in config_fields("finetune"):
        if config_field.name != "freeze":
            add_config_flag(options, config_field)
            continue
        freeze = options.add_mutually_exclusive_group()
        add_config_flag(freeze, config_field)
        freeze.add_argument(
            "--head-only",
            dest="head_only",
            action="store_true",
            help="train only the new classifier layer (--freeze head-only)",
        )
    add_launch_options(p)
    p.set_defaults(func=run_finetune)


def run_train(args: argparse.Namespace) -> int:
    from cnnlab.training.run import fit, resume

    if args.resume is None and ((args.model is None and args.recipe is None) or args.out is None):
        raise ConfigError(
            "expected MODEL (or --recipe NAME) and --out DIR (or --resume DIR), received "
            f"model={args.model!r}, out={args.out!r}"
        )
    options = given_options(args, "train")
    if args.recipe is not None:
        options["recipe"] = args.recipe
    if args.model_option:
        options["model_kwargs"] = model_options(args.model_option)
    # the test result is printed before the curves are drawn (both before the command ends)
    common = {"progress": args.progress, "cache_dir": args.cache_dir, "defer_curves": True}
    run = args.resume if args.resume is not None else args.out
    try:
        if args.resume is not None:  # what is given again is compared with the saved run
            again = {"model": args.model, "data": args.data, "out": args.out}
            given = {name: value for name, value in again.items() if value is not None}
            history = resume(args.resume, **common, **given, **options)
        else:
            data = args.data if args.data is not None or args.recipe else "mnist"
            history = fit(args.model, data, out=args.out, **common, **options)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(resume_hint(run)) from None
    return _print_result(args, run, history)


def resume_hint(run: str) -> str:
    """What Ctrl-C leaves behind and how to go on (the words after ``cnnlab: interrupted``)."""
    from pathlib import Path

    from cnnlab.runs import CONFIG_FILE, LAST

    folder = Path(run)
    if not (folder / CONFIG_FILE).is_file():
        return "nothing of the run was saved; start it again with the same command"
    since = (
        "its last checkpoint" if (folder / LAST).is_file() else "the beginning (no checkpoint yet)"
    )
    return f"continue the run from {since} with: cnnlab train --resume {run}"


def run_finetune(args: argparse.Namespace) -> int:
    from cnnlab.transfer import finetune

    try:
        history = finetune(
            args.source,
            args.data,
            **passed_on(args, "out", "head_only", "progress", "cache_dir"),
            **given_options(args, "finetune"),
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(resume_hint(args.out)) from None
    return _print_result(args, args.out, history)


def _print_result(args: argparse.Namespace, run_dir: str, history: Any) -> int:
    from cnnlab.evaluation.training_result import training_result
    from cnnlab.viz.plots import draw_deferred_curves  # matplotlib loads when drawing only

    try:
        result = training_result(run_dir, history, cache_dir=args.cache_dir)
        print_result(args.json, result.to_dict, result.format)
    finally:
        draw_deferred_curves()  # curves.png is complete before the command ends
    return 0
