"""Arrays in JSON: base64 of their raw bytes (uint8, or little-endian float32), row-major."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import torch

from cnnlab.errors import ConfigError, expected


def uint8_b64(array: np.ndarray | torch.Tensor) -> str:
    """Base64 of a ``uint8`` array's bytes, C order."""
    data = array.numpy() if isinstance(array, torch.Tensor) else array
    return base64.b64encode(np.ascontiguousarray(data, dtype=np.uint8).tobytes()).decode("ascii")


def float32_b64(array: np.ndarray | torch.Tensor) -> str:
    """Base64 of an array's values as little-endian float32, C order."""
    data = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array
    return base64.b64encode(np.ascontiguousarray(data, dtype="<f4").tobytes()).decode("ascii")


def decode_b64(text: object, size: int, what: str) -> bytes:
    """The bytes of a base64 text, which must be ``size`` bytes long.

    Raises:
        ConfigError: not a string, not base64, or another length.
    """
    if not isinstance(text, str):
        raise ConfigError(expected(f"{what} as a base64 string", **{what: type(text).__name__}))
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            expected(f"{what} as base64 text", **{what: f"{len(text)} characters of non-base64"})
        ) from None
    if len(data) != size:
        raise ConfigError(f"expected {size} bytes in {what}, received {len(data)}")
    return data
