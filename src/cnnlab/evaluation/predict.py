"""Predicting the classes of new image files (or folders of them) with a trained run.

Pictures are prepared as the run's training images looked (:mod:`cnnlab.data.prepare_picture`):
aspect ratio kept, light backgrounds inverted for runs trained on dark ones, digits centred as
MNIST's were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.digits import is_digit_run
from cnnlab.data.images import DEFAULT_MAX_MEGAPIXELS, IMAGE_SUFFIXES
from cnnlab.data.prepare_picture import LIGHT, PictureOptions, prepare_picture
from cnnlab.errors import ConfigError, DataError, expected
from cnnlab.export.runtime import is_onnx_path, load_onnx_run
from cnnlab.inference import compute_logits
from cnnlab.runs import Run, as_run


@dataclass
class Prediction:
    """The top-k classes of one image, most probable first.

    Attributes:
        path: the image file.
        classes: the top-k class names.
        probabilities: their probabilities.
        inverted: whether the picture was inverted before classifying it.
        notes: what was done to the picture automatically (inversion, digit centring).
    """

    path: str
    classes: list[str]
    probabilities: list[float]
    inverted: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "top_k": [
                {"class": c, "probability": p} for c, p in zip(self.classes, self.probabilities)
            ],
            "inverted": self.inverted,
            "notes": self.notes,
        }

    def render(self) -> str:
        ranked = "  ".join(f"{c} {p:.2%}" for c, p in zip(self.classes, self.probabilities))
        return f"{self.path}: {ranked}" + ("  (inverted)" if self.inverted else "")


def expand_images(images: Sequence[str | Path]) -> list[Path]:
    """Image files as given, with each folder replaced by its PNG/JPEG/BMP files (not its
    sub-folders), sorted by name.

    Raises:
        ConfigError: no paths given.
        DataError: a folder without image files.
    """
    if not images:
        raise ConfigError("expected at least one image file or folder, received none")
    paths: list[Path] = []
    for item in map(Path, images):
        if not item.is_dir():
            paths.append(item)  # a missing file fails with its own one-line error when read
            continue
        found = sorted(
            p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise DataError(
                f"expected a folder with PNG, JPEG or BMP files, received {item} (none in it)"
            )
        paths.extend(found)
    return paths


def picture_options(
    run: Run, invert: bool | None, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> PictureOptions:
    """How ``run`` wants pictures prepared: its channels and stored size, whether it was
    trained on dark backgrounds (mean training pixel below half), whether it reads digits.
    An ONNX file without cnnlab metadata (mean exactly 0: scaling only) has no known
    background and is never inverted automatically."""
    prep = run.preprocessing
    dark = prep.channels == 1 and 0 < prep.mean[0] * 255 < LIGHT
    digits = is_digit_run(tuple(run.classes), prep.channels)
    size = tuple(prep.image_size)
    return PictureOptions(prep.channels, size, dark, digits, invert, max_megapixels)


def predict(
    run: str | Path | Run,
    images: Sequence[str | Path],
    top_k: int = 3,
    invert: bool | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> list[Prediction]:
    """Classify image files (PNG/JPEG/BMP, any size or mode) and folders of them.

    Each picture is prepared as the run's training images looked
    (:func:`~cnnlab.data.prepare_picture.prepare_picture`): padded to their aspect ratio with
    its background and resized; for a single-channel run trained on dark backgrounds, a
    picture with a light border is inverted (``invert=True`` forces it, ``False`` never
    inverts); for a digit run (MNIST-style), the digit is centred as MNIST's were. Then the
    run's padding and normalisation apply. What was done automatically is in each
    prediction's ``notes``.

    Args:
        run: run directory, checkpoint, ONNX file or loaded :class:`~cnnlab.runs.Run`.
        images: image files and folders (a folder's images, sorted by name).
        top_k: classes per image.
        invert: True: always invert, False: never, None: when the background is light.
        max_megapixels: the pixel budget of one decoded image
            (:func:`cnnlab.data.images.load_image`).

    Returns:
        One :class:`Prediction` per image, in order.
    """
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, received top_k={top_k}")
    if not max_megapixels > 0:
        raise ConfigError(expected("a positive --max-megapixels", max_megapixels=max_megapixels))
    paths = expand_images(images)
    if is_onnx_path(run):  # an exported graph, run by onnxruntime (cnnlab.export)
        run = load_onnx_run(run)
    run = as_run(run)
    options = picture_options(run, invert, max_megapixels)
    pictures = [prepare_picture(p, options) for p in paths]
    batch = torch.stack([picture.image for picture in pictures])  # (N, C, H, W) uint8
    probabilities = compute_logits(run.model, batch, run.preprocessing).softmax(1)
    top = probabilities.topk(min(top_k, len(run.classes)), dim=1)
    return [
        Prediction(
            str(path),
            [run.classes[i] for i in idx.tolist()],
            values.tolist(),
            picture.inverted,
            picture.notes,
        )
        for path, picture, values, idx in zip(paths, pictures, top.values, top.indices)
    ]
