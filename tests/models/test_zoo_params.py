"""Parameter counts of every registered model against reference numbers.

ImageNet models: the counts of the torchvision definitions (as published in torchvision's
model documentation, for 1000 classes; googlenet's 6,624,904 is without the auxiliary heads,
13,004,888 with them). Others are computed here from the papers' layer tables, independently
of the model code.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import create_model, list_models

TORCHVISION = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "googlenet": 13_004_888,
}


def conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def bn(c: int) -> int:
    return 2 * c  # gamma and beta (running statistics are buffers, not parameters)


def cifar_resnet(n: int, classes: int = 10) -> int:
    """He et al. 2015, section 4.2, option A shortcuts (parameter free)."""
    total = conv(3, 3, 16, bias=False) + bn(16)
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += (
                conv(3, c_in, width, False) + bn(width) + conv(3, width, width, False) + bn(width)
            )
            c_in = width
    return total + fc(64, classes)


REFERENCE = {
    **TORCHVISION,
    # seed 000: 156 + 2416 + 48120 + 10164 + 850
    "lenet5": conv(5, 1, 6) + conv(5, 6, 16) + conv(5, 16, 120) + fc(120, 84) + fc(84, 10),
    # seed 001: conv 6@5, conv 16@5, conv 120@4, fc 64, fc 10
    "lenet5-paddle": conv(5, 1, 6) + conv(5, 6, 16) + conv(4, 16, 120) + fc(120, 64) + fc(64, 10),
    # seed 003, Keras trainable params: 456 + 12 (gamma, beta) + 196736 + 1290
    "baseline": 456 + 12 + 196_736 + 1_290,
    # NIN, the authors' Caffe ImageNet model
    "nin": conv(11, 3, 96)
    + 2 * conv(1, 96, 96)
    + conv(5, 96, 256)
    + 2 * conv(1, 256, 256)
    + conv(3, 256, 384)
    + 2 * conv(1, 384, 384)
    + conv(3, 384, 1024)
    + conv(1, 1024, 1024)
    + conv(1, 1024, 1000),
    # Jordan 2024 (airbench94): 2x2 whitening conv 24 with bias, three blocks of two bias-free
    # 3x3 convs + two BatchNorms (64, 256, 256), linear 256 -> 10 without bias
    "airbench94": conv(2, 3, 24)
    + conv(3, 24, 64, False)
    + bn(64)
    + conv(3, 64, 64, False)
    + bn(64)
    + conv(3, 64, 256, False)
    + bn(256)
    + conv(3, 256, 256, False)
    + bn(256)
    + conv(3, 256, 256, False)
    + bn(256)
    + conv(3, 256, 256, False)
    + bn(256)
    + 256 * 10,
    # tuomaso/train_mnist_fast: conv 24@5, conv 32@3, fc 256 on 32x5x5, fc 10
    "mnistnet": conv(5, 1, 24) + conv(3, 24, 32) + fc(32 * 5 * 5, 256) + fc(256, 10),
    "resnet20": cifar_resnet(3),
    "resnet32": cifar_resnet(5),
    "resnet56": cifar_resnet(9),
}


def count(name: str, **kwargs: object) -> int:
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def test_every_model_has_a_reference() -> None:
    assert set(list_models()) == set(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count(name: str) -> None:
    assert count(name) == REFERENCE[name]


def test_reference_arithmetic_matches_the_papers() -> None:
    assert REFERENCE["lenet5"] == 156 + 2416 + 48120 + 10164 + 850
    # the ResNet paper's table 6: 0.27M, 0.46M, 0.85M parameters
    assert [round(REFERENCE[n] / 1e6, 2) for n in ("resnet20", "resnet32", "resnet56")] == [
        0.27,
        0.46,
        0.85,
    ]


def test_googlenet_without_aux_matches_torchvision_pretrained() -> None:
    assert count("googlenet", aux_logits=False) == 6_624_904
    # the paper's 5x5 kernels in the "5x5" branches: 16 more weights per (in, out) pair
    branch3 = [
        (16, 32),
        (32, 96),
        (16, 48),
        (24, 64),
        (24, 64),
        (32, 64),
        (32, 128),
        (32, 128),
        (48, 128),
    ]
    extra = sum((25 - 9) * c_in * c_out for c_in, c_out in branch3)
    assert count("googlenet", aux_logits=False, paper_5x5=True) == 6_624_904 + extra


def test_num_classes_changes_only_the_head() -> None:
    assert count("resnet18", num_classes=10) == TORCHVISION["resnet18"] - fc(512, 1000) + fc(
        512, 10
    )
    assert count("vgg16", in_channels=1) == TORCHVISION["vgg16"] - 2 * 3 * 3 * 64
