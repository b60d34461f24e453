"""GoogLeNet / Inception v1 (Szegedy et al., 2014), as torchvision defines it.

An Inception module runs a 1x1, a 3x3, a "5x5" convolution and a 3x3 max pool side by side and
concatenates their outputs along the channels; 1x1 "bottleneck" convolutions before the larger
kernels cut the cost (seed 002: 120,422,400 multiplications for a 5x5 conv from 28x28x192 to 32
channels, 12,443,648 with a 1x1 bottleneck to 16 channels first).

Deviations from the paper, all those of torchvision's reference (6,624,904 parameters without the
auxiliary classifiers, 13,004,888 with them, for 1000 classes):

* every convolution is followed by BatchNorm (eps 0.001) and has no bias;
* the "5x5" branch uses a 3x3 kernel, a long-standing quirk of the reference weights
  (torchvision issue #906), kept so parameter counts and weights match; pass ``paper_5x5=True``
  for the paper's 5x5 kernel;
* max pools use ``ceil_mode=True`` (Caffe rounding) and the final pool is adaptive, so 28x28 and
  32x32 inputs also work.

Auxiliary classifiers: with ``aux_logits=True`` (default) two auxiliary heads, after
inception 4a and 4d, run only in training mode. ``forward`` always returns the main logits;
after a training-mode forward the auxiliary logits are in ``model.aux_outputs`` (a tuple of two
``(N, num_classes)`` tensors, empty in eval mode) and the paper's loss is
``loss(main) + model.aux_loss_weight * sum(loss(a) for a in model.aux_outputs)`` with weight 0.3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.models._blocks import ConvBNReLU
from cnnlab.registry import register_model

BN_EPS = 0.001


class Inception(nn.Module):
    """Four parallel branches concatenated along the channels.

    Args:
        in_channels: input channels.
        ch1x1: filters of the 1x1 branch.
        ch3x3red: 1x1 bottleneck filters before the 3x3 branch.
        ch3x3: filters of the 3x3 branch.
        ch5x5red: 1x1 bottleneck filters before the "5x5" branch.
        ch5x5: filters of the "5x5" branch.
        pool_proj: 1x1 filters after the 3x3 max pool branch.
        kernel_5x5: kernel of the "5x5" branch (3 in torchvision, 5 in the paper).

    Shape:
        ``(N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        kernel_5x5: int = 3,
    ) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(in_channels, ch1x1, BN_EPS, kernel_size=1)
        self.branch2 = nn.Sequential(
            ConvBNReLU(in_channels, ch3x3red, BN_EPS, kernel_size=1),
            ConvBNReLU(ch3x3red, ch3x3, BN_EPS, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(in_channels, ch5x5red, BN_EPS, kernel_size=1),
            ConvBNReLU(ch5x5red, ch5x5, BN_EPS, kernel_size=kernel_5x5, padding=kernel_5x5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_channels, pool_proj, BN_EPS, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4x4 average pool, 1x1 conv to 128, FC 1024, dropout 0.7, FC.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, 128, BN_EPS, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(x, (4, 4))
        # N x C x 4 x 4
        x = self.conv(x)
        # N x 128 x 4 x 4
        x = torch.flatten(x, 1)
        # N x 2048
        x = self.dropout(F.relu(self.fc1(x), inplace=True))
        # N x 1024
        return self.fc2(x)


@register_model("googlenet", default_input=(3, 224, 224), default_num_classes=1000)
class GoogLeNet(ImageClassifier):
    """GoogLeNet / Inception v1 (Szegedy 2014), torchvision layout, auxiliary heads in training.

    The auxiliary classifiers are optional.

    Args:
        num_classes: outputs of the classifiers.
        in_channels: input channels.
        aux_logits: build the two auxiliary classifiers (used in training mode only).
        dropout: dropout probability before the main classifier.
        dropout_aux: dropout probability inside the auxiliary classifiers.
        paper_5x5: use the paper's 5x5 kernel in the "5x5" branches instead of torchvision's 3x3.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``; in training mode ``aux_outputs`` also
        holds two ``(N, num_classes)`` tensors.
    """

    aux_loss_weight = 0.3

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        paper_5x5: bool = False,
    ) -> None:
        super().__init__(num_classes, (in_channels, 224, 224))
        k5 = 5 if paper_5x5 else 3
        self.conv1 = ConvBNReLU(in_channels, 64, BN_EPS, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBNReLU(64, 64, BN_EPS, kernel_size=1)
        self.conv3 = ConvBNReLU(64, 192, BN_EPS, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, k5)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, k5)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, k5)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, k5)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, k5)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, k5)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, k5)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, k5)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, k5)
        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.aux_outputs: tuple[torch.Tensor, ...] = ()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk; in training mode also fills ``aux_outputs``.

        Shape:
            ``(N, C, 224, 224) -> (N, 1024, 7, 7)``.
        """
        aux: list[torch.Tensor] = []
        # N x C x 224 x 224
        x = self.maxpool1(self.conv1(x))
        # N x 64 x 56 x 56
        x = self.maxpool2(self.conv3(self.conv2(x)))
        # N x 192 x 28 x 28
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        # N x 480 x 14 x 14
        x = self.inception4a(x)
        # N x 512 x 14 x 14
        if self.aux1 is not None and self.training:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        # N x 528 x 14 x 14
        if self.aux2 is not None and self.training:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        # N x 832 x 7 x 7
        x = self.inception5b(self.inception5a(x))
        # N x 1024 x 7 x 7
        self.aux_outputs = tuple(aux)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        # N x 1024
        return self.fc(self.dropout(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main classifier and the auxiliary classifiers' last layers."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = nn.Linear(aux.fc2.in_features, num_classes)
