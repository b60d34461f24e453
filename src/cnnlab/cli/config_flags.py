"""Command-line options generated from :class:`~cnnlab.training.config.TrainConfig`.

Each field's ``metadata`` holds its help text and its :class:`~cnnlab.training.config.Flag`
(name, commands, parser of the text, choices, metavar); the default is the field's own. An
option left out on the command line is None in the parsed arguments, so only the options the
user gave reach the API (``cnnlab train --resume`` keeps the saved values of the others).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.training.config import Flag, TrainConfig


def config_fields(command: str) -> list[Field[Any]]:
    """The :class:`TrainConfig` fields whose flag ``command`` takes, in declaration order."""
    return [
        f
        for f in fields(TrainConfig)
        if f.metadata.get("flag") is not None and command in f.metadata["flag"].commands
    ]


def add_config_flag(container: Any, config_field: Field[Any]) -> argparse.Action:
    """Add the option of one :class:`TrainConfig` field to a parser or argument group.

    Raises:
        TypeError: a field whose default needs words (None) but whose flag has no
            ``default_help`` (a mistake in the field's metadata, not the user's).
    """
    flag: Flag = config_field.metadata["flag"]
    text = f"{config_field.metadata['help']} (default: {_default_text(config_field)})"
    text = text.replace("%", "%%")  # argparse formats help with %
    if flag.parse is None:  # a switch
        return container.add_argument(
            flag.name, dest=config_field.name, action="store_true", default=None, help=text
        )
    return container.add_argument(
        flag.name,
        dest=config_field.name,
        type=argparse_type(flag.parse),
        choices=flag.choices,
        metavar=flag.metavar,
        default=None,
        help=text,
    )


def given_options(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The :class:`TrainConfig` options of ``command`` given on the command line."""
    values = {f.name: getattr(args, f.name) for f in config_fields(command)}
    return {name: value for name, value in values.items() if value is not None}


def _default_text(config_field: Field[Any]) -> str:
    flag: Flag = config_field.metadata["flag"]
    if flag.default_help is not None:
        return flag.default_help
    default = config_field.default
    if isinstance(default, bool):
        return "on" if default else "off"
    if default is None or default is MISSING:
        raise TypeError(
            f"expected default_help in the Flag of TrainConfig.{config_field.name}, "
            f"received default={default!r} without words for it"
        )
    return str(default)


def argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type``: its :class:`CnnlabError` becomes a usage error
    (``cnnlab train: error: argument --image-size: expected ...``)."""
    if isinstance(parse, type):  # int, float, str: argparse words their errors itself
        return parse

    @functools.wraps(parse)
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except CnnlabError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert
