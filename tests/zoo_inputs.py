"""Inputs for tests that run every registered model, which of them are heavy, which of them
hold layers no other does (:func:`distinct_models`), and the parameters that send the biggest
to one test worker."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import pairwise

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


def zoo_models(names: Sequence[str] | None = None) -> list:
    """Every registered model (or ``names``) as a test parameter; the :data:`BIG` ones carry
    the ``xdist_group("big-networks")`` mark, so that one worker grows its memory for them once
    and reuses it (tests/conftest.py keeps freed memory), and two of them never run at once."""
    group = pytest.mark.xdist_group("big-networks")
    return [pytest.param(n, marks=group) if n in BIG else n for n in names or list_models()]


@cache
def layer_set(name: str) -> frozenset[tuple]:
    """What ``name`` is made of, configuration included: each layer (a module without children:
    its class and ``extra_repr``, e.g. ``("Conv2d", "64, 64, kernel_size=(3, 3), ...")``), each
    pair of layers in the order the network registers them (a convolution followed by
    BatchNorm or by ReLU), and each block (a module with children: its class and
    ``extra_repr``). Built on the meta device: no memory."""
    with torch.device("meta"):
        model = create_model(name, num_classes=5)
    modules = list(model.modules())
    layers = [(type(m).__qualname__, m.extra_repr()) for m in modules if not [*m.children()]]
    blocks = {("block", type(m).__qualname__, m.extra_repr()) for m in modules if [*m.children()]}
    return frozenset({*layers, *pairwise(layers), *blocks})


@cache
def distinct_models() -> tuple[str, ...]:
    """The registered models that the costliest zoo tests (export, NumPy engine) run, in
    registry order: every other model is made only of the layers, adjacent pairs and blocks of
    one of these (:func:`covering_model`): VGG-16 and VGG-19 repeat VGG-13's layers, ResNet-101
    and -152 ResNet-50's. Chosen richest first, the fewest weights first among equals."""
    chosen: list[str] = []
    for name in sorted(list_models(), key=lambda n: (-len(layer_set(n)), weights(n), n)):
        if covering_model(name, chosen) is None:
            chosen.append(name)
    return tuple(name for name in list_models() if name in chosen)


def covering_model(name: str, among: Sequence[str] | None = None) -> str | None:
    """The first model of ``among`` (default :func:`distinct_models`) other than ``name`` that
    holds every element of ``name``'s :func:`layer_set`; None when there is none."""
    candidates = distinct_models() if among is None else among
    return next((c for c in candidates if c != name and layer_set(name) <= layer_set(c)), None)


def small_input(name: str) -> tuple[int, int, int]:
    """The model's default input if it is at most 32x32, else the smallest of 32x32 and the
    smallest size the architecture accepts (alexnet 63, nin 39): a real forward stays cheap,
    and adaptive pools then pool tiny maps."""
    c, h, w = get_model_entry(name).default_input
    if h <= 32 and w <= 32:
        return c, h, w
    size = max(32, min_input_size(name) or 32)
    return c, size, size
