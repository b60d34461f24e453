"""Weights both ways: torch ``state_dict`` <-> scratch ``state_dict`` (same keys), and nested
training state (optimizer moments) between NumPy arrays and torch tensors for checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.scratch.nn.module import Module


def to_numpy_state(state: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` as NumPy arrays (copies, on the CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def to_torch_state(state: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A scratch ``state_dict`` as torch tensors (same keys, dtypes and shapes)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def load_from_torch(net: Module, model: nn.Module) -> None:
    """Copy ``model``'s weights and buffers into the scratch ``net`` (cast to its dtype)."""
    # views, not copies: load_state_dict copies them into the net's own arrays
    net.load_state_dict({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})


def copy_to_torch(net: Module, model: nn.Module) -> None:
    """Copy the scratch ``net``'s weights and buffers into ``model`` (cast to its dtype)."""
    model.load_state_dict(to_torch_state(net.state_dict()))


def tree_to_torch(obj: Any) -> Any:
    """Every ndarray in a nested state (dicts, lists, tuples) as a torch tensor."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, dict):
        return {k: tree_to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tree_to_torch(v) for v in obj)
    return obj


def tree_to_numpy(obj: Any) -> Any:
    """Inverse of :func:`tree_to_torch`."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: tree_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tree_to_numpy(v) for v in obj)
    return obj
