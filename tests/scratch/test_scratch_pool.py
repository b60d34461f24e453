"""Max, average and adaptive average pooling against torch autograd and the loop oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.scratch import functional as F
from cnnlab.scratch.functional.layout import to_batch_last

DTYPES = [np.float64, np.float32]

# (H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (8, 8, 2, None, 0, 1, False),
    (7, 9, 3, 2, 1, 1, False),
    (7, 9, 3, 2, 1, 1, True),  # ceil mode adds a last, partial window
    (6, 6, 3, 2, 1, 1, True),  # ...unless it would start in the right padding
    (10, 9, (3, 2), (2, 1), (1, 0), (2, 1), True),
    (5, 5, 3, 1, 1, 2, False),
    (9, 9, 2, 3, 0, 1, True),  # stride > kernel: gaps
    (13, 13, 3, 2, 0, 1, True),  # AlexNet/GoogLeNet style
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", MAX_CASES, ids=[str(i) for i in range(len(MAX_CASES))])
def test_max_pool2d_matches_torch(case: tuple, dtype: type, batch_last: bool, check) -> None:
    h, w, k, s, p, d, ceil = case
    rng = np.random.default_rng(0)
    # ReLU-like input: many exact ties at 0, where the first maximum must win as in torch
    x = np.maximum(rng.standard_normal((2, 3, h, w)), 0).astype(dtype)
    kwargs = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    out_ref, g, (gx_ref,) = check.torch_reference(lambda t: TF.max_pool2d(t, **kwargs), [x])
    out, cache = F.max_pool2d(check.layout(x, batch_last), **kwargs, batch_last=batch_last)
    gx = F.max_pool2d_backward(check.layout(g, batch_last), cache)
    check.close(check.unlayout(out, batch_last), out_ref, dtype, "output")
    check.close(check.unlayout(gx, batch_last), gx_ref, dtype, "grad_x")
    _, indices = TF.max_pool2d(torch.from_numpy(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(F.max_pool2d_indices(cache), indices.numpy())
    if dtype is np.float64:
        naive_out, naive_gx = F.max_pool2d_naive(x, grad_out=g, **kwargs)
        check.close(naive_out, out_ref, dtype, "naive output")
        check.close(naive_gx, gx_ref, dtype, "naive grad_x")


# (H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (8, 8, 2, None, 0, False, True, None),
    (7, 9, 3, 2, 1, False, True, None),
    (7, 9, 3, 2, 1, False, False, None),
    (7, 9, 3, 2, 1, True, True, None),  # ceil overhang is not counted even with pads
    (7, 9, 3, 2, 1, True, False, None),
    (6, 7, (3, 2), (2, 1), (1, 1), True, True, None),
    (5, 5, 3, 1, 1, False, True, 4),
    (10, 10, 5, 3, 2, True, False, None),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", AVG_CASES, ids=[str(i) for i in range(len(AVG_CASES))])
def test_avg_pool2d_matches_torch(case: tuple, dtype: type, batch_last: bool, check) -> None:
    h, w, k, s, p, ceil, include_pad, divisor = case
    x = np.random.default_rng(1).standard_normal((2, 3, h, w)).astype(dtype)
    kwargs = dict(
        kernel_size=k,
        stride=s,
        padding=p,
        ceil_mode=ceil,
        count_include_pad=include_pad,
        divisor_override=divisor,
    )
    out_ref, g, (gx_ref,) = check.torch_reference(lambda t: TF.avg_pool2d(t, **kwargs), [x])
    out, cache = F.avg_pool2d(check.layout(x, batch_last), **kwargs, batch_last=batch_last)
    gx = F.avg_pool2d_backward(check.layout(g, batch_last), cache)
    check.close(check.unlayout(out, batch_last), out_ref, dtype, "output")
    check.close(check.unlayout(gx, batch_last), gx_ref, dtype, "grad_x")
    if dtype is np.float64:
        naive_out, naive_gx = F.avg_pool2d_naive(x, grad_out=g, **kwargs)
        check.close(naive_out, out_ref, dtype, "naive output")
        check.close(naive_gx, gx_ref, dtype, "naive grad_x")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("size", "out_size"),
    [((7, 9), (3, 4)), ((5, 5), (1, 1)), ((6, 6), (6, 6)), ((4, 7), (5, 3)), ((8, 8), (7, 7))],
)
def test_adaptive_avg_pool2d_matches_torch(
    size: tuple, out_size: tuple, dtype: type, batch_last: bool, check
) -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, *size)).astype(dtype)
    out_ref, g, (gx_ref,) = check.torch_reference(
        lambda t: TF.adaptive_avg_pool2d(t, out_size), [x]
    )
    out, cache = F.adaptive_avg_pool2d(check.layout(x, batch_last), out_size, batch_last)
    gx = F.adaptive_avg_pool2d_backward(check.layout(g, batch_last), cache)
    check.close(check.unlayout(out, batch_last), out_ref, dtype, "output")
    check.close(check.unlayout(gx, batch_last), gx_ref, dtype, "grad_x")
    if dtype is np.float64:
        naive_out, naive_gx = F.adaptive_avg_pool2d_naive(x, out_size, grad_out=g)
        check.close(naive_out, out_ref, dtype, "naive output")
        check.close(naive_gx, gx_ref, dtype, "naive grad_x")


def test_adaptive_avg_pool2d_none_keeps_size() -> None:
    x = np.zeros((1, 2, 5, 6), np.float32)
    assert F.adaptive_avg_pool2d(x, (None, 3))[0].shape == (1, 2, 5, 3)


def test_pooling_padding_limit_as_torch() -> None:
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(np.zeros((1, 1, 8, 8)), 3, padding=2)


def test_max_pool2d_three_dimensional_input(check) -> None:
    x = np.random.default_rng(3).standard_normal((3, 6, 6))
    out, _ = F.max_pool2d(x, 2)
    check.close(out, TF.max_pool2d(torch.from_numpy(x), 2).numpy(), np.float64)


def test_max_pool2d_without_argmax_pools_alike_and_refuses_backward(batch_last: bool) -> None:
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32)
    x = to_batch_last(x) if batch_last else x
    with_argmax, cache = F.max_pool2d(x, 3, 2, 1, batch_last=batch_last)
    without, bare = F.max_pool2d(x, 3, 2, 1, batch_last=batch_last, with_argmax=False)
    np.testing.assert_array_equal(without, with_argmax)
    assert bare.argmax is None and cache.argmax is not None
    with pytest.raises(RuntimeError, match="argmax"):
        F.max_pool2d_backward(np.ones_like(without), bare)
