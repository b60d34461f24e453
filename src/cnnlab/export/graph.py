"""The module that is exported: pixels in ``[0, 1]`` in, logits out.

A user of the exported file has images, not cnnlab's preprocessing. :class:`PixelClassifier`
puts the run's :class:`~cnnlab.data.preprocess.Preprocessing` inside the graph: it zero-pads the
stored image size to the network input (centred, on raw pixels, as ``Preprocessing`` pads) and
normalises with the run's mean and standard deviation, then runs the network. On ``[0, 1]``
pixels ``x = u / 255`` that is ``(pad(x) - mean) / std``, the same numbers as ``Preprocessing``
computes from the uint8 ``u`` as ``(pad(u) - 255 mean) / (255 std)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.preprocess import Preprocessing


class PixelClassifier(nn.Module):
    """``model`` behind the run's padding and normalisation.

    Args:
        model: the classifier, in eval mode (GoogLeNet's auxiliary heads run only in training
            mode, so they are not part of the traced graph).
        preprocessing: the run's preprocessing (its mean/std are on ``[0, 1]`` pixels).

    Shape:
        ``(N, C, H, W)`` float32 in ``[0, 1]`` at ``preprocessing.image_size`` ->
        ``(N, num_classes)`` logits.
    """

    def __init__(self, model: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.model = model
        channels = preprocessing.channels
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, channels, 1, 1))
        (h, w), (net_h, net_w) = preprocessing.image_size, preprocessing.input_size
        pad_h, pad_w = net_h - h, net_w - w
        # left, right, top, bottom: centred, as Preprocessing pads (28x28 -> 32x32: 2 each side)
        self.padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shape: ``(N, C, H, W) -> (N, num_classes)``."""
        x = F.pad(pixels, self.padding) if any(self.padding) else pixels  # N x C x H' x W'
        return self.model((x - self.mean) / self.std)
