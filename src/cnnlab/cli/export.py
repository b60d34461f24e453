"""``cnnlab export``: a run, checkpoint or untrained model to a verified ONNX file.

A command module: :func:`add_parser` adds the sub-command, :func:`run` carries it out.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import (
    CACHE_DIR,
    JSON,
    add_model_build,
    add_switch,
    model_options,
    passed_on,
    print_result,
)


def add_parser(subparsers: Any) -> None:
    """Add ``export`` to the ``cnnlab`` sub-commands."""
    p = subparsers.add_parser(
        "export",
        parents=[JSON, CACHE_DIR],
        help="an ONNX file (pixels in, logits out), checked against onnxruntime before it is kept",
        description="Export to ONNX with torch.export (TorchScript as fallback). The graph takes "
        "float32 pixels in [0, 1], batch x C x H x W at the run's image size, pads and "
        "normalises them inside, and returns 'logits'. onnxruntime must reproduce torch on "
        "real test images (random for untrained models) before the file is written. Needs "
        "pip install 'cnnlab[export]'.",
    )
    p.add_argument(
        "source",
        metavar="RUN|CHECKPOINT|MODEL",
        help="run directory, .safetensors checkpoint, or a registered model name (untrained)",
    )
    p.add_argument("--output", required=True, metavar="FILE.onnx", help="the ONNX file")
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="which checkpoint of a run directory to export",
    )
    add_model_build(p, "untrained model: input shape", input_metavar="C,H,W")
    add_switch(
        p,
        "--fold-bn",
        default=True,
        help="fold BatchNorm into the preceding convolutions (default)",
        off_help="keep BatchNormalization nodes in the graph",
    )
    p.add_argument("--opset", type=int, help="ONNX opset, 18 or newer (default: the exporter's)")
    p.add_argument("--data", help="verify on this dataset's test split (default: the run's)")
    p.add_argument(
        "--images", type=int, default=8, help="images in the verification batch (default 8)"
    )
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, print the report (human lines or ``--json``); 0 on success."""
    from cnnlab.export.exporter import export_onnx
    from cnnlab.shapes import parse_input_shape

    report = export_onnx(
        args.source,
        args.output,
        input_shape=parse_input_shape(args.input) if args.input else None,
        model_options=model_options(args.model_option) or None,
        **passed_on(args, "checkpoint", "num_classes", "fold_bn", "opset", "data", "cache_dir"),
        **passed_on(args, "images", "rtol", "atol"),
    )
    print_result(args.json, report.to_dict, report.render)
    return 0
