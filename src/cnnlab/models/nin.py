"""Network in Network (Lin, Chen & Yan, 2013): the paper's ImageNet model.

Each "mlpconv" block is a spatial convolution followed by two 1x1 convolutions (seed 002: a 1x1
convolution mixes the channels at every position, a small network inside the network). The
classifier is a 1x1 convolution to one map per class followed by global average pooling, no
fully connected layer. Layout and sizes are those of the authors' Caffe ImageNet model
(7,595,176 parameters for 1000 classes), including its ReLU after the class maps.

Deviation from that Caffe model: none in the layers; pooling uses ``ceil_mode=True``
because Caffe rounds pooled sizes up (224 -> 54 -> 27 -> 13 -> 6, hence its 6x6 global pool).
The smallest input is 39x39 (the stride-4 11x11 stem and three pools), so this ImageNet
model does not take 28x28 or 32x32 images; :func:`cnnlab.analysis.check_input` says so.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model


def mlpconv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """An mlpconv block: ``kernel_size`` convolution then two 1x1 convolutions, each with ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
    )


@register_model("nin", default_input=(3, 224, 224), default_num_classes=1000)
class NiN(ImageClassifier):
    """Network in Network (Lin 2013): mlpconv blocks (conv + two 1x1), global average pooling.

    For ImageNet-sized inputs.

    Args:
        num_classes: class maps of the last 1x1 convolution.
        in_channels: input channels.
        dropout: dropout probability after the third block (the paper's 0.5).

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)`` for ``H, W >= 39``.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__(num_classes, (in_channels, 224, 224))
        self.features = nn.Sequential(
            # N x C x 224 x 224
            mlpconv(in_channels, 96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            # N x 96 x 27 x 27
            mlpconv(96, 256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            # N x 256 x 13 x 13
            mlpconv(256, 384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Dropout(p=dropout),
            # N x 384 x 6 x 6
            nn.Conv2d(384, 1024, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, kernel_size=1),
            nn.ReLU(inplace=True),
            # N x 1024 x 6 x 6
        )
        self.classifier = nn.Conv2d(1024, num_classes, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.classifier(x))
        # N x num_classes x 6 x 6
        x = self.pool(x)
        # N x num_classes x 1 x 1
        return torch.flatten(x, 1)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Conv2d(self.classifier.in_channels, num_classes, kernel_size=1)
