"""What every command shares: the parser class, the common flags (argparse parents, and
helpers for the options several commands declare: a ``--X``/``--no-X`` switch, the options
that build a model), options passed on to the API by name, JSON output, ``KEY=VALUE``
options and the one-line warning display.

A common flag is declared once, in a parent parser here, and a command takes it with
``subparsers.add_parser(NAME, parents=[JSON, CACHE_DIR])``; argparse then shares the very same
action between the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from cnnlab.errors import ConfigError
from cnnlab.fileio import strict_json

RUN_HELP = "run directory or .safetensors checkpoint"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, plus ``(default: X)`` after every option whose help does not
    already say its default (None and False defaults say nothing and are left out; so is
    ``--help``'s); descriptions and epilogs (the examples) keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shows_default = action.option_strings or action.nargs in (
            argparse.OPTIONAL,
            argparse.ZERO_OR_MORE,
        )
        says_nothing = action.default is None or action.default is False
        says_nothing = says_nothing or action.default == argparse.SUPPRESS  # --help
        if not shows_default or "default" in text or says_nothing:
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``cnnlab train: error: ...``) and status 2,
    and ``--help`` shows the defaults (:class:`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


JSON = _parent()
JSON.add_argument("--json", action="store_true", help="print one JSON document on stdout")

CACHE_DIR = _parent()
CACHE_DIR.add_argument(
    "--cache-dir",
    dest="cache_dir",
    metavar="DIR",
    help="where datasets (and cached features) are kept "
    "(default $XDG_CACHE_HOME/cnnlab or ~/.cache/cnnlab)",
)


def add_switch(
    parser: argparse.ArgumentParser, name: str, *, default: bool | None, help: str, off_help: str
) -> None:
    """A switch and its opposite, ``--NAME`` / ``--no-NAME`` (one or the other): True or False
    in the attribute ``NAME`` (dashes as underscores), ``default`` when neither is given."""
    dest = name.removeprefix("--").replace("-", "_")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(name, dest=dest, action="store_true", default=default, help=help)
    off = f"--no-{name.removeprefix('--')}"
    group.add_argument(off, dest=dest, action="store_false", default=default, help=off_help)


PROGRESS = _parent()
add_switch(
    PROGRESS,
    "--progress",
    default=None,
    help="progress bar even when stderr is not a terminal (default: only on a terminal)",
    off_help="no progress bar, even on a terminal",
)

SPLIT = _parent()
SPLIT.add_argument("--split", default="test", choices=("test", "train"), help="dataset split")

INVERT = _parent()
INVERT.add_argument(
    "--invert",
    action="store_true",
    help="invert grey levels (dark digits on light paper -> MNIST's light on dark)",
)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, received {text!r}")
    return int(text)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N``, on the ``cnnlab`` parser and every command's (the value given last
    wins; without it the attribute is absent, so a command's parser does not reset it)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="threads torch and the NumPy engine compute with (default: for training, as "
        "many as cores other processes leave free; otherwise one per core)",
    )


def add_output(parser: argparse.ArgumentParser, default: str, kind: str = "PNG") -> None:
    """``--output FILE`` of a picture or report command."""
    parser.add_argument("--output", default=default, help=f"{kind} file")


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model-option KEY=VALUE`` (repeatable), read by :func:`model_options`."""
    parser.add_argument(
        "--model-option",
        dest="model_option",
        action="append",
        metavar="KEY=VALUE",
        help="model option, e.g. activation=tanh (repeatable)",
    )


def add_model_build(
    parser: argparse.ArgumentParser, input_help: str, input_metavar: str | None = None
) -> None:
    """``--input C,H,W``, ``--num-classes N`` and ``--model-option KEY=VALUE``: how a model is
    built from its name (``summary``, and ``export`` of an untrained model)."""
    parser.add_argument("--input", metavar=input_metavar, help=input_help)
    add_num_classes(parser)
    add_model_option(parser)


def add_num_classes(parser: argparse.ArgumentParser) -> None:
    """``--num-classes N``: the classes of the model's head."""
    parser.add_argument(
        "--num-classes",
        dest="num_classes",
        type=int,
        help="classes of the model's head (default: the model's)",
    )


def passed_on(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options ``names`` as keyword arguments of the API call a command makes: an option's
    attribute is named as the parameter it goes to (``--cache-dir`` -> ``cache_dir=``)."""
    return {name: getattr(args, name) for name in names}


def emit_json(document: Any) -> None:
    """Print ``document`` as the one JSON document of ``--json`` on stdout, strict JSON
    (non-finite numbers as ``null``: :func:`cnnlab.fileio.strict_json`)."""
    print(strict_json(document))


def print_result(as_json: bool, document: Callable[[], Any], text: Callable[[], str]) -> None:
    """A command's result on stdout: ``document()`` as the one JSON document of ``--json``
    when ``as_json``, else ``text()``, the human-readable form (only the one asked for is
    computed)."""
    if as_json:
        emit_json(document())
    else:
        print(text())


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with value read as JSON when it parses (numbers, true/false), else text.

    Raises:
        ConfigError: no ``=`` in ``text``.
    """
    if "=" not in text:
        raise ConfigError(f"expected a model option as key=value, received {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def model_options(texts: list[str] | None) -> dict[str, Any]:
    """The repeated ``--model-option KEY=VALUE`` as keyword arguments of the model."""
    return dict(parse_option(text) for text in texts or ())


SHOWN_WARNINGS: set[str] = set()  # the warnings printed by the command running


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``cnnlab: warning: ...`` line on stderr (no source location), each
    printed once per command even when its cause recurs (the same folder loaded for training
    and again for the final test, the same view warning every batch)."""
    text = f"cnnlab: warning: {message}"
    if text in SHOWN_WARNINGS:
        return
    SHOWN_WARNINGS.add(text)
    print(text, file=sys.stderr)
