"""Element-wise, linear, loss, normalisation, dropout and wiring ops against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.scratch import functional as F

DTYPES = [np.float64, np.float32]
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])

ACTIVATIONS = {
    "relu": (F.relu, F.relu_backward, TF.relu),
    "sigmoid": (F.sigmoid, F.sigmoid_backward, torch.sigmoid),
    "tanh": (F.tanh, F.tanh_backward, torch.tanh),
    "gelu": (F.gelu, F.gelu_backward, TF.gelu),
    "gelu_tanh": (
        lambda x: F.gelu(x, "tanh"),
        F.gelu_backward,
        lambda t: TF.gelu(t, approximate="tanh"),
    ),
}


@dtypes
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name: str, dtype: type, check) -> None:
    forward, backward, reference = ACTIVATIONS[name]
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype) * 4
    x[0, 0, :2] = 0.0  # the kink
    out_ref, g, (gx_ref,) = check.torch_reference(reference, [x])
    out, cache = forward(x)
    check.close(out, out_ref, dtype, "output")
    check.close(backward(g, cache), gx_ref, dtype, "grad")
    assert out.dtype == dtype


@dtypes
def test_leaky_relu_matches_torch(dtype: type, check) -> None:
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(dtype)
    x[0, :2] = 0.0
    out_ref, g, (gx_ref,) = check.torch_reference(lambda t: TF.leaky_relu(t, 0.2), [x])
    out, cache = F.leaky_relu(x, 0.2)
    check.close(out, out_ref, dtype)
    check.close(F.leaky_relu_backward(g, cache, 0.2), gx_ref, dtype)


def test_sigmoid_does_not_overflow() -> None:
    out, _ = F.sigmoid(np.array([-1000.0, 1000.0], dtype=np.float32))
    np.testing.assert_array_equal(out, [0.0, 1.0])


@dtypes
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape: tuple, bias: bool, dtype: type, check) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal((4, 7)).astype(dtype), rng.standard_normal(4).astype(dtype)
    b = b if bias else None
    out_ref, g, (gx_ref, gw_ref, gb_ref) = check.torch_reference(TF.linear, [x, w, b])
    out, cache = F.linear(x, w, b)
    gx, gw, gb = F.linear_backward(g, cache)
    check.close(out, out_ref, dtype, "output")
    check.close(gx, gx_ref, dtype, "grad_x")
    check.close(gw, gw_ref, dtype, "grad_weight")
    if bias:
        check.close(gb, gb_ref, dtype, "grad_bias")


@dtypes
@pytest.mark.parametrize("log", [False, True])
def test_softmax_matches_torch(log: bool, dtype: type, check) -> None:
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(dtype) * 10
    fwd, bwd = (F.log_softmax, F.log_softmax_backward) if log else (F.softmax, F.softmax_backward)
    reference = TF.log_softmax if log else TF.softmax
    out_ref, g, (gx_ref,) = check.torch_reference(lambda t: reference(t, dim=1), [x])
    out, cache = fwd(x, axis=1)
    check.close(out, out_ref, dtype)
    check.close(bwd(g, cache, axis=1), gx_ref, dtype)


@dtypes
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_torch(smoothing: float, dtype: type, check) -> None:
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((8, 5)) * 5).astype(dtype)
    target = rng.integers(0, 5, 8)
    t_logits = torch.tensor(logits, requires_grad=True)
    loss_ref = TF.cross_entropy(t_logits, torch.from_numpy(target), label_smoothing=smoothing)
    loss_ref.backward(torch.tensor(2.0, dtype=t_logits.dtype))
    loss, cache = F.cross_entropy(logits, target, label_smoothing=smoothing)
    check.close(np.array(loss), loss_ref.detach().numpy(), dtype, "loss")
    grad = F.cross_entropy_backward(cache, 2.0)
    check.close(grad, t_logits.grad.numpy(), dtype, "grad")
    assert grad.dtype == dtype


BN_SHAPES = [(6, 3), (4, 3, 5), (3, 3, 4, 5)]


@dtypes
@pytest.mark.parametrize("shape", BN_SHAPES, ids=["1d", "1d-L", "2d"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch(
    shape: tuple, training: bool, affine: bool, dtype: type, check
) -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    c = shape[1]
    weight = rng.standard_normal(c).astype(dtype) if affine else None
    bias = rng.standard_normal(c).astype(dtype) if affine else None
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    out_ref, g, grads_ref = check.torch_reference(
        lambda a, w, b: TF.batch_norm(a, t_rm, t_rv, w, b, training, 0.1, 1e-5), [x, weight, bias]
    )
    out, cache = F.batch_norm(x, rm, rv, weight, bias, training, 0.1, 1e-5)
    gx, gw, gb = F.batch_norm_backward(g, cache)
    check.close(out, out_ref, dtype, "output")
    check.close(rm, t_rm.numpy(), dtype, "running_mean")
    check.close(rv, t_rv.numpy(), dtype, "running_var (unbiased)")
    check.close(gx, grads_ref[0], dtype, "grad_x")
    if affine:
        check.close(gw, grads_ref[1], dtype, "grad_weight")
        check.close(gb, grads_ref[2], dtype, "grad_bias")


@dtypes
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_batch_last_matches_torch(training: bool, dtype: type, check) -> None:
    """The graph executor's (C, H, W, N) layout: statistics over axes 1-3, channels on 0."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 4, 5, 6)) * 2 - 1).astype(dtype)
    weight, bias = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    out_ref, g, grads_ref = check.torch_reference(
        lambda a, w, b: TF.batch_norm(a, t_rm, t_rv, w, b, training, 0.1, 1e-5), [x, weight, bias]
    )
    out, cache = F.batch_norm(
        check.layout(x, True), rm, rv, weight, bias, training, 0.1, 1e-5, batch_last=True
    )
    gx, gw, gb = F.batch_norm_backward(check.layout(g, True), cache)
    check.close(check.unlayout(out, True), out_ref, dtype, "output")
    check.close(rm, t_rm.numpy(), dtype, "running_mean")
    check.close(rv, t_rv.numpy(), dtype, "running_var")
    check.close(check.unlayout(gx, True), grads_ref[0], dtype, "grad_x")
    check.close(gw, grads_ref[1], dtype, "grad_weight")
    check.close(gb, grads_ref[2], dtype, "grad_bias")


