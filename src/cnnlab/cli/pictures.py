"""``plot``, ``features``, ``filters``, ``cam`` and ``confusion``: PNG pictures of a run
(:mod:`cnnlab.viz`)."""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import CACHE_DIR, INVERT, RUN_HELP, SPLIT, add_output

_IMAGE_HELP = "PNG, JPEG or BMP file"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("plot", help="training vs validation accuracy and loss per epoch")
    p.add_argument("run", help="run directory")
    add_output(p, "curves.png")
    p.set_defaults(func=run_plot)

    p = _one_image(subparsers, "features", "feature maps of every conv/pool layer for one image")
    p.add_argument(
        "--layers",
        nargs="+",
        metavar="LAYER",
        help="layer names as in `cnnlab summary` (default: every conv/pool layer)",
    )
    add_output(p, "features.png")
    p.set_defaults(func=run_features)

    p = subparsers.add_parser("filters", help="the learned kernels of a conv layer")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--layer", help="conv layer name as in `cnnlab summary` (default: the first)")
    add_output(p, "filters.png")
    p.set_defaults(func=run_filters)

    p = _one_image(subparsers, "cam", "Grad-CAM and gradient saliency of one image")
    p.add_argument(
        "--class", dest="target", metavar="C", help="class name or index (default: predicted)"
    )
    p.add_argument(
        "--layer", help="layer name as in `cnnlab summary` (default: last spatial conv's maps)"
    )
    add_output(p, "cam.png")
    p.set_defaults(func=run_cam)

    p = subparsers.add_parser(
        "confusion",
        parents=[CACHE_DIR, SPLIT],
        help="the confusion matrix as a labelled heat map",
    )
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--data", help="dataset (default: the run's)")
    p.add_argument("--normalize", action="store_true", help="each row as shares of its class")
    add_output(p, "confusion.png")
    p.set_defaults(func=run_confusion)


def _one_image(subparsers: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A picture of what a run makes of one image: ``RUN IMAGE [--invert]``."""
    p = subparsers.add_parser(name, parents=[INVERT], help=help)
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("image", help=_IMAGE_HELP)
    return p


def run_plot(args: argparse.Namespace) -> int:
    from cnnlab.viz.plots import plot_run

    print(f"wrote {plot_run(args.run, args.output)}")
    return 0


def run_features(args: argparse.Namespace) -> int:
    from cnnlab.runs import load_run
    from cnnlab.viz.features import plot_features

    path = plot_features(
        load_run(args.run), args.image, args.output, layers=args.layers, invert=args.invert
    )
    print(f"wrote {path}")
    return 0


def run_filters(args: argparse.Namespace) -> int:
    from cnnlab.runs import load_run
    from cnnlab.viz.filters import plot_filters

    print(f"wrote {plot_filters(load_run(args.run), args.output, layer=args.layer)}")
    return 0


def run_cam(args: argparse.Namespace) -> int:
    from cnnlab.runs import load_run
    from cnnlab.viz.cam import plot_cam

    path = plot_cam(
        load_run(args.run),
        args.image,
        args.output,
        target=args.target,
        layer=args.layer,
        invert=args.invert,
    )
    print(f"wrote {path}")
    return 0


def run_confusion(args: argparse.Namespace) -> int:
    from cnnlab.evaluation.evaluate import evaluate
    from cnnlab.evaluation.inputs import DataSelection
    from cnnlab.viz.confusion import plot_confusion

    selection = DataSelection(data=args.data, split=args.split)
    report = evaluate(args.run, selection=selection, cache_dir=args.cache_dir)
    path = plot_confusion(report, args.output, normalize=args.normalize)
    print(f"wrote {path}")
    return 0
