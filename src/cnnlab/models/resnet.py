"""Residual networks (He et al., 2015): the ImageNet layout and the paper's CIFAR layout.

A residual block adds its input (the "shortcut", seed 002) to the output of its last
BatchNorm, before the ReLU: ``a[l+2] = relu(z[l+2] + a[l])``. The block's convolutions keep the
size ("same" padding) except the first block of a stage, which halves it with stride 2; its
shortcut must then change size and width too.

* ImageNet layout (``resnet18/34/50/101/152``): as torchvision defines it (resnet18 11,689,512
  and resnet50 25,557,032 parameters for 1000 classes). Deviation from the paper, as in
  torchvision ("ResNet v1.5"): Bottleneck blocks downsample in the 3x3 convolution, not the
  first 1x1 one. Projection shortcuts (1x1 conv + BN, the paper's option B) where the shape
  changes.
* CIFAR layout (``resnet20/32/56``, section 4.2 of the paper): a 3x3 stem with 16 filters, three
  stages of ``n`` BasicBlocks with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps, global average
  pooling and one linear layer; ``6n + 2`` layers. Shortcuts use the paper's option A by default
  (identity, subsampled and zero-padded in channels, no parameters), because that is what the
  paper used for CIFAR-10 and what its parameter counts (0.27M, 0.46M, 0.85M) refer to; pass
  ``shortcut="B"`` for 1x1 projection shortcuts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ModelError, expected
from cnnlab.models._base import ImageClassifier
from cnnlab.models._blocks import conv1x1, conv3x3
from cnnlab.registry import register_model


class _ResidualBlock(nn.Module):
    """The residual rule both blocks share: ``relu(main(x) + shortcut(x))``, the shortcut
    being ``self.downsample`` where the shape changes, else the identity."""

    relu: nn.ReLU
    downsample: nn.Module | None

    def main(self, x: torch.Tensor) -> torch.Tensor:
        """The block's own path, up to its last BatchNorm (no ReLU)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.main(x)
        out += identity
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34 and the CIFAR ResNets).

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of the first convolution (2 at the start of a stage).
        downsample: the shortcut when the shape changes (``None``: identity).

    Shape:
        ``(N, inplanes, H, W) -> (N, planes, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def main(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a shortcut (ResNet-50/101/152).

    Args:
        inplanes: input channels.
        planes: bottleneck width; the block outputs ``4 * planes`` channels.
        stride: stride of the 3x3 convolution.
        downsample: the shortcut when the shape changes (``None``: identity).

    Shape:
        ``(N, inplanes, H, W) -> (N, 4 * planes, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def main(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class PadShortcut(nn.Module):
    """Option A shortcut: keep every ``stride``-th pixel and zero-pad the new channels.

    Args:
        extra_channels: channels to add (half before, half after the existing ones).
        stride: spatial subsampling.

    Shape:
        ``(N, C, H, W) -> (N, C + extra_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.before = extra_channels // 2
        self.after = extra_channels - self.before
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


def _init_resnet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _PooledLinearHead(ImageClassifier):
    """The head both ResNet layouts share: global average pool, flatten, ``self.fc``."""

    avgpool: nn.AdaptiveAvgPool2d
    fc: nn.Linear

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: ``(N, C, H, W) -> (N, num_classes)`` (C = 512e ImageNet, 64 CIFAR)."""
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.fc.in_features, num_classes)


class ResNet(_PooledLinearHead):
    """ResNet, ImageNet layout (torchvision's ``ResNet``).

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: outputs of the last layer.
        in_channels: input channels.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__(num_classes, (in_channels, 224, 224))
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_resnet(self)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # N x C x 224 x 224
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        # N x 64 x 56 x 56
        x = self.layer1(x)
        # N x 64e x 56 x 56   (e = block.expansion)
        x = self.layer2(x)
        # N x 128e x 28 x 28
        x = self.layer3(x)
        # N x 256e x 14 x 14
        x = self.layer4(x)
        # N x 512e x 7 x 7
        return x


class CifarResNet(_PooledLinearHead):
    """ResNet, CIFAR layout of the paper (section 4.2): ``6n + 2`` layers.

    Args:
        n: BasicBlocks per stage (3 for ResNet-20, 5 for ResNet-32, 9 for ResNet-56).
        num_classes: outputs of the last layer.
        in_channels: input channels.
        shortcut: ``"A"`` (zero-padded identity, the paper's CIFAR choice) or ``"B"``
            (1x1 projection + BatchNorm) where the shape changes.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``.
    """

    def __init__(
        self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A"
    ) -> None:
        super().__init__(num_classes, (in_channels, 32, 32))
        if shortcut not in ("A", "B"):
            raise ModelError(expected("shortcut 'A' or 'B'", shortcut=shortcut))
        self.shortcut = shortcut
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_resnet(self)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample: nn.Module | None = None
        if stride != 1 or self.inplanes != planes:
            if self.shortcut == "A":
                downsample = PadShortcut(planes - self.inplanes, stride)
            else:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes)
                )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # N x C x 32 x 32
        x = self.relu(self.bn1(self.conv1(x)))
        # N x 16 x 32 x 32
        x = self.layer1(x)
        # N x 16 x 32 x 32
        x = self.layer2(x)
        # N x 32 x 16 x 16
        x = self.layer3(x)
        # N x 64 x 8 x 8
        return x


# Variants as data: (block, blocks per stage) for the ImageNet layout, n for the CIFAR layout.
IMAGENET_LAYOUTS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}
CIFAR_DEPTHS: dict[str, int] = {"resnet20": 3, "resnet32": 5, "resnet56": 9}


def _register_imagenet(name: str, block: type[BasicBlock | Bottleneck], layers: list[int]) -> None:
    @register_model(
        name,
        default_input=(3, 224, 224),
        default_num_classes=1000,
        description=f"ResNet-{name.removeprefix('resnet')} (He 2015), ImageNet layout",
    )
    def factory(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
        return ResNet(block, layers, num_classes, in_channels)


def _register_cifar(name: str, n: int) -> None:
    @register_model(
        name,
        default_input=(3, 32, 32),
        default_num_classes=10,
        description=f"ResNet-{6 * n + 2} (He 2015), CIFAR layout, option A shortcuts",
    )
    def factory(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> CifarResNet:
        return CifarResNet(n, num_classes, in_channels, shortcut)


for _name, (_block, _layers) in IMAGENET_LAYOUTS.items():
    _register_imagenet(_name, _block, _layers)
for _name, _n in CIFAR_DEPTHS.items():
    _register_cifar(_name, _n)
