"""Without the ``cnnlab[export]`` extra, ``export`` (and running an .onnx file) says in one line
which extra to install. A real import failure: a fresh process whose import system refuses
the extra's modules, as if they were not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_helpers import assert_one_line_error

RUNNER = """
import importlib.abc, sys

HIDDEN = set(sys.argv[1].split(","))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from cnnlab.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def _cnnlab_without(hidden: str, *argv: object, folder: Path) -> tuple[int, str, str]:
    runner = folder / "runner.py"
    runner.write_text(RUNNER)
    done = subprocess.run(
        [sys.executable, str(runner), hidden, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    return done.returncode, done.stdout, done.stderr


def test_export_names_the_extra(tmp_path):
    output = tmp_path / "out" / "lenet5.onnx"
    status, out, err = _cnnlab_without(
        "onnx,onnxscript,onnxruntime", "export", "lenet5", "--output", output, folder=tmp_path
    )
    line = assert_one_line_error(status, err, "pip install 'cnnlab[export]'")
    assert "without onnx, onnxscript, onnxruntime" in line and out == ""
    assert not output.parent.exists()

    status, _, err = _cnnlab_without(
        "onnxscript", "export", "lenet5", "--output", output, folder=tmp_path
    )
    assert "without onnxscript" in assert_one_line_error(status, err, "cnnlab[export]")


def test_running_an_onnx_file_needs_onnxruntime(exported_run, digit_pngs, tmp_path):
    status, _, err = _cnnlab_without(
        "onnxruntime", "predict", exported_run, digit_pngs[0], folder=tmp_path
    )
    line = assert_one_line_error(status, err, "pip install 'cnnlab[export]'")
    assert "for running an ONNX model" in line and "without onnxruntime" in line
