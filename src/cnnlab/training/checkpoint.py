"""Self-describing checkpoints that load without executing code, written atomically.

A checkpoint is one safetensors file. Its tensors are the model's ``state_dict`` (under
``model.``) and every tensor of the training state (optimizer moments, RNG states, ...); its
header metadata holds one JSON document with everything else: the model's registry name and
keyword arguments, classes, preprocessing, input shape, the training config and, for resumable
checkpoints, the position in training and the state of optimizer, schedule and callbacks.

Loading reads tensors with safetensors and metadata with ``json``: no pickle anywhere, so a
checkpoint from an untrusted source cannot run code. Writing goes through a temporary file and
a rename, so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from cnnlab.errors import CheckpointError
from cnnlab.fileio import atomic_write_bytes

FORMAT = "cnnlab-checkpoint"
VERSION = 1
_META_KEY = "cnnlab"


@dataclass
class Checkpoint:
    """A checkpoint in memory.

    Attributes:
        model_state: the model's ``state_dict``.
        meta: JSON-able description (``model``, ``classes``, ``preprocessing``, ``input_shape``,
            ``config``, ...).
        training: JSON-able training state, tensors allowed anywhere inside (they are stored
            as safetensors entries); empty for weights-only checkpoints.
    """

    model_state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    tensors = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in checkpoint.model_state.items()
    }
    training = encode_tree(checkpoint.training, "training", tensors)
    document = {"format": FORMAT, "version": VERSION, "meta": checkpoint.meta, "training": training}
    data = save_safetensors(tensors, metadata={_META_KEY: json.dumps(document)})
    atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (never executes code).

    Raises:
        CheckpointError: missing file, not a safetensors file, or not a cnnlab checkpoint.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        tensors = load_safetensors(raw)
        document = json.loads(_read_metadata(raw)[_META_KEY])
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"expected a cnnlab checkpoint (safetensors), received {path} ({exc})"
        ) from None
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise CheckpointError(
            f"expected {FORMAT} version {VERSION}, received format={document.get('format')!r} "
            f"version={document.get('version')!r} in {path}"
        )
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    training = decode_tree(document["training"], tensors)
    return Checkpoint(model_state, document["meta"], training)


def _read_metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors byte string (8-byte length + JSON header)."""
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    return header["__metadata__"]


def encode_tree(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Make a nested state (dicts, lists, tuples, tensors, scalars) JSON-able.

    Tensors move into ``tensors`` under a dotted key and are replaced by ``{"__tensor__": key}``;
    tuples and dicts with non-string keys (optimizer state is keyed by int) are tagged so that
    :func:`decode_tree` restores them exactly.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode_tree(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {
            "__items__": [[k, encode_tree(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_tree(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode_tree(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def decode_tree(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_tree`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: decode_tree(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(decode_tree(v, tensors) for v in obj["__tuple__"])
        return {k: decode_tree(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_tree(v, tensors) for v in obj]
    return obj
