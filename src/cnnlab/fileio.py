"""Atomic file writes: a kill at any moment leaves either the old file or the new one.

A write goes to a temporary file next to its target, named ``.<name>.<pid>@<host>.<random>.tmp``
(the writing process and machine), then renamed over the target. A kill leaves that temporary
file behind; the next write into the same folder removes the ones whose process is gone
(:func:`remove_orphaned_temp_files`). Temporary files of cnnlab versions before the process was
recorded (``.<name>.<random>.tmp``) are removed once they are an hour old.

JSON goes out strict (:func:`strict_json`): NaN and infinities, which ``json`` would write as the
non-standard ``NaN``/``Infinity``, become ``null``.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

#: What a binary file write takes: bytes, or a mutable buffer or a view of one (no copy).
Buffer = bytes | bytearray | memoryview

#: Legacy temporary files (no writer recorded) older than this are orphans.
LEGACY_TEMP_AGE_SECONDS = 3600.0
_TEMP = re.compile(r"^\..+?\.(?:(?P<pid>\d+)@(?P<host>[^./]+)\.)?[A-Za-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: str | os.PathLike[str], *parts: Buffer) -> None:
    """Write ``parts`` (bytes-like, one after the other) to ``path`` through a temporary file
    in the same folder and a rename; several parts save joining big buffers in memory.

    The temporary file is flushed and fsync'ed before ``os.replace``, so readers never see a
    partial file, and a crash mid-write leaves the previous version of ``path`` intact.
    """
    tmp = _written_temp_file(Path(path), *parts)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_create_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Create ``path`` holding a strict JSON document, exclusively: complete or absent, never
    replacing a file another process created (like ``O_EXCL``, but atomic in content).

    Raises:
        FileExistsError: ``path`` exists already.
    """
    tmp = _written_temp_file(Path(path), (strict_json(obj) + "\n").encode("utf-8"))
    try:
        os.link(tmp, path)  # fails if path exists: the exclusive step
    finally:
        tmp.unlink(missing_ok=True)


def _written_temp_file(path: Path, *parts: Buffer) -> Path:
    """``parts`` in a new, fsync'ed temporary file next to ``path`` (module docstring's name),
    after removing the orphans of killed writers in that folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temp_files(path.parent)
    prefix = f".{path.name}.{os.getpid()}@{_host()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            for part in parts:
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """:func:`atomic_write_bytes` for a strict JSON document (indented, trailing newline)."""
    atomic_write_text(path, strict_json(obj) + "\n")


def strict_json(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON (RFC 8259): non-finite floats (NaN, +-Infinity) become ``null``,
    anywhere in the document; everything else as :func:`json.dumps` writes it."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def remove_orphaned_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write_bytes` in ``folder`` whose writing
    process is gone (killed mid-write); returns the files removed.

    A file written by a live process, or by a process on another machine (a folder shared
    over the network), is left alone; one without a recorded writer (older cnnlab) is removed
    when older than :data:`LEGACY_TEMP_AGE_SECONDS`.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host, now = _host(), time.time()
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if match["pid"] is None:
            try:
                orphan = now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_TEMP_AGE_SECONDS
            except OSError:
                continue
        else:
            orphan = match["host"] == host and not process_alive(int(match["pid"]))
        if orphan:
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass  # another process removed it first, or no permission: leave it
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _host() -> str:
    """This machine's short name, as used in temporary file names (no dots or slashes)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
