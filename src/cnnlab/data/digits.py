"""MNIST's own preprocessing, for digits drawn on the explorer's page or given to ``cnnlab
predict`` (LeCun, Cortes & Burges).

The MNIST digits were size-normalised to fit a 20x20 box, keeping their aspect ratio and
anti-aliased, then placed in a 28x28 image so that their centre of mass lies at its centre:
measured on the MNIST test digits, at row and column 14.0 (0-based: ``size / 2``, not the
pixel-grid middle 13.5), which is where :func:`centre_digit` puts it, so a real MNIST digit
comes out of it unchanged but for resampling. A drawing given the same treatment looks like
the training data; a drawing merely resized does not (thin strokes fade, off-centre digits fall
outside where the filters learned to look).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnlab.data.images import RESAMPLE

#: MNIST's digit box inside its 28x28 images.
BOX, FIELD = 20, 28
#: Ink below this share of the brightest pixel does not count for the bounding box.
INK_THRESHOLD = 0.1


def centre_digit(ink: np.ndarray, size: tuple[int, int] = (FIELD, FIELD)) -> np.ndarray:
    """Crop a light-on-dark digit to its bounding box, scale it (aspect kept, anti-aliased)
    so its longer side fills MNIST's 20-of-28 box, and centre its centre of mass in the field.

    Args:
        ink: the drawing, 0 = background, 255 = full ink, any size.
        size: ``(H, W)`` of the result; the box scales with it (20x20 in 28x28).

    Shape:
        ``(h, w) uint8 -> (H, W) uint8``; an image without ink gives zeros.
    """
    height, width = size
    result = np.zeros((height, width), dtype=np.uint8)
    peak = int(ink.max()) if ink.size else 0
    if peak == 0:
        return result
    rows = np.flatnonzero((ink >= INK_THRESHOLD * peak).any(axis=1))
    cols = np.flatnonzero((ink >= INK_THRESHOLD * peak).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = BOX * min(height, width) / FIELD
    scale = box / max(crop.shape)
    h = max(1, min(height, round(crop.shape[0] * scale)))
    w = max(1, min(width, round(crop.shape[1] * scale)))
    digit = np.asarray(Image.fromarray(crop).resize((w, h), RESAMPLE, reducing_gap=None))
    mass = digit.astype(np.float64)
    total = mass.sum()
    if total == 0:
        return result
    cy = (mass.sum(axis=1) * np.arange(h)).sum() / total  # centre of mass in the digit
    cx = (mass.sum(axis=0) * np.arange(w)).sum() / total
    top = round(height / 2 - cy)  # where the digit's row 0 goes in the field
    left = round(width / 2 - cx)
    y0, x0 = max(top, 0), max(left, 0)  # the part of the digit inside the field
    y1, x1 = min(top + h, height), min(left + w, width)
    result[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return result


#: Class names of a digit classifier; with one input channel they make a run a "digit run",
#: whose drawings and pictures get MNIST's preprocessing.
DIGITS = tuple(str(d) for d in range(10))


def is_digit_run(classes: tuple[str, ...] | list[str], channels: int) -> bool:
    """Whether a run classifies MNIST-style digits: grey-scale images whose classes are digits
    (all ten, or some of them, as after ``--classes 0,1,2``)."""
    return channels == 1 and bool(classes) and set(classes) <= set(DIGITS)
