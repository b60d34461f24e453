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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from cnnlab import cli_export
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.training.config import ENGINES, MONITORS, OPTIMIZERS, SCHEDULES, TrainConfig

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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``cnnlab: warning: ...`` line on stderr (no source location)."""
    print(f"cnnlab: warning: {message}", file=sys.stderr)


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

    folder = fetch_dataset(args.name, args.cache_dir, force=args.force, source=args.source)
    if args.json:
        _emit_json({"dataset": args.name, "path": str(folder)})
    else:
        print(f"{args.name}: verified and cached in {folder}")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from cnnlab.data.datasets import DATASETS, default_cache_dir
    from cnnlab.data.sources import cache_is_valid

    cache = default_cache_dir() if args.cache_dir is None else args.cache_dir
    rows = [
        {
            "name": info.name,
            "classes": len(info.classes),
            "description": info.description,
            "files": [f.name for f in info.files],
            "cached": cache_is_valid(Path(cache) / info.name, info.files),
        }
        for info in DATASETS.values()
    ]
    if args.json:
        _emit_json(rows)
        return 0
    for row in rows:
        state = "cached" if row["cached"] else "not cached"
        print(f"{row['name']:<14} {state:<11} {row['description']}  [{', '.join(row['files'])}]")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from cnnlab.viz.show import show_dataset

    path = show_dataset(
        args.data,
        args.output,
        augment=args.augment,
        count=args.count,
        versions=args.versions,
        seed=args.seed,
        cache_dir=args.cache_dir,
        image_size=args.image_size,
        channels=args.channels,
    )
    print(f"wrote {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.training.run import fit

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
    return _print_training_result(args, history, run_dir)


def _print_training_result(args: argparse.Namespace, history: Any, run_dir: str) -> int:
    """What ``train`` and ``finetune`` print: history and test metrics of the new run."""
    from cnnlab.evaluation.evaluate import evaluate
    from cnnlab.training.run import BEST

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
    from cnnlab.export.runtime import is_onnx_path
    from cnnlab.training.run import load_run

    run = args.run if is_onnx_path(args.run) else load_run(args.run, checkpoint=args.checkpoint)
    report = evaluate(
        run,
        data=args.data,
        split=args.split,
        top_k=args.top_k,
        cache_dir=args.cache_dir,
        tta=args.tta,
        crop_size=args.crop_size,
        mistakes=args.mistakes,
        classes=args.classes,
        stream=args.stream,
        workers=args.workers,
    )
    if args.json:
        _emit_json(report.to_dict())
    else:
        print(report.render())
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from cnnlab.transfer import finetune

    options = {
        name: getattr(args, name) for name in _TRAIN_OPTIONS if getattr(args, name) is not None
    }
    history = finetune(
        args.source,
        args.data,
        out=args.out,
        freeze=args.freeze,
        head_only=args.head_only,
        cache_features=args.cache_features,
        lr_backbone=args.lr_backbone,
        progress=args.progress,
        cache_dir=args.cache_dir,
        **options,
    )
    return _print_training_result(args, history, args.out)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.ensemble import ensemble

    report = ensemble(
        args.runs, data=args.data, split=args.split, combine=args.combine, cache_dir=args.cache_dir
    )
    if args.json:
        _emit_json(report.to_dict())
    else:
        print(report.render())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from cnnlab.viz.report import write_report

    path = write_report(
        args.run, args.output, data=args.data, mistakes=args.mistakes, cache_dir=args.cache_dir
    )
    print(f"report written to {path}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from cnnlab.bridge.gradcheck import check_gradients

    report = check_gradients(
        args.target,
        _input_shape(args.input) if args.input else None,
        batch=args.batch,
        num_classes=args.num_classes,
        max_elements=args.max_elements or None,
        tolerance=args.tolerance,
        seed=args.seed,
    )
    if args.json:
        _emit_json(report.to_dict())
    else:
        print("\n".join(report.lines()))
    return 0 if report.passed else 1


def _input_shape(text: str) -> tuple[int, int, int]:
    """``--input C,H,W``."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"expected --input C,H,W of positive whole numbers, received {text!r}")
    return shape  # type: ignore[return-value]


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.predict import predict
    from cnnlab.export.runtime import load_onnx_run

    run = args.run
    if args.input or args.classes:  # an ONNX file without cnnlab metadata (cnnlab.export)
        shape = _input_shape(args.input) if args.input else None
        run = load_onnx_run(args.run, input_shape=shape, classes=args.classes)
    predictions = predict(run, args.images, top_k=args.top_k, invert=args.invert)
    if args.json:
        _emit_json([p.to_dict() for p in predictions])
    else:
        for p in predictions:
            print(p.render())
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from cnnlab.viz.plots import plot_run

    print(f"wrote {plot_run(args.run, args.output)}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from cnnlab.viz.features import plot_features

    path = plot_features(args.run, args.image, args.output, layers=args.layers, invert=args.invert)
    print(f"wrote {path}")
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from cnnlab.viz.filters import plot_filters

    print(f"wrote {plot_filters(args.run, args.output, layer=args.layer)}")
    return 0


def cmd_cam(args: argparse.Namespace) -> int:
    from cnnlab.viz.cam import plot_cam

    path = plot_cam(
        args.run, args.image, args.output, target=args.target, layer=args.layer, invert=args.invert
    )
    print(f"wrote {path}")
    return 0


def cmd_confusion(args: argparse.Namespace) -> int:
    from cnnlab.viz.confusion import plot_confusion

    path = plot_confusion(
        args.run,
        args.output,
        data=args.data,
        split=args.split,
        normalize=args.normalize,
        cache_dir=args.cache_dir,
    )
    print(f"wrote {path}")
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
    "engine",
    "augment",
    "image_size",
    "channels",
    "strict",
    "stream",
    "workers",
    "classes",
    "per_class",
)


