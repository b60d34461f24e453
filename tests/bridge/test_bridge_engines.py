"""The two training engines agree: same initial weights and batches give the same losses for 50
steps on real MNIST digits; both engines' schedules give the same learning rate at every step;
the NumPy engine's dropout is seeded by the run seed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from cnnlab.bridge.engine import NumpyEngine, build_schedule
from cnnlab.data.preprocess import Preprocessing, fit_preprocessing
from cnnlab.models import create_model
from cnnlab.scratch import apply_schedule
from cnnlab.training.config import OPTIMIZERS, SCHEDULES, TrainConfig
from cnnlab.training.engine import TorchEngine
from cnnlab.training.optim import build_optimizer, build_scheduler

STEPS, BATCH = 50, 64


def _engines(config: TrainConfig, model_name: str = "lenet5", **kwargs):
    torch.manual_seed(config.seed)
    model = create_model(model_name, num_classes=10, in_channels=1, **kwargs)
    twin = copy.deepcopy(model)
    torch_engine = TorchEngine(model, config, torch.device("cpu"), STEPS)
    return torch_engine, NumpyEngine(twin, config, STEPS)


def _batches(subset, size: tuple[int, int]):
    prep = fit_preprocessing(subset.train, (1, *size))
    for step in range(STEPS):
        index = torch.arange(step * BATCH, (step + 1) * BATCH)
        yield prep(subset.train.images[index]), subset.train.labels[index]


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_fifty_steps_on_mnist_give_the_same_losses(subset, optimizer: str) -> None:
    config = TrainConfig(
        epochs=1, batch_size=BATCH, optimizer=optimizer, lr=3e-3 if optimizer == "adam" else 0.05,
        channels_last=False,
    )  # fmt: skip
    torch_engine, numpy_engine = _engines(config)
    torch_losses, numpy_losses = [], []
    for x, y in _batches(subset, (32, 32)):
        for engine, losses in ((torch_engine, torch_losses), (numpy_engine, numpy_losses)):
            loss, _ = engine.forward_loss(x, y)
            engine.step()
            losses.append(loss)
        assert torch_engine.lr == pytest.approx(numpy_engine.lr, rel=1e-12)
    assert torch_losses[-1] < 0.5 * torch_losses[0]  # it learned
    np.testing.assert_allclose(numpy_losses, torch_losses, rtol=2e-3)
    ours, theirs = numpy_engine.model_state(), torch_engine.model_state()
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key].numpy(), value.numpy(), rtol=1e-2, atol=2e-4)
    test = subset.test.images[:500]
    prep = fit_preprocessing(subset.train, (1, 32, 32))
    agree = numpy_engine.logits(test, prep).argmax(1) == torch_engine.logits(test, prep).argmax(1)
    assert agree.float().mean() > 0.99


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_schedules_match_torchs_step_by_step(schedule: str, optimizer: str) -> None:
    milestones = {"milestones": [1, 2]} if schedule == "multistep" else {}
    config = TrainConfig(
        epochs=3, schedule=schedule, optimizer=optimizer, lr=0.1, step_epochs=1, **milestones
    )
    steps_per_epoch = 7
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    scheduler = build_scheduler(opt, config, steps_per_epoch)
    ours = build_schedule(config, steps_per_epoch)
    groups = copy.deepcopy(
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    )
    for step in range(config.epochs * steps_per_epoch + 1):
        apply_schedule(groups, ours, step)
        for key in ("lr", "momentum", "betas"):
            if key in groups[0]:
                assert np.allclose(groups[0][key], opt.param_groups[0][key], rtol=1e-12), (
                    step,
                    key,
                )
        if step < config.epochs * steps_per_epoch:
            opt.step()
            scheduler.step()


def test_numpy_engine_dropout_is_seeded_by_the_run_seed(subset) -> None:
    x, y = next(_batches(subset, (28, 28)))
    losses = {}
    for seed in (0, 0, 1):
        config = TrainConfig(seed=seed, batch_size=BATCH, epochs=1, val_split=0.1)
        torch.manual_seed(0)  # same weights for all three
        model = create_model("baseline", num_classes=10, in_channels=1, input_size=28)
        engine = NumpyEngine(model, config, STEPS)
        losses.setdefault(seed, []).append(engine.forward_loss(x, y)[0])
    assert losses[0][0] == losses[0][1]
    assert losses[0][0] != losses[1][0]


@dataclass(frozen=True)
class _RecordingPreprocessing(Preprocessing):
    """The run's preprocessing, noting each batch's size and torch's thread count."""

    seen: list[tuple[int, int]] = field(default_factory=list)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append((len(images), torch.get_num_threads()))
        return super().__call__(images)


def test_numpy_engine_holds_torch_on_one_thread_and_infers_in_large_shards(subset) -> None:
    """Torch's own threads would spin on the cores the shard threads need (see
    cnnlab.bridge.runtime): inside the engine torch runs on one thread, and afterwards on as
    many as before. Inference batches hold 256 digits per shard (the last one the rest)."""
    torch.set_num_threads(2)  # tests/conftest.py pins one per worker; restored below
    try:
        torch.manual_seed(0)
        model = create_model("lenet5")
        engine = NumpyEngine(model, TrainConfig(batch_size=32), steps_per_epoch=10)
        assert engine.parallel.threads == 2
        base = fit_preprocessing(subset.train, (1, 32, 32))
        prep = _RecordingPreprocessing(**base.to_dict())
        logits = engine.logits(subset.test.images[:600], prep)
        assert torch.get_num_threads() == 2
        assert prep.seen == [(512, 1), (88, 1)]
        expected = engine.logits(subset.test.images[:600], base)
        assert torch.equal(logits, expected) and logits.shape == (600, 10)
    finally:
        torch.set_num_threads(1)
