"""AlexNet (Krizhevsky et al., 2012), as torchvision defines it.

Deviations from the paper, all those of torchvision's reference (61,100,840 parameters for 1000
classes): 64/192 filters in the first two layers instead of 96/256 (the "one weird trick"
single-GPU variant), no local response normalisation (seed 002: it did not help), and an
adaptive 6x6 average pool before the classifier so inputs other than 224x224 work.

The smallest input the feature extractor accepts is 63x63; smaller inputs (e.g. CIFAR's 32x32)
are reported by :func:`cnnlab.analysis.check_input` with the layer and the arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model


@register_model("alexnet", default_input=(3, 224, 224), default_num_classes=1000)
class AlexNet(ImageClassifier):
    """AlexNet (Krizhevsky 2012), torchvision layout: 5 convs, 3 max pools, 3 FC layers.

    Args:
        num_classes: outputs of the last layer.
        in_channels: input channels.
        dropout: dropout probability before the two hidden fully connected layers.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)`` for ``H, W >= 63``.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__(num_classes, (in_channels, 224, 224))
        self.features = nn.Sequential(
            # N x C x 224 x 224
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # N x 64 x 27 x 27
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # N x 192 x 13 x 13
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            # N x 256 x 6 x 6
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(x)
        # N x 256 x 6 x 6
        x = torch.flatten(x, 1)
        # N x 9216
        return self.classifier(x)
