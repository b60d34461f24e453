"""``evaluate``, ``predict``, ``ensemble`` and ``report``: what trained runs get right."""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import (
    CACHE_DIR,
    INVERT,
    JSON,
    RUN_HELP,
    SPLIT,
    add_output,
    emit_json,
    passed_on,
    print_result,
)
from cnnlab.cli.config_flags import add_config_flag, config_fields
from cnnlab.cli.launch import add_timeout_option

_RUN_DATA_HELP = "dataset (default: the run's)"


ONNX_RUN_HELP = "run directory, .safetensors checkpoint or .onnx file"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        parents=[JSON, CACHE_DIR, SPLIT],
        help="loss, accuracy, top-k, per-class metrics, confusion",
    )
    p.add_argument("run", help=ONNX_RUN_HELP)
    p.add_argument("--data", help=_RUN_DATA_HELP)
    p.add_argument("--top-k", dest="top_k", type=int, default=5, help="top-1 .. top-K accuracy")
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="which checkpoint of a run directory",
    )
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
    p.add_argument("--classes", help="evaluate on these classes only, e.g. 0,1,2 (default: all)")
    for config_field in config_fields("evaluate"):  # --stream, --workers
        add_config_flag(p, config_field)
    add_timeout_option(p)
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("predict", parents=[JSON, INVERT], help="classify image files")
    p.add_argument("run", help=ONNX_RUN_HELP)
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="PNG, JPEG or BMP files, or folders (each folder's images, sorted by name)",
    )
    p.add_argument(
        "--no-invert",
        dest="no_invert",
        action="store_true",
        help="never invert: keep light-background pictures as they are (default for "
        "single-channel runs trained on dark backgrounds: invert them, and say so)",
    )
    p.add_argument("--top-k", dest="top_k", type=int, default=3, help="classes listed per image")
    p.add_argument("--input", metavar="C,H,W", help="an .onnx file without cnnlab metadata")
    p.add_argument("--classes", metavar="NAMES", help="the same: class names, comma-separated")
    p.add_argument(
        "--max-megapixels",
        dest="max_megapixels",
        type=float,
        metavar="N",
        help="refuse an image that would decode to more than N million pixels (default 40; "
        "JPEGs count at the reduced scale they are decoded at)",
    )
    p.set_defaults(func=run_predict)

    p = subparsers.add_parser(
        "ensemble",
        parents=[JSON, CACHE_DIR, SPLIT],
        help="several runs combined, each member's accuracy and theirs",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or checkpoints")
    p.add_argument("--data", help="dataset (default: the first run's)")
    p.add_argument("--combine", default="mean-prob", help="mean-prob (default), mean-logit or vote")
    p.set_defaults(func=run_ensemble)

    p = subparsers.add_parser(
        "report", parents=[CACHE_DIR], help="one self-contained HTML page about a run"
    )
    p.add_argument("run", help=RUN_HELP)
    add_output(p, "report.html", kind="HTML")
    p.add_argument("--data", help=_RUN_DATA_HELP)
    p.add_argument("--mistakes", type=int, default=24, help="worst mistakes in the gallery")
    p.set_defaults(func=run_report)


def run_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.evaluate import evaluate
    from cnnlab.evaluation.inputs import DataSelection
    from cnnlab.export.runtime import is_onnx_path
    from cnnlab.runs import load_run

    run = args.run if is_onnx_path(args.run) else load_run(args.run, checkpoint=args.checkpoint)
    selection = DataSelection(**passed_on(args, "data", "split", "classes", "stream", "workers"))
    options = passed_on(args, "top_k", "cache_dir", "tta", "crop_size", "mistakes")
    report = evaluate(run, selection=selection, **options)
    print_result(args.json, report.to_dict, report.render)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import sys

    from cnnlab.errors import ConfigError
    from cnnlab.evaluation.predict import predict
    from cnnlab.export.runtime import load_onnx_run
    from cnnlab.shapes import parse_input_shape

    run = args.run
    if args.input or args.classes:  # an ONNX file without cnnlab metadata (cnnlab.export)
        shape = parse_input_shape(args.input) if args.input else None
        run = load_onnx_run(args.run, input_shape=shape, classes=args.classes)
    if args.invert and args.no_invert:
        raise ConfigError("expected at most one of --invert and --no-invert, received both")
    invert = True if args.invert else False if args.no_invert else None
    budget = {} if args.max_megapixels is None else {"max_megapixels": args.max_megapixels}
    predictions = predict(run, args.images, top_k=args.top_k, invert=invert, **budget)
    for note in dict.fromkeys(n for p in predictions for n in p.notes):  # each note once
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        emit_json([p.to_dict() for p in predictions])
    else:
        for p in predictions:
            print(p.render())
    return 0


def run_ensemble(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.ensemble import ensemble
    from cnnlab.evaluation.inputs import DataSelection

    selection = DataSelection(data=args.data, split=args.split)
    report = ensemble(
        args.runs, selection=selection, combine=args.combine, cache_dir=args.cache_dir
    )
    print_result(args.json, report.to_dict, report.render)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.inputs import DataSelection
    from cnnlab.report import write_report

    path = write_report(
        args.run,
        args.output,
        selection=DataSelection(data=args.data),
        mistakes=args.mistakes,
        cache_dir=args.cache_dir,
    )
    print(f"report written to {path}")
    return 0
