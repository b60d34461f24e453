"""Help that teaches: every command's ``--help`` has help text for every option, shows the
defaults and ends with examples that parse; ``cnnlab --version``."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Iterator

import pytest

import cnnlab
from cnnlab.cli import build_parser
from cnnlab.cli.examples import EXAMPLES


def commands(
    parser: argparse.ArgumentParser, path: str = "cnnlab"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, the top one and nested ones (``cnnlab data fetch``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from commands(command, f"{path} {name}")


ALL = dict(commands(build_parser()))


def example_lines(parser: argparse.ArgumentParser) -> list[str]:
    epilog = parser.epilog or ""
    return [line.strip() for line in epilog.splitlines() if line.strip().startswith("cnnlab ")]


def test_the_walk_sees_every_command():
    assert {"cnnlab train", "cnnlab evaluate", "cnnlab data fetch", "cnnlab explore"} <= set(ALL)
    assert len(ALL) >= 20


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_option_has_help(path):
    parser = ALL[path]
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert not missing, f"{path}: options without help: {missing}"


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_command_has_examples_that_parse(path):
    lines = example_lines(ALL[path])
    assert len(lines) >= 2, f"{path} --help has no examples"
    for line in lines:
        words = shlex.split(line, comments=True)
        assert " ".join(words[: len(path.split())]) == path or path == "cnnlab", line
        if "COMMAND" in words:  # the top-level "cnnlab COMMAND --help"
            continue
        args = build_parser().parse_args(words[1:])  # a usage error exits: the test fails
        assert callable(args.func), line


def test_examples_name_only_real_commands():
    assert {f"cnnlab {name}".strip() if name != "cnnlab" else name for name in EXAMPLES} <= set(ALL)


def test_help_shows_defaults_and_examples(cli):
    status, out, _ = cli("evaluate", "--help", cache=False)
    assert status == 0
    assert "top-1 .. top-K accuracy (default: 5)" in " ".join(out.split())
    assert "(default: best)" in out and "(default: test)" in out
    examples = out.split("examples:\n", 1)[1]
    assert "  cnnlab evaluate runs/lenet5\n" in examples  # line breaks kept, not refilled


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"cnnlab {cnnlab.__version__}"


# ---- clearer errors --------------------------------------------------------------------------
def test_run_folder_given_as_model_suggests_resume_or_finetune(cli, expect_error, tmp_path):
    run = tmp_path / "runs" / "lenet5"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")  # what makes a folder a run
    status, _, err = cli("train", run, "--out", tmp_path / "new", "--epochs", "1")
    expect_error(status, err, f"received {run}, a run directory", "--resume", "cnnlab finetune")


def test_python_file_without_callable_says_what_is_missing(cli, expect_error, tmp_path):
    (tmp_path / "mynet.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Linear(4, 2)\n"
    )
    status, _, err = cli("summary", tmp_path / "mynet.py", cache=False)
    expect_error(status, err, "expected FILE.py:CALLABLE", "without :CALLABLE", "mynet.py:build")


def test_file_model_without_input_says_pass_input(cli, expect_error, tmp_path):
    (tmp_path / "mynet.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Linear(4, 2)\n"
    )
    status, _, err = cli("summary", f"{tmp_path / 'mynet.py'}:build", cache=False)
    expect_error(status, err, "pass --input C,H,W")


def test_user_facing_text_names_the_articles_by_subject(cli):
    for argv in (("models",), ("summary", "lenet5", "--explain"), ("features", "--help")):
        status, out, _ = cli(*argv, cache=False)
        assert status == 0
        assert "seed 00" not in out.lower(), argv  # reads like a random seed
