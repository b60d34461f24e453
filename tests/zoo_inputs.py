"""Inputs for tests that run every registered model."""

from __future__ import annotations

from cnnlab.analysis import min_input_size
from cnnlab.models import get_model_entry


def small_input(name: str) -> tuple[int, int, int]:
    """The model's default input if it is at most 32x32, else the smallest of 32x32 and the
    smallest size the architecture accepts (alexnet 63, nin 39): a real forward stays cheap,
    and adaptive pools then pool tiny maps."""
    c, h, w = get_model_entry(name).default_input
    if h <= 32 and w <= 32:
        return c, h, w
    size = max(32, min_input_size(name) or 32)
    return c, size, size
