"""Layers: torch.nn names, state_dict keys, forward and every gradient against torch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn as tnn

from cnnlab.scratch import nn as snn

DTYPES = [np.float64, np.float32]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def build(nn, dtype: type):  # either the scratch or the torch namespace
    """The same small network in either engine: every layer type once."""
    kw = {"dtype": dtype} if nn is snn else {}
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False, **kw),  # a bias before BN has zero grad
        nn.BatchNorm2d(8, **kw),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(8, 8, 3, stride=1, padding="same", dilation=2, groups=2, bias=False, **kw),
        nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d((2, 3)),
        nn.Flatten(),
        nn.Dropout(0.0),
        nn.Linear(48, 16, bias=False, **kw),
        nn.BatchNorm1d(16, **kw),
        nn.Tanh(),
        nn.Linear(16, 5, **kw),
        nn.Sigmoid(),
    )


def twins(dtype: type) -> tuple[snn.Sequential, tnn.Sequential]:
    torch.manual_seed(0)
    reference = build(tnn, dtype).to(TORCH_DTYPE[dtype])
    mine = build(snn, dtype)
    mine.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    return mine, reference


def test_state_dict_keys_and_shapes_match_torch() -> None:
    mine, reference = twins(np.float32)
    theirs = reference.state_dict()
    assert list(mine.state_dict()) == list(theirs)
    for key, value in mine.state_dict().items():
        assert value.shape == tuple(theirs[key].shape), key
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert mine.state_dict()["1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_network_forward_backward_match_torch(dtype: type, training: bool, check) -> None:
    mine, reference = twins(dtype)
    mine.train(training)
    reference.train(training)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 11, 10)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    out_ref = reference(tx)
    g = rng.standard_normal(tuple(out_ref.shape)).astype(dtype)
    out_ref.backward(torch.from_numpy(g))

    out = mine(x)
    grad_x = mine.backward(g)
    assert out.dtype == dtype and grad_x.dtype == dtype
    check.close(out, out_ref.detach().numpy(), dtype, "output")
    check.close(grad_x, tx.grad.numpy(), dtype, "grad_x")
    for (name, p), (_, tp) in zip(
        mine.named_parameters(), reference.named_parameters(), strict=True
    ):
        check.close(p.grad, tp.grad.numpy(), dtype, f"grad of {name}")
    theirs = reference.state_dict()
    for key, value in mine.state_dict().items():  # running statistics, num_batches_tracked
        check.close(value, theirs[key].numpy(), dtype, key)


def test_gradients_accumulate_and_zero_grad() -> None:
    mine, _ = twins(np.float64)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8))
    mine.eval()
    out = mine(x)
    mine.backward(np.ones_like(out))
    first = {n: p.grad.copy() for n, p in mine.named_parameters()}
    mine(x)
    mine.backward(np.ones_like(out))
    for name, p in mine.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * first[name], rtol=1e-12)
    mine.zero_grad()
    assert all(p.grad is None for p in mine.parameters())


def test_a_first_gradient_is_kept_only_when_nothing_else_holds_it() -> None:
    """A fresh array becomes ``.grad`` as it is (no copy of VGG's 0.8 GB classifier gradient);
    a view, another dtype or a read-only array is copied, so adding the next gradient never
    writes into memory that someone else reads."""
    fresh = np.ones((4, 3))
    p = snn.Parameter(np.zeros((4, 3)))
    p.accumulate_grad(fresh)
    assert p.grad is fresh
    base = np.ones((4, 6))
    for other in (base[:, :3], np.ones((4, 3), dtype=np.float32), np.ones((3, 4)).T):
        q = snn.Parameter(np.zeros((4, 3)))
        q.accumulate_grad(other)
        q.accumulate_grad(np.ones((4, 3)))
        assert q.grad.dtype == np.float64 and not np.shares_memory(q.grad, other)
        np.testing.assert_array_equal(q.grad, np.full((4, 3), 2.0))
    np.testing.assert_array_equal(base, np.ones((4, 6)))  # the viewed array is untouched
    shared = np.ones((4, 3))
    shared.flags.writeable = False
    r = snn.Parameter(np.zeros((4, 3)))
    r.accumulate_grad(shared)
    r.accumulate_grad(shared)
    assert not np.shares_memory(r.grad, shared) and (shared == 1).all()


def test_shared_parameter_receives_both_gradients(check) -> None:
    """Weight tying: the same Parameter used by two layers sums both contributions (+=)."""
    torch.manual_seed(1)
    t1, t2 = tnn.Linear(4, 4).double(), tnn.Linear(4, 4).double()
    t2.weight = t1.weight
    reference = tnn.Sequential(t1, tnn.Tanh(), t2)
    s1, s2 = snn.Linear(4, 4, dtype=np.float64), snn.Linear(4, 4, dtype=np.float64)
    s2.weight = s1.weight
    mine = snn.Sequential(s1, snn.Tanh(), s2)
    mine.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    assert len(list(mine.parameters())) == len(list(reference.parameters())) == 3
    x = np.random.default_rng(2).standard_normal((5, 4))
    reference(torch.from_numpy(x)).sum().backward()
    out = mine(x)
    mine.backward(np.ones_like(out))
    check.close(s1.weight.grad, t1.weight.grad.numpy(), np.float64)


def test_batch_norm_momentum_none_is_cumulative_average(check) -> None:
    reference = tnn.BatchNorm2d(3, momentum=None).double()
    mine = snn.BatchNorm2d(3, momentum=None, dtype=np.float64)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        reference(torch.from_numpy(x))
        mine(x)
    for key, value in reference.state_dict().items():
        check.close(mine.state_dict()[key], value.numpy(), np.float64, key)


def test_load_state_dict_rejects_wrong_keys_and_shapes() -> None:
    layer = snn.Linear(3, 2)
    state = layer.state_dict()
    with pytest.raises(KeyError, match="missing=\\['bias'\\]"):
        layer.load_state_dict({"weight": state["weight"]})
    with pytest.raises(ValueError, match="expected weight of shape"):
        layer.load_state_dict({"weight": np.zeros((2, 4)), "bias": state["bias"]})
    layer.load_state_dict({"weight": np.ones((2, 3))}, strict=False)
    np.testing.assert_array_equal(layer.weight.data, np.ones((2, 3), np.float32))
    assert layer.weight.dtype == np.float32


def test_default_init_follows_torch_bounds() -> None:
    conv = snn.Conv2d(4, 6, 3, groups=2, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(2 * 3 * 3)
    assert conv.weight.shape == (6, 2, 3, 3) and conv.weight.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound


def test_modes_dtype_cast_and_frozen_parameters() -> None:
    model = snn.Sequential(snn.Linear(3, 3), snn.Dropout(0.5), snn.Linear(3, 2))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.to(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    model[0].weight.requires_grad = False
    out = model(np.ones((2, 3)))
    model.backward(np.ones_like(out))
    assert model[0].weight.grad is None and model[2].weight.grad is not None
    assert "Linear(in_features=3, out_features=3, bias=True)" in repr(model)


def test_backward_without_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="without a forward pass"):
        snn.ReLU().backward(np.ones(3))


def test_cross_entropy_loss_module(check) -> None:
    logits = np.random.default_rng(4).standard_normal((6, 4))
    target = np.array([0, 1, 2, 3, 0, 1])
    loss_fn = snn.CrossEntropyLoss(label_smoothing=0.05)
    loss = loss_fn(logits, target)
    t_logits = torch.tensor(logits, requires_grad=True)
    ref = tnn.CrossEntropyLoss(label_smoothing=0.05)(t_logits, torch.from_numpy(target))
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    check.close(loss_fn.backward(), t_logits.grad.numpy(), np.float64)


def test_deepcopy_and_first_layer_input_grad_skipped() -> None:
    model = snn.Sequential(snn.Conv2d(1, 2, 3), snn.ReLU(), snn.Flatten(), snn.Linear(8, 2))
    twin = copy.deepcopy(model)
    twin[0].weight.data += 1
    assert not np.allclose(twin[0].weight.data, model[0].weight.data)
    out = model(np.ones((2, 1, 4, 4), np.float32))
    assert model.backward(np.ones_like(out), needs_input_grad=False) is None
    assert model[0].weight.grad is not None
