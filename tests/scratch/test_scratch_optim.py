"""Optimizers and schedules against torch.optim and torch.optim.lr_scheduler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnlab import scratch
from cnnlab.scratch import Parameter

DTYPES = [np.float64, np.float32]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.9, centered=True, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, momentum=0.5)),
]


def run_both(name: str, kwargs: dict, dtype: type, steps: int, resume_at: int | None = None):
    """Apply the same random gradients to a scratch and a torch optimizer; with ``resume_at``,
    the scratch optimizer is rebuilt from its state_dict half-way."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 2, 3)]
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    mine = [Parameter(a.copy()) for a in initial]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in initial]
    groups_mine = [{"params": mine[:2]}, {"params": mine[2:], "lr": kwargs["lr"] / 2}]
    groups_theirs = [{"params": theirs[:2]}, {"params": theirs[2:], "lr": kwargs["lr"] / 2}]
    opt = getattr(scratch.optim, name)(groups_mine, **kwargs)
    ref = getattr(torch.optim, name)(groups_theirs, **kwargs)
    for step in range(steps):
        if step == resume_at:
            state = opt.state_dict()
            opt = getattr(scratch.optim, name)(
                [{"params": mine[:2]}, {"params": mine[2:]}], **kwargs
            )
            opt.load_state_dict(state)
        for p, t in zip(mine, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        ref.step()
    return mine, theirs, opt, ref


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS, ids=[f"{n}{i}" for i, (n, _) in enumerate(CONFIGS)]
)
def test_optimizer_matches_torch(name: str, kwargs: dict, dtype: type, check) -> None:
    mine, theirs, _, _ = run_both(name, kwargs, dtype, steps=6)
    for p, t in zip(mine, theirs, strict=True):
        assert p.dtype == dtype
        check.close(p.data, t.detach().numpy(), dtype)


@pytest.mark.parametrize(("name", "kwargs"), [CONFIGS[2], CONFIGS[5], CONFIGS[9]])
def test_optimizer_resumes_from_state_dict(name: str, kwargs: dict, check) -> None:
    mine, theirs, opt, ref = run_both(name, kwargs, np.float64, steps=6, resume_at=3)
    for p, t in zip(mine, theirs, strict=True):
        check.close(p.data, t.detach().numpy(), np.float64)
    assert opt.param_groups[1]["lr"] == kwargs["lr"] / 2  # restored hyper-parameters
    theirs_state = ref.state_dict()
    mine_state = opt.state_dict()
    assert mine_state["param_groups"][1]["params"] == theirs_state["param_groups"][1]["params"]
    assert set(mine_state["state"][0]) == set(theirs_state["state"][0])  # PyTorch's names


def test_parameters_without_grad_are_skipped() -> None:
    p, q = Parameter(np.ones(2)), Parameter(np.ones(2))
    p.grad = np.ones(2)
    opt = scratch.SGD([p, q], lr=0.5, momentum=0.9)
    opt.step()
    np.testing.assert_array_equal(q.data, [1.0, 1.0])
    np.testing.assert_array_equal(p.data, [0.5, 0.5])
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9, "dampening": 0.1},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ],
)
def test_sgd_updates_a_large_parameter_a_slice_at_a_time_bitwise_as_in_one_piece(
    monkeypatch, kwargs: dict
) -> None:
    """A parameter above ``UPDATE_SLICE`` elements (here 1,000: 2 slices and a partial third)
    ends bitwise where the one-piece update takes it, in float32 and float64."""
    from cnnlab.scratch import optim

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        start = rng.standard_normal((50, 50)).astype(dtype)
        grads = [rng.standard_normal((50, 50)).astype(dtype) for _ in range(3)]
        results = []
        for slice_size in (10_000, 1_000):  # one piece, then 2.5 slices
            monkeypatch.setattr(optim, "UPDATE_SLICE", slice_size)
            p = Parameter(start.copy())
            opt = scratch.SGD([p], lr=0.37, **kwargs)
            for g in grads:
                p.grad = g.copy()
                opt.step()
            results.append(p.data)
        assert not np.array_equal(results[1], start)
        np.testing.assert_array_equal(results[1], results[0])


def torch_lrs(make_scheduler, steps: int, optimizer_name: str = "SGD", **opt_kwargs):
    param = torch.zeros(1, requires_grad=True)
    opt = getattr(torch.optim, optimizer_name)([param], lr=0.1, **opt_kwargs)
    sched = make_scheduler(opt)
    lrs, momenta = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if "betas" in group else group.get("momentum"))
        opt.step()
        sched.step()
    return lrs, momenta


@pytest.mark.parametrize(
    ("mine", "make_theirs", "steps"),
    [
        (scratch.StepLR(0.1, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 10),
        (
            scratch.CosineAnnealingLR(0.1, 7, 1e-3),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 1e-3),
            8,
        ),
        (scratch.ConstantLR(0.1), lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1), 4),
    ],
    ids=["step", "cosine", "constant"],
)
def test_schedules_match_torch(mine, make_theirs, steps: int) -> None:
    lrs, _ = torch_lrs(make_theirs, steps)
    assert [mine(s) for s in range(steps)] == pytest.approx(lrs, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(pct_start=0.25, anneal_strategy="linear"),
        dict(three_phase=True, div_factor=10, final_div_factor=100),
    ],
    ids=["defaults", "linear", "three-phase"],
)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_one_cycle_matches_torch(kwargs: dict, optimizer: str) -> None:
    total = 20
    extra = {"momentum": 0.9} if optimizer == "SGD" else {}
    lrs, momenta = torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=total, **kwargs),
        total,
        optimizer,
        **extra,
    )
    schedule = scratch.OneCycleLR(max_lr=0.5, total_steps=total, **kwargs)
    assert [schedule(s) for s in range(total)] == pytest.approx(lrs, rel=1e-12)
    assert [schedule.momentum(s) for s in range(total)] == pytest.approx(momenta, rel=1e-12)
    assert math.isclose(schedule(0), 0.5 / kwargs.get("div_factor", 25.0))


def test_apply_schedule_sets_lr_and_momentum_on_both_engines() -> None:
    schedule = scratch.OneCycleLR(max_lr=1.0, total_steps=10)
    mine = scratch.Adam([Parameter(np.zeros(1))], lr=0.1)
    theirs = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    for optimizer in (mine, theirs):
        lr = scratch.apply_schedule(optimizer.param_groups, schedule, 5)
        assert optimizer.param_groups[0]["lr"] == lr == schedule(5)
    assert mine.param_groups[0]["betas"] == (schedule.momentum(5), 0.999)
    assert theirs.param_groups[0]["momentum"] == schedule.momentum(5)