def _image_size(text: str) -> list[int]:
    """``--image-size`` as ``S`` (square) or ``H,W``."""
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected SIZE or H,W in pixels, received {text!r}")
    return values


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Options of image-folder data (``--data FOLDER``)."""
    p.add_argument(
        "--image-size",
        dest="image_size",
        type=_image_size,
        metavar="H,W",
        help="image folders: resize every image to SIZE or H,W (default: the model's input)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="image folders: 1 grey-scale or 3 RGB (default: the model's input channels)",
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
    p.add_argument(
        "--engine",
        choices=ENGINES,
        help="torch (autograd) or numpy (cnnlab.scratch, hand-written backward; CPU) "
        f"(default {d.engine})",
    )
    p.add_argument(
        "--augment",
        metavar="SPEC",
        help="random augmentation of training batches, Keras ImageDataGenerator style, e.g. "
        "rotation_range=40,width_shift_range=0.2,zoom_range=0.2,horizontal_flip "
        "(see cnnlab.data.augment_spec)",
    )
    _add_data_options(p)
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="image folders: reject files that are not decodable images (default: skip them)",
    )
    _add_stream_options(p)


def _add_stream_options(p: argparse.ArgumentParser) -> None:
    """``--stream`` and ``--workers`` (image folders too large for memory)."""
    p.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="image folders: decode the images batch by batch from their files instead of "
        "holding them in memory (default: only when they would not fit in a quarter of the RAM)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="image folders: processes decoding images (default min(4, cores); 0: none)",
    )


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classes", help="keep only these classes (names, comma-separated), e.g. 0,1,2,3,4"
    )
    p.add_argument(
        "--per-class",
        dest="per_class",
        type=int,
        metavar="N",
        help="keep N training examples of each class (drawn with --seed)",
    )


def _add_transfer_parsers(sub: Any) -> None:
    """``finetune``, ``ensemble`` and ``report``."""
    p = sub.add_parser("finetune", help="transfer a trained network to new data (new head)")
    p.add_argument("source", metavar="RUN_OR_CKPT", help="trained run directory or checkpoint")
    p.add_argument("--data", required=True, help="dataset of the new task")
    p.add_argument("--out", required=True, help="new run directory")
    freeze = p.add_mutually_exclusive_group()
    freeze.add_argument(
        "--freeze",
        default="none",
        help="what stops learning: none (default), all (the backbone), N (the first N layers "
        "with parameters) or up-to:LAYER (a layer name from `cnnlab summary`)",
    )
    freeze.add_argument(
        "--head-only",
        dest="head_only",
        action="store_true",
        help="train only the new classifier layer",
    )
    p.add_argument(
        "--cache-features",
        dest="cache_features",
        action="store_true",
        help="compute the frozen backbone's features once (cached on disk), train the head on "
        "them; implies --freeze all",
    )
    p.add_argument(
        "--lr-backbone",
        dest="lr_backbone",
        type=float,
        metavar="X",
        help="learning rate of the trainable backbone layers (default: --lr)",
    )
    _add_train_options(p)
    _add_selection_options(p)
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--cache-dir", dest="cache_dir", help="dataset and feature cache")
    p.add_argument("--json", action="store_true", help="print history and test metrics as JSON")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("ensemble", help="several runs combined, each member's accuracy and theirs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or checkpoints")
    p.add_argument("--data", help="dataset (default: the first run's)")
    p.add_argument("--split", default="test", choices=("test", "train"))
    p.add_argument("--combine", default="mean-prob", help="mean-prob (default), mean-logit or vote")
    p.add_argument("--cache-dir", dest="cache_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("--output", default="report.html", help="HTML file (default report.html)")
    p.add_argument("--data", help="dataset (default: the run's)")
    p.add_argument("--mistakes", type=int, default=24, help="worst mistakes in the gallery")
    p.add_argument("--cache-dir", dest="cache_dir")
    p.set_defaults(func=cmd_report)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``cnnlab train: error: ...``) and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_picture_commands(sub: Any) -> None:
    """``plot``, ``features``, ``filters``, ``cam`` and ``confusion`` (:mod:`cnnlab.viz`)."""
    run_help = "run directory or .safetensors checkpoint"
    invert_help = "invert grey levels (dark digits on light paper -> MNIST's light on dark)"

    def output(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument("--output", default=default, help=f"PNG file (default {default})")

    p = sub.add_parser("plot", help="training vs validation accuracy and loss per epoch")
    p.add_argument("run", help="run directory")
    output(p, "curves.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("features", help="feature maps of every conv/pool layer for one image")
    p.add_argument("run", help=run_help)
    p.add_argument("image", help="PNG, JPEG or BMP file")
    p.add_argument(
        "--layers", nargs="+", metavar="LAYER", help="layer names as in `cnnlab summary`"
    )
    p.add_argument("--invert", action="store_true", help=invert_help)
    output(p, "features.png")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("filters", help="the learned kernels of a conv layer")
    p.add_argument("run", help=run_help)
    p.add_argument("--layer", help="conv layer name as in `cnnlab summary` (default: the first)")
    output(p, "filters.png")
    p.set_defaults(func=cmd_filters)

    p = sub.add_parser("cam", help="Grad-CAM and gradient saliency of one image")
    p.add_argument("run", help=run_help)
    p.add_argument("image", help="PNG, JPEG or BMP file")
    p.add_argument(
        "--class", dest="target", metavar="C", help="class name or index (default: predicted)"
    )
    p.add_argument(
        "--layer", help="layer name as in `cnnlab summary` (default: last spatial conv's maps)"
    )
    p.add_argument("--invert", action="store_true", help=invert_help)
    output(p, "cam.png")
    p.set_defaults(func=cmd_cam)

    p = sub.add_parser("confusion", help="the confusion matrix as a labelled heat map")
    p.add_argument("run", help=run_help)
    p.add_argument("--data", help="dataset (default: the run's)")
    p.add_argument("--split", default="test", choices=("test", "train"))
    p.add_argument("--normalize", action="store_true", help="each row as shares of its class")
    p.add_argument("--cache-dir", dest="cache_dir")
    output(p, "confusion.png")
    p.set_defaults(func=cmd_confusion)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlab",
        description="Build, inspect, train, evaluate and look inside convolutional networks.",
    )
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
    p.add_argument(
        "--explain",
        action="store_true",
        help="show the output-size and parameter arithmetic of each conv/pool layer",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = data_sub.add_parser("fetch", help="download, verify and cache a dataset")
    f.add_argument("name", help="dataset name, e.g. mnist")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    f.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="install from a file (e.g. cifar-10-binary.tar.gz) or folder downloaded by hand",
    )
    f.add_argument("--cache-dir", dest="cache_dir", help="default ~/.cache/cnnlab")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data_fetch)
    f = data_sub.add_parser("list", help="the datasets cnnlab knows and whether they are cached")
    f.add_argument("--cache-dir", dest="cache_dir", help="default ~/.cache/cnnlab")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data_list)

    p = sub.add_parser("show", help="a labelled grid of training images (and augmented versions)")
    p.add_argument("data", help="dataset name or image folder")
    p.add_argument("--augment", metavar="SPEC", help="show augmented versions beside each image")
    p.add_argument("--output", default="show.png", help="PNG file (default show.png)")
    p.add_argument("--count", type=int, default=16, help="images to show (default 16, a 4x4 grid)")
    p.add_argument(
        "--versions", type=int, default=4, help="augmented versions per image (default 4)"
    )
    p.add_argument("--seed", type=int, default=0, help="picks the images and augmentations")
    _add_data_options(p)
    p.add_argument("--cache-dir", dest="cache_dir")
    p.set_defaults(func=cmd_show)

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
    _add_selection_options(p)
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

    _add_transfer_parsers(sub)

    p = sub.add_parser("evaluate", help="loss, accuracy, top-k, per-class metrics, confusion")
    p.add_argument("run", help="run directory, .safetensors checkpoint or .onnx file")
    p.add_argument("--data", help="dataset (default: the run's)")
    p.add_argument("--split", default="test", choices=("test", "train"))
    p.add_argument("--top-k", dest="top_k", type=int, default=5)
    p.add_argument("--checkpoint", default="best", choices=("best", "last"))
    p.add_argument(
        "--tta",
        default="none",
        help="test-time augmentation: none, flip, shift, 5crop or 10crop (probabilities of "
        "the views averaged)",
    )
    p.add_argument(
        "--crop-size",
        dest="crop_size",
        type=int,
        metavar="N",
        help="5crop/10crop: crop size, cut from the image padded to the network input "
        "(default: the network input; must be smaller than that padded image)",
    )
    p.add_argument(
        "--mistakes", type=int, default=10, help="list this many worst misclassified examples"
    )
    p.add_argument("--classes", help="evaluate on these classes only, e.g. 0,1,2")
    _add_stream_options(p)
    p.add_argument("--cache-dir", dest="cache_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("run", help="run directory, .safetensors checkpoint or .onnx file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or BMP files")
    p.add_argument("--top-k", dest="top_k", type=int, default=3)
    p.add_argument(
        "--invert",
        action="store_true",
        help="invert grey levels (dark digits on light paper -> MNIST's light on dark)",
    )
    p.add_argument("--input", metavar="C,H,W", help="an .onnx file without cnnlab metadata")
    p.add_argument("--classes", metavar="NAMES", help="the same: class names, comma-separated")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    cli_export.add_parser(sub)
    _add_picture_commands(sub)

    p = sub.add_parser("gradcheck", help="check the NumPy engine's gradients numerically (float64)")
    p.add_argument(
        "target",
        metavar="MODEL|OP",
        help="registered model, path/to/file.py:callable, or an op (conv2d, max_pool2d, "
        "batch_norm, ...; see cnnlab.bridge.gradcheck.OPS)",
    )
    p.add_argument("--input", help="input shape C,H,W (default: the model's; 3,7,7 for ops)")
    p.add_argument("--batch", type=int, default=2, help="images per batch (default 2)")
    p.add_argument("--num-classes", dest="num_classes", type=int)
    p.add_argument(
        "--max-elements",
        dest="max_elements",
        type=int,
        default=8,
        help="elements checked per model tensor, at random (0: all; ops: always all)",
    )
    p.add_argument("--tolerance", type=float, default=1e-6, help="largest relative error")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnlab``; returns the exit status (2 for user errors)."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
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