def test_batch_norm_without_running_stats_uses_batch(check) -> None:
    x = np.random.default_rng(5).standard_normal((4, 2, 3, 3))
    out, _ = F.batch_norm(x, None, None, training=False)
    ref = TF.batch_norm(torch.from_numpy(x), None, None, training=True)
    check.close(out, ref.numpy(), np.float64)


def test_batch_norm_needs_two_values_when_training() -> None:
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(np.zeros((1, 3)), np.zeros(3), np.ones(3), training=True)


@dtypes
@pytest.mark.parametrize(("size", "channels"), [(5, 8), (2, 6), (4, 3), (1, 4)])
def test_local_response_norm_matches_torch(
    size: int, channels: int, dtype: type, batch_last: bool, check
) -> None:
    x = (np.random.default_rng(6).standard_normal((2, channels, 3, 4)) * 3).astype(dtype)
    kwargs = dict(size=size, alpha=0.3, beta=0.75, k=2.0)
    out_ref, g, (gx_ref,) = check.torch_reference(
        lambda t: TF.local_response_norm(t, **kwargs), [x]
    )
    out, cache = F.local_response_norm(check.layout(x, batch_last), **kwargs, batch_last=batch_last)
    gx = F.local_response_norm_backward(check.layout(g, batch_last), cache)
    check.close(check.unlayout(out, batch_last), out_ref, dtype, "output")
    check.close(check.unlayout(gx, batch_last), gx_ref, dtype, "grad_x")


def test_dropout_is_inverted_and_seeded() -> None:
    x = np.ones((200, 200), np.float32)
    out, mask = F.dropout(x, 0.3, True, np.random.default_rng(7))
    again, _ = F.dropout(x, 0.3, True, np.random.default_rng(7))
    np.testing.assert_array_equal(out, again)
    assert out.dtype == np.float32
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.7)}
    assert abs((out == 0).mean() - 0.3) < 0.01
    assert abs(out.mean() - 1.0) < 0.02
    g = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(F.dropout_backward(g, mask), g * mask)
    same, no_mask = F.dropout(x, 0.3, False, np.random.default_rng(7))
    assert same is x and no_mask is None


def test_flatten_add_concatenate_backward(check) -> None:
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((1, 3, 1, 4))
    ref, g, (ga_ref, gb_ref) = check.torch_reference(lambda s, t: s + t, [a, b])
    check.close(F.add(a, b), ref, np.float64)
    ga, gb = F.add_backward(g, a.shape, b.shape)
    check.close(ga, ga_ref, np.float64)
    check.close(gb, gb_ref, np.float64)

    parts = [rng.standard_normal((2, c, 3, 3)) for c in (1, 4, 2)]
    ref, g, grads = check.torch_reference(lambda *t: torch.cat(t, dim=1), parts)
    check.close(F.concatenate(parts, axis=1), ref, np.float64)
    for mine, theirs in zip(F.concatenate_backward(g, [1, 4, 2], axis=1), grads, strict=True):
        check.close(mine, theirs, np.float64)

    flat = F.flatten(a)
    assert flat.shape == (2, 48)
    np.testing.assert_array_equal(flat, torch.flatten(torch.from_numpy(a), 1).numpy())
    assert F.reshape_backward(flat, a.shape).shape == a.shape
    assert F.flatten(a, 2).shape == (2, 3, 16)


@pytest.mark.parametrize(
    "amounts", [(0, 0, 0, 0, 1, 2), (1, 0, 2, 3), (-1, 2, 0, -1)], ids=["channels", "hw", "crop"]
)
def test_pad_matches_torch(amounts: tuple, check) -> None:
    x = np.random.default_rng(10).standard_normal((2, 3, 4, 5))
    ref, g, (gx_ref,) = check.torch_reference(lambda t: TF.pad(t, amounts), [x])
    check.close(F.pad(x, amounts), ref, np.float64)
    check.close(F.pad_backward(g, amounts), gx_ref, np.float64)


def test_getitem_backward_matches_torch(check) -> None:
    """ResNet option-A shortcut: keep every second pixel."""
    x = np.random.default_rng(11).standard_normal((2, 3, 5, 6))
    index = (slice(None), slice(None), slice(None, None, 2), slice(None, None, 2))
    ref, g, (gx_ref,) = check.torch_reference(lambda t: t[index], [x])
    check.close(x[index], ref, np.float64)
    check.close(F.getitem_backward(g, x.shape, index), gx_ref, np.float64)
