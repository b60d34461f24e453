"""Inputs for tests that run every registered model, which of them are heavy, and the
parameters that send the biggest to one test worker."""

from __future__ import annotations

from functools import cache

import pytest
import torch

from cnnlab.analysis import min_input_size
from cnnlab.models import create_model, get_model_entry, list_models


@cache
def weights(name: str) -> int:
    """Parameters of ``name`` with 5 classes (counted on the meta device: no memory)."""
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, num_classes=5).parameters())


#: Above 20M weights (VGG, AlexNet, ResNet-34/50/101/152), in registry order: the zoo tests
#: spare these what would only cost time (a second load, four more seeds, weight gradients).
HEAVY = [name for name in list_models() if weights(name) > 20_000_000]
#: Above 100M weights (the eight VGGs: a 100M-weight classifier, 0.5 GB in float32 and 1.1 GB
#: in float64): every zoo test of these runs in one worker (:func:`zoo_models`).
BIG = [name for name in list_models() if weights(name) > 100_000_000]


def zoo_models() -> list:
    """Every registered model as a test parameter; the :data:`BIG` ones carry the
    ``xdist_group("big-networks")`` mark, so that one worker grows its memory for them once and
    reuses it (tests/conftest.py keeps freed memory), and two of them never run at once."""
    group = pytest.mark.xdist_group("big-networks")
    return [pytest.param(n, marks=group) if n in BIG else n for n in list_models()]


def small_input(name: str) -> tuple[int, int, int]:
    """The model's default input if it is at most 32x32, else the smallest of 32x32 and the
    smallest size the architecture accepts (alexnet 63, nin 39): a real forward stays cheap,
    and adaptive pools then pool tiny maps."""
    c, h, w = get_model_entry(name).default_input
    if h <= 32 and w <= 32:
        return c, h, w
    size = max(32, min_input_size(name) or 32)
    return c, size, size
