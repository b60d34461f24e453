"""The numbers behind one unit of a feature map (CNN Explainer's formula view, for any model).

For a convolution unit ``(k, i, j)``: the kernel of output channel ``k``, the input patch it
covers (zeros where it hangs over the padding), their element-wise products, the sum, the
bias, and the layers that act on that value alone next (BatchNorm, the activation), each with
its formula and result. Pooling units show their window and what is taken of it; activation
and BatchNorm units their input and formula. All arithmetic is float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.analysis import Field
from cnnlab.explore.layers import ELEMENTWISE, NORMS, LayerRow

#: Pooling layers whose window :func:`explain_pool` shows.
EXPLAINED_POOLS: tuple[type[nn.Module], ...] = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
)
#: Input channels whose kernel, patch and products are listed in full (all have their sums).
DETAILED_CHANNELS = 64

_FORMULAS: dict[type[nn.Module], str] = {
    nn.ReLU: "max(0, z)",
    nn.ReLU6: "min(max(0, z), 6)",
    nn.Tanh: "tanh(z)",
    nn.Sigmoid: "1 / (1 + exp(-z))",
    nn.SiLU: "z / (1 + exp(-z))",
    nn.GELU: "z * Phi(z)",
    nn.ELU: "z if z > 0 else alpha * (exp(z) - 1)",
}


def receptive_box(field: Field | None, y: int, x: int, input_hw: tuple[int, int]) -> dict[str, Any]:
    """The input pixels unit ``(y, x)`` sees, as edges in input pixel units (pixel ``p``
    spans ``[p, p + 1)``); it may reach beyond the image into the padding.

    Without a spatial grid (after a flatten or a global pool) the unit sees the whole input.
    """
    if field is None or field.jump is None:
        h, w = input_hw
        return {"top": 0.0, "left": 0.0, "bottom": float(h), "right": float(w), "whole": True}
    cy = field.start[0] + y * field.jump[0]
    cx = field.start[1] + x * field.jump[1]
    return {
        "top": cy - (field.size[0] - 1) / 2,
        "left": cx - (field.size[1] - 1) / 2,
        "bottom": cy + (field.size[0] - 1) / 2 + 1,
        "right": cx + (field.size[1] - 1) / 2 + 1,
        "size": [field.size[0], field.size[1]],
        "centre": [cy, cx],
        "whole": False,
    }


def _pair(value: Any) -> tuple[Any, Any]:
    """``k`` or ``(kh, kw)`` -> ``(kh, kw)``."""
    return (value, value) if isinstance(value, int) or value is None else (value[0], value[1])


def conv_padding(module: nn.Conv2d) -> tuple[int, int]:
    """Rows and columns of zeros before the input (``"same"``: half the reach, rounded down,
    as torch pads; ``"valid"``: none)."""
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return (0, 0)
        reach = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return (reach[0] // 2, reach[1] // 2)
    return _pair(module.padding)


def _window(
    x: np.ndarray,
    origin: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    fill: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The values a window with top-left tap at ``origin`` covers, ``fill`` outside the input,
    and a mask of the taps inside.

    Shape:
        ``x: (C, H, W) -> (C, kH, kW), (kH, kW)``.
    """
    rows = origin[0] + dilation[0] * np.arange(kernel[0])
    cols = origin[1] + dilation[1] * np.arange(kernel[1])
    inside_r = (rows >= 0) & (rows < x.shape[1])
    inside_c = (cols >= 0) & (cols < x.shape[2])
    patch = np.full((x.shape[0], kernel[0], kernel[1]), fill, dtype=np.float64)
    inside = np.outer(inside_r, inside_c)
    patch[:, inside] = x[:, rows[inside_r]][:, :, cols[inside_c]].reshape(x.shape[0], -1)
    return patch, inside


def _box(origin: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int]) -> dict:
    """Edges of a window on its input map (pixel ``p`` spans ``[p, p + 1)``)."""
    return {
        "top": origin[0],
        "left": origin[1],
        "bottom": origin[0] + dilation[0] * (kernel[0] - 1) + 1,
        "right": origin[1] + dilation[1] * (kernel[1] - 1) + 1,
    }


def explain_conv(module: nn.Conv2d, x: torch.Tensor, k: int, i: int, j: int) -> dict[str, Any]:
    """Kernel, input patch, products, per-channel sums, sum, bias and ``z = sum + bias`` of
    output unit ``(k, i, j)``.

    Shape:
        ``x``: the layer's input for one image, ``(C_in, H, W)``.
    """
    groups = module.groups
    per_group = module.in_channels // groups
    group = k // (module.out_channels // groups)
    channels = list(range(group * per_group, (group + 1) * per_group))
    kernel, stride, dilation = (
        _pair(module.kernel_size),
        _pair(module.stride),
        _pair(module.dilation),
    )
    pad = conv_padding(module)
    origin = (i * stride[0] - pad[0], j * stride[1] - pad[1])
    values = x.detach().double().cpu().numpy()[channels]  # C_g x H x W
    patch, _ = _window(values, origin, kernel, dilation, 0.0)  # C_g x kH x kW
    weight = module.weight.detach().double().cpu().numpy()[k]  # C_g x kH x kW
    products = weight * patch
    sums = products.sum(axis=(1, 2))
    total = float(sums.sum())
    bias = float(module.bias.detach()[k]) if module.bias is not None else None
    shown = min(len(channels), DETAILED_CHANNELS)
    return {
        "channels": channels,
        "kernel": weight[:shown].tolist(),
        "patch": patch[:shown].tolist(),
        "products": products[:shown].tolist(),
        "channel_sums": sums.tolist(),
        "detailed_channels": shown,
        "sum": total,
        "bias": bias,
        "z": total + (bias or 0.0),
        "kernel_size": list(kernel),
        "stride": list(stride),
        "padding": list(pad),
        "dilation": list(dilation),
        "groups": groups,
        "patch_box": _box(origin, kernel, dilation),
    }


