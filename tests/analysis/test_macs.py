"""MAC counts: seed 002's Inception arithmetic, closed forms, and torch's own FLOP counter."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.analysis import summary
from cnnlab.models import create_model


def test_seed_002_inception_cost() -> None:
    direct = nn.Conv2d(192, 32, kernel_size=5, padding=2)
    assert summary(direct, (192, 28, 28)).macs == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    bottleneck = nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2))
    s = summary(bottleneck, (192, 28, 28))
    assert [layer.macs for layer in s.layers] == [28 * 28 * 16 * 192, 28 * 28 * 32 * 5 * 5 * 16]
    assert s.macs == 2_408_448 + 10_035_200 == 12_443_648
    assert s.output_shape == (32, 28, 28)


def test_lenet5_closed_form() -> None:
    s = summary("lenet5")
    expected = [
        28 * 28 * 6 * 5 * 5 * 1,
        10 * 10 * 16 * 5 * 5 * 6,
        1 * 1 * 120 * 5 * 5 * 16,
        120 * 84,
        84 * 10,
    ]
    assert [layer.macs for layer in s.layers if layer.macs] == expected
    assert s.flops == 2 * sum(expected)


def test_conv_rule_against_shapes_for_every_conv() -> None:
    """Each conv row: output elements x in_channels/groups x kernel area."""
    model = create_model("googlenet")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    for layer in summary(model, (3, 64, 64)).layers:
        if layer.name in convs:
            m = convs[layer.name]
            fan_in = m.in_channels // m.groups * math.prod(m.kernel_size)
            assert layer.macs == math.prod(layer.output_shape) * fan_in


def _torch_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return counter.get_total_flops()


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("lenet5", (1, 32, 32)),
        ("lenet5-paddle", (1, 28, 28)),
        ("baseline", (3, 32, 32)),
        ("resnet20", (3, 32, 32)),
        ("resnet18", (3, 64, 64)),
        ("resnet50", (3, 32, 32)),
        ("googlenet", (3, 32, 32)),
        ("alexnet", (3, 63, 63)),
        ("nin", (3, 39, 39)),
        ("vgg11_bn", (3, 32, 32)),
    ],
)
def test_flops_match_torch_flop_counter(name: str, shape: tuple[int, int, int]) -> None:
    model = create_model(name)
    assert summary(model, shape).flops == _torch_flops(model, shape)


class _Functional(nn.Module):
    """Convolution, linear and matmul called functionally, not through layers."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.proj = nn.Parameter(torch.randn(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.w, stride=2, groups=1)  # N x 8 x 7 x 7
        x = x.flatten(2).transpose(1, 2) @ self.proj  # N x 49 x 5
        return F.linear(x.flatten(1), torch.ones(4, 245))


def test_functional_calls_counted() -> None:
    model = _Functional()
    s = summary(model, (3, 16, 16))
    assert s.macs == 7 * 7 * 8 * 27 + 49 * 5 * 8 + 4 * 245
    assert s.flops == _torch_flops(model, (3, 16, 16))
    assert s.layers[0].name == "_Functional" and s.layers[0].macs == s.macs


def test_grouped_conv() -> None:
    model = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    s = summary(model, (8, 10, 10))
    assert s.macs == 10 * 10 * 16 * (8 // 4) * 9
    assert s.flops == _torch_flops(model, (8, 10, 10))
