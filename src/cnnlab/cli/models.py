"""``models``, ``summary`` and ``gradcheck``: the zoo, one model's layers, the NumPy engine's
gradients."""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import JSON, add_model_build, add_num_classes, model_options, print_result
from cnnlab.shapes import parse_input_shape


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("models", parents=[JSON], help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.set_defaults(func=run_models)

    p = subparsers.add_parser(
        "summary", parents=[JSON], help="per-layer shapes, parameters, MACs, receptive fields"
    )
    p.add_argument("model", help="registered name, path/to/file.py:callable, run or checkpoint")
    add_model_build(p, "input shape C,H,W (default: the model's)")
    p.add_argument(
        "--explain",
        action="store_true",
        help="show the output-size and parameter arithmetic of each conv/pool layer (with "
        "--json: in each layer's size_arithmetic and param_arithmetic)",
    )
    p.add_argument(
        "--depth",
        type=int,
        help="show modules down to this nesting depth (1: the model's children), deeper ones "
        "folded into their row (default: every layer)",
    )
    p.set_defaults(func=run_summary)

    p = subparsers.add_parser(
        "gradcheck",
        parents=[JSON],
        help="check the NumPy engine's gradients numerically (float64)",
        description="Compare the NumPy engine's gradients with central differences in "
        "float64, per tensor. Differences that cross a ReLU or max-pool kink are checked "
        "again with smaller steps or left out (and counted); a failing tensor names its worst "
        "element. Each tensor's line prints as soon as it is checked. Exit status 0: all "
        "passed, 1: a tensor failed. Sizes at which every zoo model passes on 5 seeds: "
        "docs/numpy-engine.md.",
    )
    p.add_argument(
        "target",
        metavar="MODEL|OP",
        help="registered model, path/to/file.py:callable, or an op (conv2d, max_pool2d, "
        "batch_norm, ...; see cnnlab.bridge.gradcheck.OPS)",
    )
    p.add_argument("--input", help="input shape C,H,W (default: the model's; 3,7,7 for ops)")
    p.add_argument("--batch", type=int, default=2, help="images per batch")
    add_num_classes(p)
    p.add_argument(
        "--max-elements",
        dest="max_elements",
        type=int,
        default=8,
        help="elements checked per model tensor, at random (0: all; ops: always all; "
        "default: %(default)s)",
    )
    p.add_argument(
        "--max-tensors",
        dest="max_tensors",
        type=int,
        default=0,
        help="check this many parameter tensors, at random, plus the input (0: all; default)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-6,
        help="largest relative error per tensor (default: %(default)s)",
    )
    p.add_argument(
        "--eps", type=float, default=1e-6, help="central-difference step (default: %(default)s)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the weights, input and checked tensors and elements (default: %(default)s)",
    )
    p.set_defaults(func=run_gradcheck)


def run_models(args: argparse.Namespace) -> int:
    from cnnlab.analysis import format_models, model_overview
    from cnnlab.analysis.render import MODELS_NOTE

    rows = model_overview(args.pattern)
    print_result(args.json, lambda: rows, lambda: f"{format_models(rows)}\n\n{MODELS_NOTE}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from cnnlab.analysis import summary
    from cnnlab.runs import is_run_or_checkpoint, load_run

    kwargs = model_options(args.model_option)
    model, input_shape = args.model, args.input
    if is_run_or_checkpoint(args.model):
        run = load_run(args.model)
        model, input_shape = run.model, input_shape or run.meta.input_shape
    result = summary(model, input_shape, args.num_classes, max_depth=args.depth, **kwargs)
    print_result(
        args.json,
        lambda: result.to_dict(explain=args.explain),
        lambda: _table(result, args.explain),
    )
    return 0


def _table(result: Any, explain: bool) -> str:
    """The summary table, and with ``explain`` the arithmetic of each layer after a blank line."""
    from cnnlab.analysis import format_explain

    return f"{result.table()}\n\n{format_explain(result)}" if explain else result.table()


def run_gradcheck(args: argparse.Namespace) -> int:
    import sys

    from cnnlab.bridge.gradcheck import check_gradients, tensor_lines

    # each tensor's line as soon as it is checked: on stdout, or with --json on a terminal's
    # stderr (stdout then holds only the JSON document)
    stream = (
        None if args.json and not sys.stderr.isatty() else sys.stderr if args.json else sys.stdout
    )

    def show(check: Any, passed: bool, k: int, total: int) -> None:
        if stream is not None:
            print("\n".join(tensor_lines(check, passed, k, total)), file=stream, flush=True)

    report = check_gradients(
        args.target,
        parse_input_shape(args.input) if args.input else None,
        batch=args.batch,
        num_classes=args.num_classes,
        max_elements=args.max_elements or None,
        max_tensors=args.max_tensors or None,
        tolerance=args.tolerance,
        eps=args.eps,
        seed=args.seed,
        on_tensor=show,
    )
    print_result(args.json, report.to_dict, report.verdict)
    return 0 if report.passed else 1