def explain_pool(module: nn.Module, x: torch.Tensor, k: int, i: int, j: int) -> dict[str, Any]:
    """The window of a max / average pooling unit on channel ``k`` and what it takes of it.

    Returns ``{}`` for a pooling layer without such a window (LP or fractional pooling).

    Shape:
        ``x``: the layer's input for one image, ``(C, H, W)``.
    """
    values = x.detach().double().cpu().numpy()[k : k + 1]  # 1 x H x W
    h, w = values.shape[1:]
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        size = _pair(module.output_size)  # a None in output_size keeps that input side
        oh, ow = (size[0] or h, size[1] or w)
        top, left = (i * h) // oh, (j * w) // ow
        bottom, right = math.ceil((i + 1) * h / oh), math.ceil((j + 1) * w / ow)
        patch = values[0, top:bottom, left:right]
        taken = patch.mean() if isinstance(module, nn.AdaptiveAvgPool2d) else patch.max()
        op = "mean" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        box = {"top": top, "left": left, "bottom": bottom, "right": right}
        return {"op": op, "patch": patch.tolist(), "result": float(taken), "patch_box": box}
    if not isinstance(module, EXPLAINED_POOLS):
        return {}
    kernel, pad = _pair(module.kernel_size), _pair(module.padding)
    stride = _pair(module.stride if module.stride else module.kernel_size)
    origin = (i * stride[0] - pad[0], j * stride[1] - pad[1])
    if isinstance(module, nn.MaxPool2d):
        dilation = _pair(module.dilation)
        patch, inside = _window(values, origin, kernel, dilation, -math.inf)
        taken = float(patch.max())
        result: dict[str, Any] = {"op": "max", "result": taken}
    else:
        dilation = (1, 1)
        patch, inside = _window(values, origin, kernel, dilation, 0.0)
        # torch's divisor: the window clipped to the padded input (count_include_pad), or to
        # the input itself, unless overridden
        ends = [min(origin[a] + kernel[a], (h, w)[a] + pad[a]) for a in range(2)]
        padded_area = (ends[0] - origin[0]) * (ends[1] - origin[1])
        divisor = module.divisor_override or (
            padded_area if module.count_include_pad else int(inside.sum())
        )
        taken = float(patch.sum() / divisor)
        result = {"op": "mean", "divisor": divisor, "result": taken}
    shown = np.where(inside, patch[0], np.nan)
    result["patch"] = [[None if math.isnan(v) else v for v in row] for row in shown.tolist()]
    result["patch_box"] = _box(origin, kernel, dilation)
    return result


def elementwise_step(module: nn.Module, channel: int, z: float, value: float) -> dict[str, Any]:
    """One layer that maps a value on its own: its formula with the numbers, and its output.

    ``value`` is the layer's actual output at the unit (what the page shows); for BatchNorm
    the formula's own float64 result is given too.
    """
    step: dict[str, Any] = {"type": type(module).__name__, "input": z, "value": value}
    if isinstance(module, NORMS):
        mean = _at(module.running_mean, channel, 0.0)
        var = _at(module.running_var, channel, 1.0)
        gamma = _at(module.weight, channel, 1.0)
        beta = _at(module.bias, channel, 0.0)
        result = (z - mean) / math.sqrt(var + module.eps) * gamma + beta
        step.update(
            formula="gamma * (z - mean) / sqrt(var + eps) + beta",
            numbers={"mean": mean, "var": var, "eps": module.eps, "gamma": gamma, "beta": beta},
            result=result,
        )
        return step
    if isinstance(module, nn.LeakyReLU):
        step["formula"] = f"z if z > 0 else {module.negative_slope:g} * z"
    else:
        step["formula"] = next(
            (f for kind, f in _FORMULAS.items() if isinstance(module, kind)),
            f"{type(module).__name__}(z)",
        )
    return step


def _at(values: torch.Tensor | None, channel: int, default: float) -> float:
    return float(values.detach()[channel]) if values is not None else default


def acts_alone(row: LayerRow) -> bool:
    """Whether a row maps each value on its own: an activation, or BatchNorm in eval mode
    with running statistics (then a per-channel affine map)."""
    if isinstance(row.module, ELEMENTWISE):
        return True
    return isinstance(row.module, NORMS) and row.module.track_running_stats
