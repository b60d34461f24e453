"""Building blocks shared by several model families."""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ConvBNReLU(nn.Module):
    """Convolution without bias, BatchNorm, ReLU (torchvision's GoogLeNet ``BasicConv2d``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        eps: BatchNorm epsilon (GoogLeNet uses 0.001).
        **conv_kwargs: ``kernel_size``, ``stride``, ``padding`` of the convolution.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with ``H'``, ``W'`` given by
        :func:`cnnlab.shapes.conv_output_size`.
    """

    def __init__(
        self, in_channels: int, out_channels: int, eps: float = 1e-5, **conv_kwargs: int
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))
