"""Turning a user's picture (a photo of paper, a drawing of any size) into what a run's
training images looked like, for ``cnnlab predict``.

Three steps, each only where it applies:

1. **Inversion** (single-channel runs trained on dark backgrounds, like MNIST): a picture whose
   border is light is inverted, so dark ink on paper becomes MNIST's light on dark. Forced on or
   off by the caller.
2. **Digit centring** (digit runs: grey-scale images whose classes are digits, see
   :func:`cnnlab.data.digits.is_digit_run`): the background is subtracted, the ink stretched to
   255, and, as the MNIST database was made (LeCun et al.), the digit's bounding box is fitted
   into 20x20, keeping its aspect ratio, and placed in the 28x28 field so that its centre of
   mass is the field's centre (:func:`cnnlab.data.digits.centre_digit`; the box scales with
   other field sizes).
3. **Aspect ratio** (every other run): the picture is padded with its background to the
   training images' aspect ratio, then resized, so a round 0 stays round.

Decoding (modes, transparency, EXIF orientation, guards) is the guarded decoder's,
:func:`cnnlab.data.images.load_image_capped` (one open of the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.digits import BOX, FIELD, centre_digit
from cnnlab.data.images import DEFAULT_MAX_MEGAPIXELS, RESAMPLE, load_image_capped

#: Grey level (0-255) from which a picture's border counts as light; a run whose training pixels
#: average below it (as a fraction, 0.5) counts as trained on dark backgrounds.
LIGHT = 128
#: Longest side a picture is decoded at (digit centring and resizing need no more).
DECODE_SIDE = 512


@dataclass(frozen=True)
class PictureOptions:
    """How a run's pictures are prepared.

    Attributes:
        channels: 1 (grey-scale) or 3 (RGB).
        size: ``(H, W)`` of the run's stored images.
        dark_background: the run was trained on dark backgrounds (inversion may apply).
        digits: the run classifies MNIST-style digits (centring applies, see
            :func:`cnnlab.data.digits.is_digit_run`).
        invert: True forces inversion, False never inverts, None decides from the border.
        max_megapixels: the pixel budget of the decoded file (``--max-megapixels``).
    """

    channels: int
    size: tuple[int, int]
    dark_background: bool = False
    digits: bool = False
    invert: bool | None = None
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS


@dataclass
class PreparedPicture:
    """A picture as the model is given it, and what was done to it.

    Attributes:
        image: the prepared picture, ``(C, H, W)`` uint8.
        inverted: whether it was inverted.
        notes: one sentence per automatic step taken (for the user).
    """

    image: torch.Tensor
    inverted: bool
    notes: list[str] = field(default_factory=list)


def prepare_picture(path: str | Path, options: PictureOptions) -> PreparedPicture:
    """Decode ``path`` and prepare it as the run's training images looked (see the module
    docstring).

    Shape:
        ``file -> (channels, H, W)`` uint8, ``(H, W) = options.size``.

    Raises:
        DataError: a missing or undecodable file (from :func:`load_image_capped`).
    """
    array = _decode(path, options)  # (C, h, w) uint8, the picture's size (long side capped)
    background = border_level(array)
    notes: list[str] = []
    invert = options.invert
    if invert is None:
        invert = options.channels == 1 and options.dark_background and background >= LIGHT
        if invert:
            notes.append(
                f"inverted: light background (border grey level {background:.0f} of 255) and "
                "the run was trained on dark backgrounds (--no-invert keeps the picture as is)"
            )
    if invert:
        array, background = 255 - array, 255 - background
    if options.digits:
        ink = np.clip(array[0].astype(np.float64) - background, 0.0, None)  # (h, w), 0 = paper
        peak = float(ink.max())
        if peak > 0:
            ink = (ink * (255.0 / peak)).round().astype(np.uint8)  # the ink's full range
            centred = centre_digit(ink, options.size)  # (H, W)
            notes.append(
                f"centred as MNIST digits are: bounding box fitted into {BOX}x{BOX}, centre of "
                f"mass at the middle of {FIELD}x{FIELD}"
            )
            return PreparedPicture(torch.from_numpy(centred).unsqueeze(0), invert, notes)
    padded = pad_to_aspect(array, options.size)
    return PreparedPicture(_resize(padded, options.size), invert, notes)


def _decode(path: str | Path, options: PictureOptions) -> np.ndarray:
    """The picture at its own size (EXIF orientation applied), its long side capped at
    :data:`DECODE_SIDE` (or 4x the run's images: a JPEG is then decoded at a reduced scale),
    ``(C, h, w)`` uint8. The file is opened once, by the guarded decoder."""
    side = max(DECODE_SIDE, 4 * max(options.size))
    image = load_image_capped(path, options.channels, side, options.max_megapixels)
    return image.numpy()  # (C, h, w)


def border_level(array: np.ndarray) -> float:
    """The background's grey level: the median of the picture's outermost pixels (all
    channels).

    Shape:
        ``(C, h, w) -> scalar``.
    """
    edges = (array[:, 0, :], array[:, -1, :], array[:, :, 0], array[:, :, -1])
    return float(np.median(np.concatenate([e.ravel() for e in edges])))


def pad_to_aspect(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pad the picture, centred, to the aspect ratio of ``size`` with its background (per
    channel, the median of its border: an RGB picture keeps its background colour).

    Shape:
        ``(C, h, w) -> (C, h', w')`` with ``h' / w' = H / W`` (to a pixel).
    """
    c, h, w = array.shape
    new_h = max(h, round(w * size[0] / size[1]))
    new_w = max(w, round(h * size[1] / size[0]))
    if (new_h, new_w) == (h, w):
        return array
    fill = [border_level(plane[None]) for plane in array]
    out = np.empty((c, new_h, new_w), dtype=np.uint8)
    out[:] = np.round(fill).astype(np.uint8)[:, None, None]
    top, left = (new_h - h) // 2, (new_w - w) // 2
    out[:, top : top + h, left : left + w] = array
    return out


def _resize(array: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Resize with the filter datasets use (bilinear, antialiased when shrinking).

    Shape:
        ``(C, h, w) -> (C, H, W)`` uint8.
    """
    if array.shape[1:] == size:
        return torch.from_numpy(np.ascontiguousarray(array))
    channels = [
        np.asarray(
            Image.fromarray(plane).resize((size[1], size[0]), RESAMPLE, reducing_gap=None),
            dtype=np.uint8,
        )
        for plane in array
    ]
    return torch.from_numpy(np.stack(channels))
