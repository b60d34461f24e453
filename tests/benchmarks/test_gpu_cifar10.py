"""benchmarks/gpu_cifar10.py --smoke runs end to end on this machine: a synthetic archive in
CIFAR-10's binary format read by cnnlab's reader, the airbench94 recipe (whitening, autocast,
lookahead, TTA) on a narrow net, one JSON document saying which device ran it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from cnnlab.inference import resolve_device

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_cifar10.py"


def test_smoke_run_prints_one_json_document() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    device = resolve_device("auto").type
    assert report["device"] == device
    assert report["data"] == "synthetic (--smoke)"
    assert (report["train_images"], report["test_images"]) == (320, 128)
    assert report["precision"] == "bf16"  # autocasts on the CPU and on current GPUs
    assert report["recipe"]["widths"] == [8, 16, 16] and report["recipe"]["epochs"] == 2
    (run,) = report["runs"]
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert [e["steps"] for e in run["epochs"]] == [5, 10]  # 320 // 64 batches, 2 epochs
    assert run["seconds"] > 0 and run["seconds"] == report["mean_seconds"]
    # ten learnable synthetic classes: well above chance (0.1) after 10 steps
    assert 0.2 < run["tta_accuracy"] <= 1 and run["tta_accuracy"] == report["mean_tta_accuracy"]
    assert report["anchor"]["seconds"] == 3.29 and report["target"] == 0.94
    if device == "cpu":
        assert "needs a CUDA GPU" in report["note"]
        assert torch.__version__ == report["torch"]
