"""The README's onnxruntime snippet, run for real: in a fresh process where torch and cnnlab
cannot be imported (only onnxruntime, NumPy and Pillow), on real MNIST digits as PNG files,
with the file exported from the trained run. It must print the class the run predicts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"

RUNNER = """
import importlib.abc, sys

class OnlyTheRuntime(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "cnnlab", "onnx", "onnxscript"):
            raise ModuleNotFoundError(f"{name} is not installed here", name=name)
        return None

sys.meta_path.insert(0, OnlyTheRuntime())
exec(compile(open("snippet.py").read(), "snippet.py", "exec"))
"""


def _snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (snippet,) = [b for b in blocks if "import onnxruntime" in b]
    return snippet


def test_readme_snippet_classifies_a_png(cli, trained_run, exported_run, digit_pngs, tmp_path):
    (tmp_path / "snippet.py").write_text(_snippet())
    (tmp_path / "runner.py").write_text(RUNNER)
    shutil.copy(exported_run, tmp_path / "lenet5.onnx")
    _, out, _ = cli("predict", trained_run, *digit_pngs[:3], "--json", cache=False)
    expected = [p["top_k"][0]["class"] for p in json.loads(out)]
    for png, label in zip(digit_pngs[:3], expected):
        shutil.copy(png, tmp_path / "digit.png")
        done = subprocess.run(
            [sys.executable, "runner.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin"},  # no PYTHONPATH: cnnlab's source is not reachable
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == label
