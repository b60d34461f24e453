"""conv2d against torch autograd and against the naive rotated-filter oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

from cnnlab.scratch import functional as F

DTYPES = [np.float64, np.float32]

# (N, C, H, W, O, kernel, stride, padding, dilation, groups, bias)
CASES = [
    (2, 3, 7, 7, 4, 3, 1, 0, 1, 1, True),
    (2, 3, 8, 7, 4, 3, 2, 1, 1, 1, True),
    (1, 4, 9, 8, 6, (3, 2), (2, 1), (1, 0), (2, 1), 2, True),
    (2, 4, 6, 6, 4, 3, 1, "same", 1, 4, False),  # depthwise
    (2, 2, 7, 6, 3, (2, 3), 1, "same", (2, 1), 1, True),  # even kernel: asymmetric padding
    (2, 3, 6, 6, 2, 1, 1, "valid", 1, 1, True),  # 1x1
    (1, 6, 10, 9, 6, 5, 3, 2, 1, 3, True),
    (2, 2, 5, 5, 3, 2, 2, 0, 1, 1, False),  # stride = kernel: col2im reshape path
    (1, 2, 11, 11, 2, 3, 2, 3, 2, 1, True),  # padding larger than the kernel reach
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv2d_matches_torch(case: tuple, dtype: type, batch_last: bool, check) -> None:
    n, c, h, w, o, k, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(0)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c // groups, kh, kw)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype) if has_bias else None
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    out_ref, g, (gx_ref, gw_ref, gb_ref) = check.torch_reference(
        lambda a, b, c_: TF.conv2d(a, b, c_, **kwargs), [x, weight, bias]
    )
    out, cache = F.conv2d(
        check.layout(x, batch_last), weight, bias, **kwargs, batch_last=batch_last
    )
    assert out.dtype == dtype and out.flags.c_contiguous
    gx, gw, gb = F.conv2d_backward(check.layout(g, batch_last), cache)
    assert gx.flags.c_contiguous
    out, gx = check.unlayout(out, batch_last), check.unlayout(gx, batch_last)
    check.close(out, out_ref, dtype, "output")
    check.close(gx, gx_ref, dtype, "grad_x")
    check.close(gw, gw_ref, dtype, "grad_weight")
    assert gx.dtype == gw.dtype == dtype
    if has_bias:
        check.close(gb, gb_ref, dtype, "grad_bias")
    else:
        assert gb is None
    # the loop oracle (seed 004's rotated-filter derivation) agrees too
    if dtype is np.float64 and not batch_last:
        check.close(F.conv2d_naive(x, weight, bias, **kwargs), out_ref, dtype, "naive output")
        nx, nw, _ = F.conv2d_backward_naive(g, x, weight, **kwargs)
        check.close(nx, gx_ref, dtype, "naive grad_x")
        check.close(nw, gw_ref, dtype, "naive grad_weight")


def test_conv2d_skips_input_grad() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    out, cache = F.conv2d(x, w)
    gx, gw, gb = F.conv2d_backward(np.ones_like(out), cache, needs_input_grad=False)
    assert gx is None and gb is None and gw.shape == w.shape


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(padding="same", stride=2), "stride=1"),
        (dict(groups=2), "divisible by groups"),
        (dict(padding="full"), "padding"),
    ],
)
def test_conv2d_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    x, w = np.zeros((1, 3, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=message):
        F.conv2d(x, w, **kwargs)


def test_conv2d_rejects_too_small_input() -> None:
    with pytest.raises(ValueError, match="received size=2"):
        F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))


def test_im2col_col2im_are_adjoint() -> None:
    """<im2col(x), c> == <x, col2im(c)> for random x, c (overlapping, strided, dilated)."""
    rng = np.random.default_rng(3)
    xp = rng.standard_normal((2, 9, 10, 3))  # batch-last (C, Hp, Wp, N)
    args = ((3, 2), (2, 3), (2, 1), (3, 3))
    cols = F.im2col(xp, *args)
    c = rng.standard_normal(cols.shape)
    back = F.col2im(c, (9, 10), *args[:3])
    assert np.isclose((cols * c).sum(), (xp * back).sum(), rtol=1e-12)
