"""``cnnlab explore RUN``: the command line of the explorer (``add_parser`` and ``run``).

Importing this module imports neither Starlette nor torch's heavy parts; the server and the
model are loaded when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import CACHE_DIR, passed_on
from cnnlab.explore.server import DEFAULT_HOST, DEFAULT_PORT


def add_parser(subparsers: Any) -> None:
    """Add ``explore`` to the ``cnnlab`` subcommands."""
    p = subparsers.add_parser(
        "explore",
        parents=[CACHE_DIR],
        help="a local web page to look inside a network: draw, see every layer, click a unit",
        description="Serve a local page for a run (or a registered model, untrained): draw or "
        "upload an image or pick a test example, and see the top-k probabilities, every "
        "layer's feature maps, the numbers behind any conv unit, Grad-CAM, filters and the "
        "NumPy engine's parity. Needs the explore extra: pip install 'cnnlab[explore]'.",
    )
    p.add_argument(
        "target",
        metavar="RUN",
        help="run directory, .safetensors checkpoint, registered model name or "
        "path/to/file.py:callable (models without a run are untrained)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to serve on (default {DEFAULT_PORT}; 0: any free port)",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}, this machine only; 0.0.0.0 exposes "
        "the page to the network, without authentication)",
    )
    p.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="do not open the page in a browser",
    )
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="which checkpoint of a run directory to explore",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl+C); user errors raise :class:`CnnlabError`."""
    from cnnlab.explore.server import serve

    served = passed_on(args, "host", "port", "checkpoint", "cache_dir")
    serve(args.target, open_browser=args.browser, **served)
    return 0
