"""``recipes``: list the named training recipes (:mod:`cnnlab.training.recipes`).

Each recipe is shown with the ``cnnlab train`` command line it amounts to, where its
hyperparameters come from and what was measured here; ``cnnlab train --recipe NAME`` runs it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cnnlab.cli.common import JSON, print_result
from cnnlab.cli.config_flags import config_fields


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "recipes",
        parents=[JSON],
        help="list the named training recipes (`cnnlab train --recipe NAME`)",
        description="Named recipes: a model, data and hyperparameters. `cnnlab train --recipe "
        "NAME --out DIR` runs one; a model, --data or option given as well overrides the "
        "recipe's value.",
    )
    p.add_argument("name", nargs="?", help="show only this recipe (default: all of them)")


def run(args: argparse.Namespace) -> int:
    from cnnlab.training.recipes import get_recipe, list_recipes

    recipes = list_recipes() if args.name is None else (get_recipe(args.name),)
    documents = [{**r.to_dict(), "command": command_line(r.to_dict())} for r in recipes]
    print_result(args.json, lambda: {"recipes": documents}, lambda: _format(documents))
    return 0


def command_line(recipe: dict[str, Any]) -> str:
    """The ``cnnlab train`` command a recipe amounts to (its ``--recipe NAME`` spelled out).

    Args:
        recipe: a recipe's ``to_dict()``.
    """
    flags = {f.name: f.metadata["flag"] for f in config_fields("train")}
    words = ["cnnlab", "train", recipe["model"], "--data", recipe["data"]]
    for name, value in recipe["options"].items():
        if name == "model_kwargs":
            words += [
                f"--model-option {k}={json.dumps(v, separators=(',', ':'))}"
                for k, v in value.items()
            ]
        elif isinstance(value, bool):
            words += [flags[name].name] if value else []
        elif isinstance(value, list):
            words += [flags[name].name, ",".join(str(v) for v in value)]
        else:
            words += [flags[name].name, str(value)]
    return " ".join([*words, "--out", "DIR"])


def _format(documents: list[dict[str, Any]]) -> str:
    blocks = []
    for doc in documents:
        blocks.append(
            f"{doc['name']}: {doc['summary']}\n"
            f"  {doc['command']}\n"
            f"  source: {doc['source']}\n"
            f"  measured: {doc['measured']}"
        )
    return "\n\n".join(blocks)
