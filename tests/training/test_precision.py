"""--precision on the CPU: bf16 and fp16 autocast train LeNet-5 on real MNIST digits, are
recorded in the run and its checkpoints, resume bitwise (the fp16 loss scaler included), and
are refused in one line where they cannot run."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import TorchEngine
from cnnlab.training.precision import Precision
from cnnlab.training.run import fit
from run_helpers import assert_same_run, crash_then_resume

# 100 digits of each class, 15 steps of 64 per epoch: small enough for fp16 emulated on the CPU
OPTIONS = {"epochs": 2, "batch_size": 64, "per_class": 100, "checkpoint_every": 4, "seed": 5}


def _layer_dtypes(engine: TorchEngine, x: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
    """The dtype of every convolution's and linear layer's output in one ``forward_loss``."""
    seen: dict[str, object] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.dtype))
        for name, module in engine.model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    try:
        engine.forward_loss(x, y)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_autocast_runs_the_forward_pass_in_low_precision(precision, dtype) -> None:
    torch.manual_seed(0)
    config = TrainConfig(precision=precision, optimizer="momentum", schedule="constant", lr=0.1)
    engine = TorchEngine(create_model("lenet5"), config, torch.device("cpu"), steps_per_epoch=1)
    x, y = torch.randn(8, 1, 32, 32), torch.arange(8)
    dtypes = _layer_dtypes(engine, x, y)
    assert len(dtypes) == 5 and set(dtypes.values()) == {dtype}, dtypes
    assert engine._loss is not None and engine._loss.dtype == torch.float32
    engine.step()
    for p in engine.model.parameters():  # master weights and gradients stay fp32
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in engine.optimizer.state_dict()["state"][0].values())
    # fp32: no autocast at all
    engine32 = TorchEngine(create_model("lenet5"), TrainConfig(), torch.device("cpu"), 1)
    assert set(_layer_dtypes(engine32, x, y).values()) == {torch.float32}


def test_bf16_on_cpu_trains_lenet5_to_a_sane_accuracy(tmp_path, cache_dir, trained_run, cli):
    """The default recipe in bf16 (3 epochs, seed 0, as the shared fp32 run): above 90% on the
    1000 test digits; its weights are not the fp32 run's (autocast really ran), and the run
    and both checkpoints record bf16."""
    out = tmp_path / "bf16"
    fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, precision="bf16")
    status, stdout, _ = cli("evaluate", out, "--json")
    assert status == 0
    assert json.loads(stdout)["accuracy"] > 0.90
    ours = load_checkpoint(out / "last.safetensors")
    fp32 = load_checkpoint(trained_run / "last.safetensors")
    assert json.loads((trained_run / "config.json").read_text())["config"]["precision"] == "fp32"
    assert any(not torch.equal(v, fp32.model_state[k]) for k, v in ours.model_state.items())
    assert all(v.dtype == torch.float32 for v in ours.model_state.values())
    assert json.loads((out / "config.json").read_text())["config"]["precision"] == "bf16"
    assert ours.meta["precision"] == "bf16"
    assert load_checkpoint(out / "best.safetensors").meta["precision"] == "bf16"
    assert "grad_scaler" not in ours.training  # bf16 needs no loss scaling


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_resume_is_bitwise_identical(tmp_path, cache_dir, monkeypatch, precision) -> None:
    """Killed mid-epoch and resumed: the same weights, history and optimizer state as an
    uninterrupted run in the same precision; for fp16 also the same loss-scaler state (its
    step counter since the last overflow would restart at 0 if it were not restored)."""
    options = {**OPTIONS, "precision": precision}
    reference = tmp_path / "reference"
    fit("lenet5", "mnist-subset", out=reference, cache_dir=cache_dir, verbose=False, **options)
    out = tmp_path / "run"
    crash_then_resume(monkeypatch, "lenet5", out, cache_dir, options, crash_after=5)
    assert_same_run(out, reference)
    ours = load_checkpoint(out / "last.safetensors").training
    theirs = load_checkpoint(reference / "last.safetensors").training
    assert ours.get("grad_scaler") == theirs.get("grad_scaler")
    if precision == "fp16":
        scaler = theirs["grad_scaler"]
        assert scaler["_growth_tracker"] > 0 and 0 < scaler["scale"] <= 65536.0


def test_precision_is_refused_in_one_line_where_it_cannot_run(cli, expect_error) -> None:
    with pytest.raises(ConfigError, match=r"^expected precision in fp32, bf16, fp16, received"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match=r"^expected precision fp32 with engine numpy"):
        TrainConfig(precision="bf16", engine="numpy")
    # a device type torch has no autocast for: refused by probing, not by a list of names
    with pytest.raises(ConfigError, match=r"^expected precision fp32 on meta .* received"):
        Precision("bf16", torch.device("meta"))
    status, _, err = cli(
        "train", "lenet5", "--data", "mnist-subset", "--out", "unused", "--engine", "numpy",
        "--precision", "fp16",
    )  # fmt: skip
    expect_error(status, err, "expected precision fp32 with engine numpy", "precision='fp16'")


def test_cli_records_the_precision(tmp_path, cli) -> None:
    out = tmp_path / "run"
    status, _, _ = cli(
        "train", "lenet5", "--data", "mnist-subset", "--out", out, "--epochs", "1",
        "--per-class", "20", "--precision", "bf16", "--no-progress",
    )  # fmt: skip
    assert status == 0
    assert json.loads((out / "config.json").read_text())["config"]["precision"] == "bf16"
    assert load_checkpoint(out / "last.safetensors").meta["precision"] == "bf16"
