"""The GPU path's CUDA-only lines, exercised on a real GPU (skipped without one): in-memory
training data kept on the device, channels-last weights, cudnn.benchmark, pinned batches of a
streamed folder, bf16/fp16 autocast training to a sane accuracy, and the fp16 loss scaler
restored on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.training.callbacks import Callback
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.precision import Precision
from cnnlab.training.run import fit
from run_helpers import crash_then_resume

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)"
)


class Inspect(Callback):
    """Records where the trainer keeps things, after the first epoch."""

    key = "inspect"

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        if self.seen:
            return
        conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
        batch = next(iter(trainer.train.batches(8)))
        self.seen = {
            "streamed": getattr(trainer.train, "streamed", False),
            "batch_device": batch.device.type,
            "batch_pinned": batch.is_pinned(),
            "labels_device": trainer.train_labels.device.type,
            "weights_device": conv.weight.device.type,
            "channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }


def _accuracy(cli, run: Path) -> float:
    status, stdout, _ = cli("evaluate", run, "--json")
    assert status == 0
    return json.loads(stdout)["accuracy"]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_in_memory_training_on_the_gpu(tmp_path, cache_dir, cli, precision) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        with pytest.raises(ConfigError, match=r"^expected precision fp32 on cuda"):
            Precision("bf16", torch.device("cuda"))
        return
    inspect = Inspect()
    out = tmp_path / precision
    fit(
        "lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, device="cuda",
        precision=precision, callbacks=[inspect],
    )  # fmt: skip
    assert inspect.seen == {
        "streamed": False,
        "batch_device": "cuda",  # the uint8 training images stay on the GPU
        "batch_pinned": False,
        "labels_device": "cuda",
        "weights_device": "cuda",
        "channels_last": True,
        "cudnn_benchmark": True,
    }
    assert load_checkpoint(out / "last.safetensors").meta["precision"] == precision
    assert _accuracy(cli, out) > 0.90


def test_streamed_folder_batches_are_pinned(tmp_path, subset) -> None:
    folder = tmp_path / "digits"
    for digit in (0, 1, 7):
        (folder / str(digit)).mkdir(parents=True)
        for i in (subset.train.labels == digit).nonzero().flatten()[:40].tolist():
            pixels = subset.train.images[i, 0].numpy()
            Image.fromarray(pixels, "L").save(folder / str(digit) / f"{i}.png")
    inspect = Inspect()
    fit(
        "lenet5", str(folder), out=tmp_path / "run", cache_dir=tmp_path / "cache", verbose=False,
        device="cuda", precision="fp16", stream=True, workers=1, epochs=1, batch_size=16,
        callbacks=[inspect],
    )  # fmt: skip
    assert inspect.seen["streamed"] is True
    assert inspect.seen["batch_device"] == "cpu" and inspect.seen["batch_pinned"] is True
    assert inspect.seen["weights_device"] == "cuda" and inspect.seen["channels_last"] is True


def test_fp16_loss_scaler_is_restored_on_resume(tmp_path, cache_dir, monkeypatch) -> None:
    """Killed mid-run and resumed on the GPU: the resumed run continues with the loss scaler
    of its last checkpoint and finishes. (GPU runs are not bitwise repeatable, cudnn.benchmark
    and atomic adds; the bitwise resume test runs on the CPU, tests/training/test_precision.py.)
    """
    from cnnlab.training import loop

    seen: dict[str, dict] = {}
    original = loop.Trainer.restore

    def spy(self: loop.Trainer, path: Path) -> None:
        seen["saved"] = load_checkpoint(path).training["grad_scaler"]
        original(self, path)
        seen["restored"] = self.engine.precision.scaler.state_dict()

    monkeypatch.setattr(loop.Trainer, "restore", spy)
    out = tmp_path / "run"
    options = {"epochs": 2, "batch_size": 64, "per_class": 100, "checkpoint_every": 4}
    options.update(device="cuda", precision="fp16", seed=3)
    crash_then_resume(monkeypatch, "lenet5", out, cache_dir, options, crash_after=10)
    fresh = (65536.0, 0)  # a new scaler's (scale, steps since an overflow): not restored
    assert seen["restored"] == seen["saved"]
    assert (seen["saved"]["scale"], seen["saved"]["_growth_tracker"]) != fresh
    final = load_checkpoint(out / "last.safetensors")
    assert final.training["epoch"] == 2 and "grad_scaler" in final.training
