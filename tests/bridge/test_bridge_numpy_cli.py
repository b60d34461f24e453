"""End to end on the real-MNIST subset: ``cnnlab train --engine numpy`` writes an ordinary run
(every other command reads it), a killed run resumes bitwise (optimizer state, schedule, dropout
RNG and BatchNorm statistics restored), and ``cnnlab gradcheck`` reports per tensor."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import run_cli
from cnnlab.runs import load_run
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit
from run_helpers import assert_same_run, crash_then_resume

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("bridge-numpy-cli")

# baseline: BatchNorm and dropout, so resuming must restore statistics and the mask generator
OPTIONS = {"epochs": 2, "batch_size": 256, "checkpoint_every": 4, "seed": 3, "engine": "numpy"}


@pytest.fixture(scope="module")
def numpy_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("numpy") / "run"
    fit("baseline", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, **OPTIONS)
    return out


def test_train_command_writes_a_run_every_command_reads(capsys, tmp_path, cache_dir):
    out = tmp_path / "run"
    status, stdout, err = run_cli(
        capsys, "train", "lenet5", "--data", "mnist-subset", "--engine", "numpy", "--epochs",
        "2", "--out", out, "--cache-dir", cache_dir, "--no-progress", "--json",
    )  # fmt: skip
    assert status == 0, err
    report = json.loads(stdout)
    assert report["test"]["accuracy"] > 0.85
    assert json.loads((out / "config.json").read_text())["config"]["engine"] == "numpy"
    status, stdout, err = run_cli(capsys, "evaluate", out, "--cache-dir", cache_dir, "--json")
    assert status == 0, err
    assert json.loads(stdout)["accuracy"] == pytest.approx(report["test"]["accuracy"])
    run = load_run(out)  # a plain torch model, loaded from the same safetensors format
    assert isinstance(run.model, torch.nn.Module)


def test_numpy_run_resumes_bitwise(tmp_path, cache_dir, numpy_run, monkeypatch):
    out = tmp_path / "run"
    # mid-epoch, two steps after the checkpoint at step 8
    crash_then_resume(monkeypatch, "baseline", out, cache_dir, OPTIONS, crash_after=10)
    assert_same_run(out, numpy_run)
    state = load_checkpoint(out / "last.safetensors").training
    assert state["optimizer"]["state"] and "numpy_rng" in state


def test_gradcheck_command_one_line_per_tensor_and_json(capsys):
    status, out, _ = run_cli(capsys, "gradcheck", "lenet5")
    lines = out.strip().splitlines()
    assert status == 0
    assert len(lines) == 10 + 1 + 1  # 10 parameter tensors, the input, the verdict
    assert lines[0].startswith("[ 1/11] features.0.weight") and lines[-1].startswith(
        "gradcheck lenet5"
    )
    status, out, _ = run_cli(capsys, "gradcheck", "batch_norm", "--input", "2,4,4", "--json")
    report = json.loads(out)
    assert status == 0 and report["passed"] and report["input_shape"] == [2, 4, 4]
    assert [t["name"] for t in report["tensors"]] == ["weight", "bias", "input"]
    assert all(t["relative_error"] < 1e-6 for t in report["tensors"])


def test_gradcheck_failure_and_user_errors_exit_status(capsys, monkeypatch):
    from cnnlab.scratch import nn as snn

    wrong = snn.Tanh.backward
    monkeypatch.setattr(
        snn.Tanh, "backward", lambda self, g, needs_input_grad=True: 2 * wrong(self, g)
    )
    status, out, _ = run_cli(capsys, "gradcheck", "tanh")
    assert status == 1 and out.splitlines()[0].endswith("FAIL") and "FAILED" in out
    monkeypatch.undo()
    status, _, err = run_cli(capsys, "gradcheck", "no-such-model")
    assert status == 2 and err.count("\n") == 1 and "received 'no-such-model'" in err
    status, _, err = run_cli(capsys, "gradcheck", "lenet5", "--input", "1,8")
    assert status == 2 and "expected an input shape C,H,W" in err and "'1,8'" in err
    # the one shape parser of every command: CxHxW as summary takes it
    status, out, _ = run_cli(
        capsys, "gradcheck", "lenet5", "--input", "1x32x32", "--max-elements", "1", "--batch", "1"
    )
    assert status == 0 and out.splitlines()[0].startswith("[ 1/11] features.0.weight")
