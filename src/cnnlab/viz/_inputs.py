"""What the pictures are made of: a loaded run and one image converted as its training data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.analysis import check_input
from cnnlab.data.images import load_image
from cnnlab.errors import ModelError
from cnnlab.runs import Run


@dataclass
class ModelInput:
    """One image as the model sees it.

    Attributes:
        path: the image file.
        x: the preprocessed input (padded and normalised, as in training).
        pixels: the same input in raw pixel values 0..255 (padding included), for display.
    """

    path: Path
    x: torch.Tensor
    pixels: torch.Tensor


def model_input(run: Run, image: str | Path, invert: bool = False) -> ModelInput:
    """Decode ``image`` and convert it exactly as the run's training data.

    Shape:
        ``file -> x: (1, C, H, W)`` float32, ``pixels: (C, H, W)`` float32 in 0..255, where
        ``(H, W)`` is the run's model input size.

    Raises:
        DataError: a missing, non-image or undecodable file.
        ModelError: the converted image does not fit the run's model.
    """
    prep = run.preprocessing
    raw = load_image(image, prep.channels, prep.image_size, invert)
    x = prep(raw.unsqueeze(0))
    try:
        check_input(run.model, tuple(x.shape[1:]))
    except ModelError as exc:
        shape = "x".join(str(d) for d in x.shape[1:])
        raise ModelError(
            f"expected an image the model can take after conversion, received image={image} "
            f"converted to {shape} ({exc})"
        ) from None
    mean = torch.tensor(prep.mean).view(-1, 1, 1) * 255.0
    std = torch.tensor(prep.std).view(-1, 1, 1) * 255.0
    return ModelInput(Path(image), x, x[0] * std + mean)


def for_display(pixels: torch.Tensor) -> np.ndarray:
    """Raw pixel values as ``imshow`` takes them: grey-scale as a 2-D array, RGB as H x W x 3.

    Shape:
        ``(1, H, W) -> (H, W)``, ``(3, H, W) -> (H, W, 3)``, values 0..255 -> 0..1.
    """
    x = (pixels.detach().float().clamp(0, 255) / 255.0).cpu()
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()
