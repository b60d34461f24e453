"""The parity view: the same input through cnnlab's NumPy engine, layer by layer.

The torch model is converted by the bridge (:func:`cnnlab.bridge.to_scratch`, PyTorch's
layout kept between layers so every value can be compared as it is) and run in eval mode;
each layer node's output is compared, as soon as it is computed, with the torch output of the
same summary row (a module called twice: its calls in order).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.explore.layers import LayerRow
from cnnlab.scratch.graph import GraphNet, Node


def numpy_twin(model: nn.Module) -> GraphNet:
    """The model's NumPy twin in eval mode (float32, torch's layout between layers).

    Raises:
        UnsupportedOpError: an op or layer the NumPy engine lacks (named).
    """
    from cnnlab.bridge import to_scratch

    return to_scratch(model, np.float32, batch_last=False).eval()


@dataclass
class LayerParity:
    """How far the NumPy engine's output of one row is from torch's.

    Attributes:
        index: the summary row.
        max_abs_diff: largest absolute difference over the row's output.
        max_abs: largest absolute value of torch's output (the scale of the difference).
    """

    index: int
    max_abs_diff: float
    max_abs: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "max_abs_diff": self.max_abs_diff, "max_abs": self.max_abs}


@dataclass
class Parity:
    """What :func:`compare` returns.

    Attributes:
        layers: one entry per row the NumPy engine runs as a layer, in the summary's order.
        logits: the NumPy engine's logits for the image.
        logits_max_abs_diff: largest absolute difference from torch's logits.
        seconds: the NumPy forward's wall time.

    Shape:
        ``logits``: ``(num_classes,)``.
    """

    layers: list[LayerParity]
    logits: np.ndarray
    logits_max_abs_diff: float
    seconds: float


def compare(
    net: GraphNet,
    x: torch.Tensor,
    rows: Sequence[LayerRow],
    outputs: dict[int, torch.Tensor],
    logits: torch.Tensor,
) -> Parity:
    """Run ``x`` through ``net`` and compare every layer with torch's ``outputs`` (by row).

    Shape:
        ``x: (1, C, H, W)``; ``outputs[row]: (1, *row.output_shape)``; ``logits: (1, K)``.
    """
    by_name: dict[str, list[LayerRow]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    calls: dict[str, int] = {}
    found: list[LayerParity] = []

    def observe(node: Node, value: np.ndarray) -> None:
        if not node.module or node.module not in by_name:
            return
        call = calls.get(node.module, 0)
        calls[node.module] = call + 1
        candidates = by_name[node.module]
        if call >= len(candidates) or candidates[call].index not in outputs:
            return
        row = candidates[call]
        ours = outputs[row.index].double().numpy()
        if np.size(value) != ours.size:
            return
        theirs = np.asarray(value, dtype=np.float64).reshape(ours.shape)
        found.append(
            LayerParity(row.index, float(np.abs(theirs - ours).max()), float(np.abs(ours).max()))
        )

    start = time.perf_counter()
    numpy_logits = net.forward(
        np.ascontiguousarray(x.numpy(), dtype=np.float32), keep_cache=False, observe=observe
    )
    seconds = time.perf_counter() - start
    diff = float(np.abs(numpy_logits.astype(np.float64) - logits.double().numpy()).max())
    found.sort(key=lambda item: item.index)
    return Parity(found, numpy_logits[0], diff, seconds)
