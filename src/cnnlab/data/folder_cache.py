"""The cache of decoded folders: one entry per folder, keyed by its files and options.

An entry is ``CACHE/folders/<folder id>/<key>.safetensors`` for the decoded images of an
in-memory folder, ``<key>.index.safetensors`` for the index of a streamed one (each file's pixel
moments, :mod:`cnnlab.data.stream`). Either holds, per split, one value per file in the scan's
order (tensor ``<split>``) and whether the file could be decoded (``<split>_ok``). The key
hashes the file list with every file's size and modification time plus the conversion options,
so adding, removing or editing a file (or changing ``image_size`` or ``channels``) makes a new
key, and writing the new entry deletes the stale ones. The files that could not be decoded are
kept in the entry's metadata, so they are reported on every load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from cnnlab.data.folder_scan import FolderScan
from cnnlab.data.image_files import FolderOptions
from cnnlab.fileio import atomic_write_bytes

CACHE_VERSION = 3  # 2: one value per file and a "<split>_ok" mask; 3: 16-bit scaled, budget

Entry = tuple[dict[str, torch.Tensor], list[str]]  # tensors, undecodable file paths
PerFile = Callable[[list[Path]], tuple[torch.Tensor, torch.Tensor]]  # paths -> values, ok


def entry_path(cache_dir: str | Path, scan: FolderScan, options: FolderOptions, kind: str) -> Path:
    """Where the ``kind`` entry (``""`` for decoded tensors, ``"index"``) of a folder goes."""
    root = scan.root.resolve()
    folder = Path(cache_dir) / "folders" / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return folder / ".".join(p for p in (_cache_key(scan, options), kind, "safetensors") if p)


def cached_entry(path: Path, scan: FolderScan, per_file: PerFile) -> Entry:
    """The entry at ``path``; when missing or unreadable, computed split by split with
    ``per_file`` (one value per file and whether it decoded) and stored.

    Returns:
        ``(tensors, undecodable)``: ``tensors[split]`` ``(N, ...)`` and ``tensors[split +
        "_ok"]`` ``(N,)`` bool in the scan's file order; the paths that did not decode.
    """
    entry = _read_entry(path)
    if entry is not None:
        return entry
    tensors: dict[str, torch.Tensor] = {}
    undecodable: list[str] = []
    for name, items in scan.splits.items():
        paths = [p for p, _ in items]
        tensors[name], tensors[f"{name}_ok"] = per_file(paths)
        undecodable += [
            str(p) for p, good in zip(paths, tensors[f"{name}_ok"].tolist()) if not good
        ]
    _write_entry(path, (tensors, undecodable))
    return tensors, undecodable


def _read_entry(path: Path) -> Entry | None:
    """A cache entry, or None when missing or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
        tensors = load_tensors(raw)
        metadata = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
        return tensors, json.loads(metadata["undecodable"])
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
        return None  # unreadable cache entry: decode again (it is rewritten atomically)


def _write_entry(path: Path, entry: Entry) -> None:
    """Write an entry atomically and delete the folder's entries of other keys."""
    tensors, undecodable = entry
    data = save_tensors(tensors, metadata={"undecodable": json.dumps(undecodable)})
    atomic_write_bytes(path, data)
    key = path.name.split(".")[0]
    for stale in path.parent.glob("*.safetensors"):
        if stale.name.split(".")[0] != key:
            stale.unlink(missing_ok=True)


def _cache_key(scan: FolderScan, options: FolderOptions) -> str:
    files = []
    for path in scan.all_files():
        stat = path.stat() if path.exists() else path.lstat()  # a dangling link: the link
        files.append([str(path.relative_to(scan.root)), stat.st_size, stat.st_mtime_ns])
    document = {"version": CACHE_VERSION, "options": options.to_dict(), "files": files}
    document["options"].pop("strict")  # strictness does not change the decoded pixels
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:32]
