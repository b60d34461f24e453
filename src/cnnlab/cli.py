"""The ``cnnlab`` command line: a thin argparse layer over the public API.

Every user error is a :class:`CnnlabError`; it is printed as one line (no traceback) and the
process exits with status 2. ``--json`` prints one JSON document on stdout; progress and human
lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.training.config import MONITORS, OPTIMIZERS, SCHEDULES, TrainConfig

_DEFAULTS = TrainConfig()


def _emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with value read as JSON when it parses (numbers, true/false), else text."""
    if "=" not in text:
        raise ConfigError(f"expected a model option as key=value, received {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


# ---- commands ------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from cnnlab.analysis import format_models, model_overview

    rows = model_overview(args.pattern)
    if args.json:
        _emit_json(rows)
    else:
        print(format_models(rows))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnlab.analysis import format_explain, summary
    from cnnlab.training.run import is_run_or_checkpoint, load_run

    kwargs = dict(_parse_option(o) for o in args.model_option or ())
    model, input_shape = args.model, args.input
    if is_run_or_checkpoint(args.model):
        run = load_run(args.model)
        model, input_shape = run.model, input_shape or run.meta["input_shape"]
    result = summary(model, input_shape, args.num_classes, **kwargs)
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(result.table())
        if args.explain:
            print()
            print(format_explain(result))
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from cnnlab.data.datasets import fetch_dataset

    folder = fetch_dataset(args.name, args.cache_dir, force=args.force)
    if args.json:
        _emit_json({"dataset": args.name, "path": str(folder)})
    else:
        print(f"{args.name}: verified and cached in {folder}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.evaluate import evaluate
    from cnnlab.training.run import BEST, fit

    if args.resume is None and (args.model is None or args.out is None):
        raise ConfigError(
            "expected MODEL and --out DIR (or --resume DIR), received "
            f"model={args.model!r}, out={args.out!r}"
        )
    options = {
        name: getattr(args, name) for name in _TRAIN_OPTIONS if getattr(args, name) is not None
    }
    if args.model_option:
        options["model_kwargs"] = dict(_parse_option(o) for o in args.model_option)
    run_dir = args.resume if args.resume is not None else args.out
    if args.resume is not None:
        history = fit(
            resume=args.resume, progress=args.progress, cache_dir=args.cache_dir, **options
        )
    else:
        history = fit(
            args.model,
            args.data,
            out=args.out,
            progress=args.progress,
            cache_dir=args.cache_dir,
            **options,
        )
    report = evaluate(run_dir, cache_dir=args.cache_dir)
    if args.json:
        _emit_json(
            {
                "run": str(run_dir),
                **history.to_dict(),
                "test": {
                    "accuracy": report.accuracy,
                    "loss": report.loss,
                    "checkpoint": report.checkpoint,
                },
            }
        )
    else:
        name = BEST if report.checkpoint.endswith(BEST) else "last"
        print(
            f"test accuracy {report.accuracy:.2%} (loss {report.loss:.4f}) on "
            f"{report.examples} test images with the {name} checkpoint; run in {run_dir}"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.evaluate import evaluate
    from cnnlab.training.run import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    report = evaluate(
        run, data=args.data, split=args.split, top_k=args.top_k, cache_dir=args.cache_dir
    )
    if args.json:
        _emit_json(report.to_dict())
    else:
        print(report.render())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.predict import predict

    predictions = predict(args.run, args.images, top_k=args.top_k, invert=args.invert)
    if args.json:
        _emit_json([p.to_dict() for p in predictions])
    else:
        for p in predictions:
            print(p.render())
    return 0


# ---- parser --------------------------------------------------------------------------------
_TRAIN_OPTIONS = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "step_epochs",
    "step_gamma",
    "label_smoothing",
    "val_split",
    "seed",
    "device",
    "monitor",
    "early_stopping",
    "checkpoint_every",
)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    p.add_argument("--epochs", type=int, help=f"epochs (default {d.epochs})")
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        help=f"mini-batch size (default {d.batch_size})",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d.optimizer})")
    p.add_argument("--lr", type=float, help=f"(peak) learning rate (default {d.lr})")
    p.add_argument("--momentum", type=float, help=f"for momentum/nesterov (default {d.momentum})")
    p.add_argument(
        "--weight-decay", dest="weight_decay", type=float, help=f"(default {d.weight_decay})"
    )
    p.add_argument(
        "--schedule", choices=SCHEDULES, help=f"learning-rate schedule (default {d.schedule})"
    )
    p.add_argument(
        "--step-epochs",
        dest="step_epochs",
        type=int,
        help=f"step schedule: decay every N epochs (default {d.step_epochs})",
    )
    p.add_argument(
        "--step-gamma",
        dest="step_gamma",
        type=float,
        help=f"step schedule: decay factor (default {d.step_gamma})",
    )
    p.add_argument(
        "--label-smoothing",
        dest="label_smoothing",
        type=float,
        help=f"(default {d.label_smoothing})",
    )
    p.add_argument(
        "--val-split",
        dest="val_split",
        type=float,
        help=f"share of training data held out for validation (default {d.val_split})",
    )
    p.add_argument("--seed", type=int, help=f"(default {d.seed})")
    p.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:N (default auto)")
    p.add_argument(
        "--monitor",
        choices=MONITORS,
        help=f"metric that picks the best checkpoint (default {d.monitor})",
    )
    p.add_argument(
        "--early-stopping",
        dest="early_stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement of --monitor (0: off)",
    )
    p.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=int,
        metavar="STEPS",
        help="also write the resumable checkpoint every STEPS steps (0: epoch ends only)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``cnnlab train: error: ...``) and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="per-layer shapes, parameters, MACs, receptive fields")
    p.add_argument("model", help="registered name, path/to/file.py:callable, run or checkpoint")
    p.add_argument("--input", help="input shape C,H,W (default: the model's)")
    p.add_argument("--num-classes", dest="num_classes", type=int)
    p.add_argument("--model-option", dest="model_option", action="append", metavar="KEY=VALUE")
    p.add_argument("--explain", action="store_true",
                   help="show the output-size and parameter arithmetic of each conv/pool layer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = data_sub.add_parser("fetch", help="download, verify and cache a dataset")
    f.add_argument("name", help="dataset name, e.g. mnist")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    f.add_argument("--cache-dir", dest="cache_dir", help="default ~/.cache/cnnlab")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data_fetch)

    p = sub.add_parser("train", help="train a model; writes a run directory")
    p.add_argument("model", nargs="?", help="registered model name (see `cnnlab models`)")
    p.add_argument("--data", default="mnist", help="dataset (default mnist)")
    p.add_argument("--out", help="new run directory")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument(
        "--model-option",
        dest="model_option",
        action="append",
        metavar="KEY=VALUE",
        help="model option, e.g. activation=tanh (repeatable)",
    )
    _add_train_options(p)
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress bar even when stderr is not a terminal",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--cache-dir", dest="cache_dir", help="dataset cache (default ~/.cache/cnnlab)")
    p.add_argument("--json", action="store_true", help="print history and test metrics as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="loss, accuracy, top-k, per-class metrics, confusion")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("--data", help="dataset (default: the run's)")
    p.add_argument("--split", default="test", choices=("test", "train"))
    p.add_argument("--top-k", dest="top_k", type=int, default=5)
    p.add_argument("--checkpoint", default="best", choices=("best", "last"))
    p.add_argument("--cache-dir", dest="cache_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or BMP files")
    p.add_argument("--top-k", dest="top_k", type=int, default=3)
    p.add_argument(
        "--invert",
        action="store_true",
        help="invert grey levels (dark digits on light paper -> MNIST's light on dark)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnlab``; returns the exit status (2 for user errors)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CnnlabError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `cnnlab models | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
