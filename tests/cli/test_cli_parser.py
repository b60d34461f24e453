"""The parser itself: train/finetune flags generated from TrainConfig, every command's help,
common flags declared once (argparse parents)."""

import argparse
import subprocess
import sys
from dataclasses import fields

import pytest

from cli_helpers import run_cli
from cnnlab.cli import build_parser, common
from cnnlab.cli.config_flags import given_options
from cnnlab.training.config import TrainConfig

# Fields the commands take otherwise: MODEL / RUN_OR_CKPT positionals, --model-option KEY=VALUE,
# --data (its meaning differs between train and finetune), or not at all (channels_last).
# A new TrainConfig field gets a Flag, or is added here on purpose.
NOT_GENERATED = {"model", "model_kwargs", "data", "recipe", "channels_last", "finetune_from"}


def _commands(
    parser: argparse.ArgumentParser, path=()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every runnable command's parser, by its words (``("data", "fetch")``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, (*path, name)))
    if not found and path:
        found[path] = parser
    return found


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


COMMANDS = _commands(build_parser())


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_every_trainconfig_field_has_a_flag_with_help_and_default(command):
    parser = COMMANDS[(command,)]
    generated = set()
    for f in fields(TrainConfig):
        assert f.metadata.get("help"), f"TrainConfig.{f.name} has no help text"
        flag = f.metadata["flag"]
        if flag is None or command not in flag.commands:
            continue
        generated.add(f.name)
        action = _option(parser, flag.name)
        assert action.dest == f.name
        assert action.default is None  # not given: the API (or the resumed run) decides
        assert action.help.startswith(f.metadata["help"])
        words = {True: "on", False: "off"}.get(f.default) if type(f.default) is bool else None
        shown = flag.default_help or words or str(f.default)
        assert action.help.endswith(f"(default: {shown})")
        assert "None" not in action.help
        if flag.choices:
            assert tuple(action.choices) == flag.choices
    untouched = {f.name for f in fields(TrainConfig)} - generated
    finetune_only = {"freeze", "lr_backbone", "cache_features"}
    assert untouched == NOT_GENERATED | (finetune_only if command == "train" else set())


def test_generated_flags_parse_to_trainconfig_values():
    args = build_parser().parse_args(
        [
            "train",
            "lenet5",
            "--out",
            "r",
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--optimizer",
            "sgd",
            "--strict",
            "--image-size",
            "20x30",
            "--channels",
            "1",
            "--classes",
            "0,1",
            "--early-stopping",
            "2",
        ]
    )
    options = given_options(args, "train")
    assert options == {
        "epochs": 2,
        "lr": 1e-3,
        "optimizer": "sgd",
        "strict": True,
        "image_size": [20, 30],
        "channels": 1,
        "classes": "0,1",
        "early_stopping": 2,
    }
    config = TrainConfig(**options)
    assert config.image_size == [20, 30] and config.classes == ["0", "1"]
    args = build_parser().parse_args(
        [
            "finetune",
            "run",
            "--data",
            "d",
            "--out",
            "o",
            "--freeze",
            "up-to:features.3",
            "--lr-backbone",
            "0.1",
        ]
    )
    assert given_options(args, "finetune") == {"freeze": "up-to:features.3", "lr_backbone": 0.1}


@pytest.mark.parametrize("argv", [["--image-size", "0"], ["--image-size", "2,b"]])
def test_a_bad_generated_value_is_a_one_line_usage_error(capsys, argv):
    status, _, err = run_cli(capsys, "train", "lenet5", *argv)
    assert status == 2 and err.count("\n") == 1
    assert f"argument --image-size: expected SIZE or H,W in pixels, received {argv[1]!r}" in err


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_help_of_every_command_exits_0_and_shows_defaults(capsys, words):
    status, out, err = run_cli(capsys, *words, "--help")
    assert status == 0 and err == ""
    assert out.startswith(f"usage: cnnlab {' '.join(words)}")
    assert "default" in out and "(default: None)" not in out and "==SUPPRESS==" not in out
    parser = COMMANDS[words]
    for action in parser._actions:  # every option with a default says it
        if action.default is None or action.default is False or action.dest == "help":
            continue
        shown = parser._get_formatter()._get_help_string(action)
        assert "default" in shown, (words, action.option_strings, shown)


def test_train_help_lists_the_trainconfig_defaults(capsys):
    _, out, _ = run_cli(capsys, "train", "--help")
    text = " ".join(out.split())  # argparse wraps lines
    for expected in ("(default: 128)", "(default: adam)", "(default: onecycle)", "(default: 0.1)"):
        assert expected in text


@pytest.mark.parametrize(
    ("flag", "parent", "at_least"),
    [
        ("--json", common.JSON, 10),
        ("--cache-dir", common.CACHE_DIR, 9),
        ("--progress", common.PROGRESS, 2),
        ("--no-progress", common.PROGRESS, 2),
    ],
)
def test_common_flags_are_declared_once(flag, parent, at_least):
    declared = _option(parent, flag)
    users = {words: p for words, p in COMMANDS.items() if flag in p._option_string_actions}
    assert len(users) >= at_least
    for words, parser in users.items():  # the parent's very action, not a second declaration
        assert parser._option_string_actions[flag] is declared, words


def test_progress_switches_stay_exclusive(capsys):
    status, _, err = run_cli(capsys, "train", "lenet5", "--progress", "--no-progress")
    assert status == 2 and "not allowed with argument --progress" in err


def test_help_needs_no_torch():
    """Building the whole parser (TrainConfig metadata included) imports no torch: fast help."""
    code = (
        "import sys; from cnnlab.cli import build_parser; build_parser().format_help(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_command_module_registers_with_one_line(monkeypatch, capsys):
    """The convention of cnnlab.cli's docstring: add_parser(subparsers) + run(args) -> int,
    common flags from cnnlab.cli.common's parents, one entry in COMMANDS."""
    import types

    import cnnlab.cli

    hello = types.ModuleType("hello")

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", parents=[common.JSON], help="greet")
        p.add_argument("name")

    def run(args):
        if args.json:
            common.emit_json({"hello": args.name})
        else:
            print(f"hello {args.name}")
        return 3

    hello.add_parser, hello.run = add_parser, run
    monkeypatch.setattr(cnnlab.cli, "COMMANDS", (*cnnlab.cli.COMMANDS, hello))
    assert run_cli(capsys, "hello", "you", "--json") == (3, '{\n  "hello": "you"\n}\n', "")
    assert run_cli(capsys, "hello", "you")[:2] == (3, "hello you\n")
    assert run_cli(capsys, "models", "lenet5", "--json")[0] == 0  # the others are untouched
