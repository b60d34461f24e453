"""airbench94: the network of the CIFAR-10 speed runs, 94% test accuracy in seconds on a GPU.

K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv:2404.00498 (2024), code
at github.com/KellerJordan/cifar10-airbench (``airbench94.py``). A small VGG-like net: a 2x2
"whitening" convolution whose filters are set from the eigenvectors of the training images'
2x2 patch covariance (:meth:`Airbench94.init_whitening`), then three blocks of conv, max pool,
BatchNorm, GELU, conv, BatchNorm, GELU, a 3x3 max pool and one linear layer without bias::

    N x 3 x 32 x 32
    whiten   conv 2x2, 24 filters, bias, no padding; GELU       N x 24 x 31 x 31
    block1   conv 3x3 64, pool 2, BN, GELU, conv 3x3 64, BN, GELU     N x 64 x 15 x 15
    block2   ... 256                                                   N x 256 x 7 x 7
    block3   ... 256                                                   N x 256 x 3 x 3
    pool     max pool 3                                                N x 256 x 1 x 1
    head     flatten, linear 256 -> 10, no bias                        N x 10

Layer details kept from the reference: 3x3 convolutions without bias whose first ``in``
filters start as identities (``dirac_``), BatchNorm with ``eps=1e-12`` and momentum 0.6 in the
reference's convention (torch's ``momentum=0.4``), exact (erf) GELU.

Two deviations, both so that the model fits cnnlab's shared interface (any optimizer may train
any registered model; the NumPy engine runs every registered model):

- The reference multiplies the logits by 1/9 (a ``Mul`` layer). Here the linear layer starts
  from the reference's initial weights divided by 9 instead. Under SGD the two are the same
  run: with ``W' = W/9`` the update of ``W'`` is the reference's update of ``W`` with the
  learning rate divided by 81 and the weight decay multiplied by 81 (momentum and Nesterov are
  linear), which is what ``benchmarks/gpu_cifar10.py`` uses for this layer.
- The reference freezes the BatchNorm scales at 1 and the whitening filters
  (``requires_grad=False``). Here every parameter is trainable; the benchmark's recipe leaves
  those out of its optimizer instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model

WHITEN_KERNEL = 2
LOGIT_SCALE = 1 / 9  # the reference's Mul(1/9), folded into the head's initial weights


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 "same" convolution without bias, its first ``in_channels`` filters identities."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:in_channels])
    return conv


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)  # the reference's momentum 0.6


class ConvGroup(nn.Module):
    """conv 3x3, max pool 2, BN, GELU, conv 3x3, BN, GELU.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _batch_norm(out_channels)
        self.act1 = nn.GELU()
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.norm2 = _batch_norm(out_channels)
        self.act2 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.pool(self.conv1(x))))
        return self.act2(self.norm2(self.conv2(x)))


@register_model("airbench94", default_input=(3, 32, 32), default_num_classes=10)
class Airbench94(ImageClassifier):
    """airbench94 (Jordan 2024): 94% on CIFAR-10 in 3.29 s on an A100

    The network of the module docstring.

    Args:
        num_classes: outputs of the linear layer.
        in_channels: input channels (the whitening layer has ``2 * in_channels * 4`` filters).
        widths: output channels of the three blocks.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``, H and W at least 28 (the last block's
        maps must be at least 3x3 for the final pool).
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (64, 256, 256)
    ) -> None:
        super().__init__(num_classes, (in_channels, 32, 32))
        whiten_width = 2 * in_channels * WHITEN_KERNEL**2
        w1, w2, w3 = widths
        whiten = nn.Conv2d(in_channels, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        with torch.no_grad():
            nn.init.zeros_(whiten.bias)
            nn.init.dirac_(whiten.weight[:in_channels])  # until init_whitening sets them
        self.features = nn.Sequential(
            OrderedDict(
                [
                    # N x C x 32 x 32
                    ("whiten", whiten),
                    ("act", nn.GELU()),
                    # N x 24 x 31 x 31
                    ("block1", ConvGroup(whiten_width, w1)),
                    # N x 64 x 15 x 15
                    ("block2", ConvGroup(w1, w2)),
                    # N x 256 x 7 x 7
                    ("block3", ConvGroup(w2, w3)),
                    # N x 256 x 3 x 3
                    ("pool", nn.MaxPool2d(3)),
                    # N x 256 x 1 x 1
                ]
            )
        )
        self.classifier = nn.Sequential(nn.Flatten(), self._head(w3, num_classes))

    @staticmethod
    def _head(in_features: int, num_classes: int) -> nn.Linear:
        head = nn.Linear(in_features, num_classes, bias=False)
        with torch.no_grad():
            head.weight.mul_(LOGIT_SCALE)
        return head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[-1] = self._head(self.classifier[-1].in_features, num_classes)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images: the eigenvectors of
        their (uncentred) 2x2 patch covariance, each divided by the square root of its
        eigenvalue plus ``eps``, and their negatives (so GELU passes both signs).

        Shape:
            ``images``: ``(N, C, H, W)`` float, normalised as the network sees them.
        """
        weight = self.features.whiten.weight
        k = weight.shape[-1]
        c = images.shape[1]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)  # N x C x H' x W' x k x k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # P x (C k k)
        covariance = patches.T @ patches / len(patches)  # (C k k) x (C k k)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        filters = eigenvectors.T.reshape(c * k * k, c, k, k).flip(0)  # largest first
        filters = filters / torch.sqrt(eigenvalues.flip(0) + eps).view(-1, 1, 1, 1)
        weight.copy_(torch.cat((filters, -filters)).to(weight.dtype))
