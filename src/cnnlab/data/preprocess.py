"""Turning stored uint8 images into the float tensors a model takes, identically everywhere.

Training, evaluation, prediction and visualisation all go through one :class:`Preprocessing`,
stored with the run, so a picture given to ``cnnlab predict`` is converted exactly as the
training data was.

Where MNIST meets LeNet-5: the dataset stores 28x28 digits and LeNet-5 takes 32x32. As in the
paper, the digits are zero-padded (2 pixels each side) here, in :meth:`Preprocessing.__call__`,
on raw pixel values before normalisation, so the padding has the background's value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.data.dataset import ImageSplit
from cnnlab.data.pixel_stats import PixelMoments
from cnnlab.errors import ModelError


@dataclass(frozen=True)
class Preprocessing:
    """How a ``uint8`` batch becomes model input.

    Attributes:
        mean: per-channel mean of the training pixels, scaled to ``[0, 1]``.
        std: per-channel standard deviation, scaled to ``[0, 1]``.
        image_size: ``(H, W)`` images are stored at (new images are resized to it).
        input_size: ``(H, W)`` the model takes; smaller stored images are zero-padded to it.
        channels: 1 (grey-scale) or 3 (RGB).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, int]
    input_size: tuple[int, int]
    channels: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Pad and normalise a batch.

        Shape:
            ``(N, C, H, W) uint8 -> (N, C, H', W') float32``, ``(H', W') = input_size``.
        """
        x = images.float()
        pad_h = self.input_size[0] - x.shape[-2]
        pad_w = self.input_size[1] - x.shape[-1]
        if pad_h or pad_w:
            # zero-pad on raw pixels (background), centred: 28x28 -> 32x32 pads 2 on each side
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1) * 255.0
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1) * 255.0
        return (x - mean) / std

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            channels=int(data["channels"]),
        )


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, scaled to ``[0, 1]``
    (computed exactly, see :mod:`cnnlab.data.pixel_stats`).

    Shape:
        ``(N, C, H, W) uint8 -> (C,), (C,)``.
    """
    return PixelMoments.of_images(images).mean_std()


def fit_preprocessing(train: ImageSplit, model_input: tuple[int, int, int]) -> Preprocessing:
    """Preprocessing for a model with input ``(C, H, W)``, statistics from ``train`` (in
    memory or streamed: the same exact sums, so the same numbers).

    Raises:
        ModelError: stored images have other channels, or are larger than the model input
            where the model needs a fixed size.
    """
    c, h, w = train.image_shape
    if c != model_input[0]:
        raise ModelError(
            f"expected images with {model_input[0]} channel(s) for this model, "
            f"received {c}-channel images of shape {train.image_shape}"
        )
    input_size = (max(h, model_input[1]), max(w, model_input[2]))
    mean, std = train.pixel_moments().mean_std()
    return Preprocessing(mean, std, (h, w), input_size, c)
