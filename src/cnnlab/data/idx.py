"""Reader for the IDX format of the original MNIST files (LeCun's ``*-ubyte`` files)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

_UBYTE = 0x08  # the only element type MNIST-style datasets use


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed when its name ends in ``.gz``).

    The header is two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions,
    then each dimension as a big-endian uint32; the data follows.

    Returns:
        A read-only ``uint8`` array of the header's shape, e.g. ``(60000, 28, 28)``.

    Raises:
        DataError: the file is missing, not IDX, of another element type, or truncated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DataError(f"cannot read IDX file {path}: {reason}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"expected an IDX file (magic 0x0000), received {path} starting {raw[:4]!r}"
        )
    if raw[2] != _UBYTE:
        raise DataError(
            f"expected IDX element type 0x08 (uint8), received 0x{raw[2]:02x} in {path}"
        )
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_len:
        raise DataError(
            f"expected an IDX header with dimensions, received a {len(raw)}-byte {path}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected_len = header_len + int(np.prod(shape))
    if len(raw) != expected_len:
        raise DataError(
            f"expected {expected_len} bytes for an IDX array of shape {shape}, "
            f"received {len(raw)} bytes in {path} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
