"""Helpers for tests that use the command line in-process, as a person would."""

from __future__ import annotations

import pytest

from cnnlab.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``cnnlab ARGV``."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> str:
    """A user error: exit status 2 and exactly one line on stderr containing ``fragments``;
    returns that line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, (status, err)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
