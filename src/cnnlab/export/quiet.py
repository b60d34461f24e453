"""Keeping the exporters' chatter off the user's terminal.

torch.onnx prints progress lines to stdout, torch.export prints graphs and logging lines to
stderr (some from C++), and the TorchScript exporter emits warnings. cnnlab's stdout carries
one JSON document under ``--json``, so while an exporter runs, both the Python streams and the
process's file descriptors 1 and 2 go to a temporary file, and warnings are recorded; what was
said is returned for the report or an error message.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Chatter:
    """What an exporter printed and warned while :func:`silenced` was active."""

    text: str = ""
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def silenced() -> Iterator[Chatter]:
    """Send stdout/stderr (Python and C level) to a temporary file and record warnings.

    Yields:
        A :class:`Chatter` filled in when the block ends (also when it raises).
    """
    chatter = Chatter()
    python_streams = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with (
                contextlib.redirect_stdout(python_streams),
                contextlib.redirect_stderr(python_streams),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                try:
                    yield chatter
                finally:
                    chatter.warnings = _distinct(
                        f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
                        for w in caught
                        if str(w.message).strip()
                    )
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            chatter.text = python_streams.getvalue() + sink.read().decode("utf-8", "replace")


def _distinct(lines: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(lines))
