"""Helpers for tests that train short runs, interrupt training and compare runs bit for bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab.training import loop
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit, resume

SUBSET = "mnist-subset"


def trained_subset_run(
    tmp_path_factory: pytest.TempPathFactory,
    cache_dir: Path,
    model: str = "lenet5",
    name: str = "run",
    **options: Any,
) -> Path:
    """A fresh run of ``model`` trained quietly on the MNIST subset with ``fit(**options)``
    (``epochs``, ``schedule``, ``classes``, ...), in a new folder named after ``name``."""
    out = tmp_path_factory.mktemp(name) / "run"
    fit(model, SUBSET, out=out, cache_dir=cache_dir, verbose=False, **options)
    return out


def crash_then_resume(
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    out: Path,
    cache_dir: Path,
    options: dict[str, Any],
    crash_after: int,
    data: str = "mnist-subset",
) -> None:
    """Train ``model`` on ``data`` into ``out``, let the process "die" (an exception out of
    the training step) after ``crash_after`` steps, then resume the run to its end."""
    original = loop.Trainer._train_step
    calls = {"n": 0}

    def crashing_step(self: loop.Trainer, *step: Any) -> float:
        calls["n"] += 1
        if calls["n"] > crash_after:
            raise KeyboardInterrupt  # the process dies here
        return original(self, *step)

    monkeypatch.setattr(loop.Trainer, "_train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, out=out, cache_dir=cache_dir, verbose=False, **options)
    monkeypatch.setattr(loop.Trainer, "_train_step", original)
    resume(out, cache_dir=cache_dir, verbose=False)


def metrics(run_dir: Path) -> dict[str, Any]:
    """The run's history without ``seconds`` (wall time, the one column allowed to differ)."""
    history = json.loads((run_dir / "history.json").read_text())
    history["history"].pop("seconds")
    return history


def assert_same_run(a: Path, b: Path) -> None:
    """Bitwise the same best and last weights, the same optimizer state keys and history."""
    for name in ("last.safetensors", "best.safetensors"):
        wa, wb = load_checkpoint(a / name).model_state, load_checkpoint(b / name).model_state
        assert wa.keys() == wb.keys()
        for key, value in wa.items():
            assert torch.equal(value, wb[key]), f"{name}: {key} differs"
    assert metrics(a) == metrics(b)
    state_a = load_checkpoint(a / "last.safetensors").training["optimizer"]["state"]
    state_b = load_checkpoint(b / "last.safetensors").training["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
