"""Self-describing checkpoints that load without executing code, written atomically.

A checkpoint is one safetensors file. Its tensors are the model's ``state_dict`` (under
``model.``) and every tensor of the training state (optimizer moments, RNG states, ...); its
header metadata holds one JSON document with everything else: the model's registry name and
keyword arguments, classes, preprocessing, input shape, the training config and, for resumable
checkpoints, the position in training and the state of optimizer, schedule and callbacks.

Loading reads tensors with safetensors and metadata with ``json``: no pickle anywhere, so a
checkpoint from an untrusted source cannot run code. The document also records the SHA-256 of
the file's tensor bytes (``tensor_sha256``), checked on every load, so a weight changed on disk
is refused instead of evaluated; the header is checked against the file's size before anything
else is read. Writing goes through a temporary file and
a rename, so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from cnnlab.errors import CheckpointError, describe_path, shown_path
from cnnlab.fileio import atomic_write_bytes

FORMAT = "cnnlab-checkpoint"
VERSION = 1
_META_KEY = "cnnlab"
#: The cnnlab document's key for the SHA-256 of the file's tensor bytes (absent in checkpoints
#: written before cnnlab recorded it; those load without the check).
_SHA256_KEY = "tensor_sha256"
_PENDING = "pending-" + "0" * 56  # 64 characters, never a SHA-256 (not all hex)
MAX_HEADER_BYTES = 100_000_000  # the largest header safetensors itself reads
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


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
    document[_SHA256_KEY] = _PENDING  # replaced by the hash of the tensor bytes, same length
    data = memoryview(save_safetensors(tensors, metadata={_META_KEY: json.dumps(document)}))
    start = 8 + int.from_bytes(data[:8], "little")
    # the header (small) is patched in a copy; the tensor bytes (up to GBs) are hashed and
    # written where they are, never copied
    header = bytearray(data[:start])
    at = header.find(_PENDING.encode(), 8)
    header[at : at + len(_PENDING)] = hashlib.sha256(data[start:]).hexdigest().encode()
    atomic_write_bytes(path, header, data[start:])


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (never executes code).

    The file is checked before its tensors are read: the declared header length and every
    tensor's offsets must lie inside the file and the tensors must fit in memory, so a
    truncated, damaged or huge (sparse) file is refused at once; the tensors are then read
    through a memory map, and their bytes must have the SHA-256 recorded when the checkpoint
    was written (checkpoints written before cnnlab recorded it load without the check).

    Raises:
        CheckpointError: not a readable regular file, not a safetensors file, not a cnnlab
            checkpoint, changed tensor bytes, or malformed training state (one line).
    """
    path = Path(path)
    what = describe_path(path)
    if what is not None:
        raise CheckpointError(f"expected a checkpoint file, received {shown_path(path)} ({what})")
    layout = read_layout(path)
    document = _document(layout, path)
    try:
        tensors = load_file(path)  # memory-mapped, copied tensor by tensor
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"expected a cnnlab checkpoint (safetensors), received {shown_path(path)} "
            f"({_one_line(exc)})"
        ) from None
    recorded = document.get(_SHA256_KEY)
    if recorded is not None:
        found = tensor_bytes_sha256(path, layout)
        if found != recorded:
            raise CheckpointError(
                f"expected tensor bytes with the SHA-256 recorded in {shown_path(path)} "
                f"({recorded[:16]}...), received bytes whose SHA-256 is {found[:16]}...: the "
                f"file changed on disk since it was written; use another checkpoint or train again"
            )
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        training = decode_tree(document["training"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"expected training state whose tensors are all in the file, received "
            f"{shown_path(path)} with a malformed training state ({_one_line(exc)})"
        ) from None
    return Checkpoint(model_state, document["meta"], training)


@dataclass(frozen=True)
class Layout:
    """Where a safetensors file keeps what (read from its header, checked against its size).

    Attributes:
        header: the parsed JSON header (tensor entries and ``__metadata__``).
        data_start: byte offset of the tensor bytes (8 + header length).
        size: the file's size in bytes.
    """

    header: dict[str, Any]
    data_start: int
    size: int


def read_layout(path: Path) -> Layout:
    """The header of the safetensors file at ``path``, checked against the file's size
    before any tensor byte is read.

    Raises:
        CheckpointError: a header length or tensor offsets outside the file, a malformed
            header, or tensors larger than the machine's memory.
    """
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > min(size - 8, MAX_HEADER_BYTES):
                raise CheckpointError(
                    f"expected a cnnlab checkpoint (safetensors) whose header fits in the file, "
                    f"received {shown_path(path)} declaring a {length}-byte header in {size} "
                    f"bytes (truncated, or not a checkpoint)"
                )
            header = json.loads(handle.read(length))
    except OSError as exc:
        raise CheckpointError(
            f"expected a readable checkpoint, received {shown_path(path)} ({exc.strerror})"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"expected a cnnlab checkpoint (safetensors), received {shown_path(path)} whose "
            f"header is not JSON ({_one_line(exc)})"
        ) from None
    layout = Layout(header, 8 + length, size)
    _check_entries(layout, path)
    return layout


def _check_entries(layout: Layout, path: Path) -> None:
    """Every tensor entry's dtype, shape and offsets agree with each other and the file."""
    if not isinstance(layout.header, dict):
        raise CheckpointError(
            f"expected a safetensors header (a JSON object), received "
            f"{type(layout.header).__name__} in {shown_path(path)}"
        )
    available = layout.size - layout.data_start
    end = 0
    for name, entry in layout.header.items():
        if name == "__metadata__":
            continue
        dtype, shape, offsets = (
            (entry.get("dtype"), entry.get("shape"), entry.get("data_offsets"))
            if isinstance(entry, dict)
            else (None, None, None)
        )
        ok = (
            dtype in _DTYPE_BYTES
            and isinstance(shape, list)
            and all(type(v) is int and v >= 0 for v in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(type(v) is int for v in offsets)
        )
        if not ok:
            raise CheckpointError(
                f"expected a cnnlab checkpoint (safetensors) whose tensor entries have a dtype, "
                f"a shape and data_offsets, received {shown_path(str(name))}={_short(entry)} "
                f"in {shown_path(path)}"
            )
        begin, stop = offsets
        needed = math.prod(shape) * _DTYPE_BYTES[dtype]
        if not 0 <= begin <= stop <= available or stop - begin != needed:
            raise CheckpointError(
                f"expected a cnnlab checkpoint (safetensors) holding its tensor "
                f"{shown_path(str(name))} ({dtype} {shape}, {needed} bytes) inside its "
                f"{available} data bytes, received {shown_path(path)} with "
                f"data_offsets={offsets} (truncated or damaged)"
            )
        end = max(end, stop)
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if end > memory:
        raise CheckpointError(
            f"expected a checkpoint whose tensors fit in this machine's memory "
            f"({memory / 2**30:.1f} GiB), received {shown_path(path)} declaring "
            f"{end / 2**30:.1f} GiB of tensors"
        )


def tensor_bytes_sha256(path: Path, layout: Layout) -> str:
    """Hex SHA-256 of the tensor bytes of a safetensors file (everything after the header),
    read through a memory map."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if layout.size > layout.data_start:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(memoryview(mapped)[layout.data_start :])
    return digest.hexdigest()


def _document(layout: Layout, path: Path) -> dict[str, Any]:
    """The cnnlab document of the header's metadata, with its structure checked."""
    metadata = layout.header.get("__metadata__")
    raw = metadata.get(_META_KEY) if isinstance(metadata, dict) else None
    if not isinstance(raw, str):
        raise CheckpointError(
            f"expected a cnnlab checkpoint (safetensors with {_META_KEY!r} metadata), received "
            f"{shown_path(path)} without it"
        )
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(
            f"expected cnnlab metadata as JSON, received {shown_path(path)} ({_one_line(exc)})"
        ) from None
    if not isinstance(document, dict):
        raise CheckpointError(
            f"expected cnnlab metadata (a JSON object), received {_short(document)} in "
            f"{shown_path(path)}"
        )
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise CheckpointError(
            f"expected {FORMAT} version {VERSION}, received format={document.get('format')!r} "
            f"version={document.get('version')!r} in {shown_path(path)}"
        )
    checks = (
        ("meta", "an object", lambda v: isinstance(v, dict)),
        ("training", "an object", lambda v: isinstance(v, dict)),
        (_SHA256_KEY, "64 hex digits", _is_sha256),
    )
    for key, what, check in checks:
        if key == _SHA256_KEY and key not in document:
            continue
        if key not in document or not check(document[key]):
            shown = _short(document[key]) if key in document else "nothing"
            raise CheckpointError(
                f"expected checkpoint field {key!r} to be {what}, received {shown} in "
                f"{shown_path(path)}"
            )
    return document


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
