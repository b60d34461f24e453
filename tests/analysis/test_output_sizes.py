"""The output-size formula against PyTorch, the seeds' arithmetic, and input-shape parsing."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from cnnlab.analysis import conv_output_size, explain_output_size, parse_input_shape
from cnnlab.errors import ConfigError


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_sizes_match_torch(ceil_mode: bool) -> None:
    for size, k, s, p, d in itertools.product(range(1, 12), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2)):
        if p > k // 2 or d * (k - 1) + 1 > size + 2 * p:
            continue
        pool = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode)
        expected = pool(torch.zeros(1, 1, size, size)).shape[-1]
        assert conv_output_size(size, k, s, p, d, ceil_mode) == expected, (size, k, s, p, d)


def test_conv_sizes_match_torch() -> None:
    for size, k, s, p, d in itertools.product(
        range(1, 10), (1, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)
    ):
        if d * (k - 1) + 1 > size + 2 * p:
            assert conv_output_size(size, k, s, p, d) <= 0
            continue
        conv = nn.Conv2d(1, 1, k, s, p, dilation=d)
        assert conv_output_size(size, k, s, p, d) == conv(torch.zeros(1, 1, size, size)).shape[-1]


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_asymmetric_padding() -> None:
    # "same" for an even kernel: PyTorch pads 1 before and 2 after for k=4
    conv = nn.Conv2d(1, 1, 4, padding="same")
    assert (
        conv(torch.zeros(1, 1, 9, 9)).shape[-1]
        == conv_output_size(9, 4, 1, 1, padding_right=2)
        == 9
    )
    assert explain_output_size(9, 4, 1, 1, padding_right=2) == "(9 - 4 + 1+2)/1 + 1 = 9"


def test_explain_writes_the_seeds_arithmetic() -> None:
    # seed 001: (32 - 5 + 0)/1 + 1 = 28, (14 - 5 + 0)/1 + 1 = 10, (5 - 5 + 0)/1 + 1 = 1
    assert explain_output_size(32, 5) == "(32 - 5 + 2*0)/1 + 1 = 28"
    assert explain_output_size(14, 5) == "(14 - 5 + 2*0)/1 + 1 = 10"
    assert explain_output_size(5, 5) == "(5 - 5 + 2*0)/1 + 1 = 1"
    assert explain_output_size(28, 2, 2) == "(28 - 2 + 2*0)/2 + 1 = 14"
    # inexact divisions say how they round
    assert explain_output_size(224, 11, 4, 2) == "floor((224 - 11 + 2*2)/4) + 1 = 55"
    assert explain_output_size(112, 3, 2, 0, ceil_mode=True) == "ceil((112 - 3 + 2*0)/2) + 1 = 56"
    assert explain_output_size(9, 3, 1, 2, dilation=2) == "(9 - (2*2+1) + 2*2)/1 + 1 = 9"


@pytest.mark.parametrize(
    ("text", "shape"),
    [("3,32,32", (3, 32, 32)), ("1x28x28", (1, 28, 28)), (" 3, 224, 224 ", (3, 224, 224)),
     ("(3,32,32)", (3, 32, 32)), ((1, 28, 28), (1, 28, 28))],
)  # fmt: skip
def test_parse_input_shape(text: str, shape: tuple[int, int, int]) -> None:
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize(
    "bad", ["3,32", "3,32,32,1", "a,b,c", "3,0,32", "3,-1,32", "", "3.5,32,32", (3, 32)]
)
def test_parse_input_shape_rejects(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_input_shape(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("expected an input shape") and "received input" in message
