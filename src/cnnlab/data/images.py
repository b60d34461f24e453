"""Decoding image files into uint8 tensors, the same way for datasets and for prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
RESAMPLE = Image.Resampling.BILINEAR


def load_image(
    path: str | Path, channels: int, size: tuple[int, int], invert: bool = False
) -> torch.Tensor:
    """Decode an image file and convert it to what a model was trained on.

    Any mode is accepted: transparency is composited onto white (what a viewer shows), then
    the image becomes grey-scale (ITU-R 601-2 luma) or RGB, is resized to ``size`` with
    bilinear filtering (antialiased when shrinking), and optionally inverted (``255 - x``, to
    turn dark-on-light digits into MNIST's light-on-dark).

    Args:
        channels: 1 (grey-scale) or 3 (RGB).
        size: ``(H, W)`` of the result.

    Shape:
        ``file -> (channels, H, W)`` uint8.

    Raises:
        DataError: missing file, not an image, or an image that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"expected an image file, received {path} (no such file)")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), RESAMPLE, reducing_gap=None)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"expected a PNG, JPEG or BMP image, received {path} that cannot be decoded ({exc})"
        ) from None
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1).contiguous()
    return 255 - tensor if invert else tensor
