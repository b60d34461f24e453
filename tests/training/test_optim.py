"""Schedules give the closed-form learning rate at every step."""

import itertools
import math

import pytest
import torch

from cnnlab.training.config import TrainConfig
from cnnlab.training.optim import build_optimizer, build_scheduler


def _lrs(config, steps_per_epoch):
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    sched = build_scheduler(opt, config, steps_per_epoch)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(config.epochs * steps_per_epoch):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_constant():
    assert set(_lrs(TrainConfig(schedule="constant", lr=0.1, epochs=2), 5)) == {0.1}


def test_step_decays_every_n_epochs():
    lrs = _lrs(TrainConfig(schedule="step", lr=0.1, epochs=4, step_epochs=2, step_gamma=0.1), 3)
    assert lrs[5] == pytest.approx(0.1) and lrs[6] == pytest.approx(0.01)
    assert lrs[12] == pytest.approx(0.001)


def test_cosine_reaches_zero_through_the_half_point():
    lrs = _lrs(TrainConfig(schedule="cosine", lr=0.2, epochs=2), 10)
    assert lrs[10] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs[5] == pytest.approx(0.1 * (1 + math.cos(math.pi * 5 / 20)))


def test_onecycle_warms_up_to_the_peak_then_anneals():
    lrs = _lrs(TrainConfig(schedule="onecycle", lr=0.01, epochs=1), 100)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert lrs[0] == pytest.approx(0.01 / 25) and lrs[peak] == pytest.approx(0.01)
    assert 25 <= peak <= 35 and lrs[-2] < 1e-6
    assert all(a <= b for a, b in itertools.pairwise(lrs[: peak + 1]))


@pytest.mark.parametrize(
    ("name", "kind", "nesterov"),
    [
        ("sgd", torch.optim.SGD, False),
        ("momentum", torch.optim.SGD, False),
        ("nesterov", torch.optim.SGD, True),
        ("adam", torch.optim.Adam, None),
        ("adamw", torch.optim.AdamW, None),
        ("rmsprop", torch.optim.RMSprop, None),
    ],
)
def test_optimizer_names(name, kind, nesterov):
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], TrainConfig(optimizer=name))
    assert type(opt) is kind
    if nesterov is not None:
        assert opt.param_groups[0]["nesterov"] is nesterov
        assert opt.param_groups[0]["momentum"] == (0.0 if name == "sgd" else 0.9)
