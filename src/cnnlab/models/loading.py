"""A network for a checkpoint's weights, built without initialising its own.

Building VGG-16 draws 138M random weights twice (torch's default initialisation, then VGG's),
2.3 s on one core, only for :func:`cnnlab.runs.load_run` to overwrite every one of them. Built
on the ``meta`` device, the network holds no memory and draws nothing, and the checkpoint's
tensors then become its parameters and buffers (``load_state_dict(assign=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain

import torch
from torch import nn


def built_with_weights(
    build: Callable[[], nn.Module], state: Mapping[str, torch.Tensor]
) -> nn.Module | None:
    """The network ``build()`` makes, built on the meta device and holding ``state``'s tensors
    as its own, or ``None`` when that cannot stand in for building it and copying ``state`` in:
    a network whose construction needs real values or fails, weights shared between layers
    (assigning would untie them), a state whose keys, shapes or dtypes differ from the network's
    (the copying path then reports or casts them), or a tensor the state does not hold (a
    non-persistent buffer) left on the meta device.

    Shape:
        every ``state[key]`` has the shape and dtype of the network's ``state_dict()[key]``.
    """
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # any failure: the caller builds it the ordinary way and reports that
        return None
    tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    if len({id(t) for _, t in tensors}) != len(tensors):
        return None
    declared = model.state_dict()
    if set(declared) != set(state) or any(
        state[key].shape != t.shape or state[key].dtype != t.dtype for key, t in declared.items()
    ):
        return None
    model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(model.parameters(), model.buffers())):
        return None
    return model
