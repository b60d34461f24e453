"""``data fetch``, ``data list`` and ``show``: datasets and what their images look like."""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.common import CACHE_DIR, JSON, add_output, emit_json, passed_on, print_result
from cnnlab.cli.config_flags import argparse_type
from cnnlab.training.config import parse_image_size


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("data", help="datasets")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = actions.add_parser(
        "fetch", parents=[JSON, CACHE_DIR], help="download, verify and cache a dataset"
    )
    f.add_argument("name", help="dataset name, e.g. mnist")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    f.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="install from a file (e.g. cifar-10-binary.tar.gz) or folder downloaded by hand",
    )
    f.set_defaults(func=run_fetch)
    f = actions.add_parser(
        "list",
        parents=[JSON, CACHE_DIR],
        help="the datasets cnnlab knows and whether they are cached",
    )
    f.set_defaults(func=run_list)

    p = subparsers.add_parser(
        "show",
        parents=[CACHE_DIR],
        help="a labelled grid of training images (and augmented versions)",
    )
    p.add_argument("data", help="dataset name or image folder")
    p.add_argument("--augment", metavar="SPEC", help="show augmented versions beside each image")
    add_output(p, "show.png")
    p.add_argument("--count", type=int, default=16, help="images to show (default 16, a 4x4 grid)")
    p.add_argument("--versions", type=int, default=4, help="augmented versions per image")
    p.add_argument("--seed", type=int, default=0, help="picks the images and augmentations")
    p.add_argument(
        "--image-size",
        dest="image_size",
        type=argparse_type(parse_image_size),
        metavar="H,W",
        help="image folders: resize every image to SIZE or H,W (default: the first image's)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="image folders: 1 grey-scale or 3 RGB (default: 3)",
    )
    p.set_defaults(func=run_show)


def run_fetch(args: argparse.Namespace) -> int:
    from cnnlab.data.datasets import fetch_dataset

    folder = fetch_dataset(args.name, args.cache_dir, force=args.force, source=args.source)
    print_result(
        args.json,
        lambda: {"dataset": args.name, "path": str(folder)},
        lambda: f"{args.name}: verified and cached in {folder}",
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from cnnlab.data.datasets import dataset_status

    rows = dataset_status(args.cache_dir)
    if args.json:
        emit_json(rows)
        return 0
    for row in rows:
        state = "cached" if row["cached"] else "not cached"
        print(f"{row['name']:<14} {state:<11} {row['description']}  [{', '.join(row['files'])}]")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from cnnlab.viz.show import show_dataset

    shown = ("augment", "count", "versions", "seed", "cache_dir", "image_size", "channels")
    path = show_dataset(args.data, args.output, **passed_on(args, *shown))
    print(f"wrote {path}")
    return 0
