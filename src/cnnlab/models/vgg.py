"""VGG (Simonyan & Zisserman, 2014): configurations A, B, D, E as data, as torchvision has them.

Every convolution is 3x3, stride 1, "same" padding; every max pool is 2x2, stride 2 (seed 002).
Parameter counts equal torchvision's (vgg16: 138,357,544 for 1000 classes). Deviation from the
paper, as in torchvision: an adaptive 7x7 average pool before the classifier, so inputs other
than 224x224 work (the smallest is 32x32: five pools need at least 2**5 pixels).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model

# An int is a 3x3 convolution with that many filters, "M" a 2x2 max pool with stride 2.
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}  # fmt: skip


def make_layers(cfg: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """The convolutional part of a VGG from its configuration list."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(v, int)
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(ImageClassifier):
    """VGG: a stack of 3x3 convolutions and max pools, then three fully connected layers.

    Args:
        cfg: the configuration list (see :data:`CONFIGS`).
        num_classes: outputs of the last layer.
        in_channels: input channels.
        batch_norm: insert BatchNorm after every convolution (the ``_bn`` variants).
        dropout: dropout probability in the classifier.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)`` for ``H, W >= 32``.
    """

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(num_classes, (in_channels, 224, 224))
        # N x C x 224 x 224 -> N x 512 x 7 x 7
        self.features = make_layers(cfg, in_channels, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(x)
        # N x 512 x 7 x 7
        x = torch.flatten(x, 1)
        # N x 25088
        return self.classifier(x)


def _register(name: str, cfg: list[int | str], batch_norm: bool) -> None:
    depth = name.removeprefix("vgg")
    bn = " with BatchNorm" if batch_norm else ""

    @register_model(
        name + ("_bn" if batch_norm else ""),
        default_input=(3, 224, 224),
        default_num_classes=1000,
        description=f"VGG-{depth}{bn} (Simonyan 2014): 3x3 convs, 2x2 max pools, 3 FC layers",
    )
    def factory(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
        return VGG(cfg, num_classes, in_channels, batch_norm=batch_norm, dropout=dropout)


for _name, _cfg in CONFIGS.items():
    _register(_name, _cfg, batch_norm=False)
    _register(_name, _cfg, batch_norm=True)
