"""The small, fast MNIST network of tuomaso/train_mnist_fast, with optional BatchNorm.

T. Somerkoski (tuomaso), "Training a NN to 99% accuracy on MNIST in 0.76 seconds" (2021),
github.com/tuomaso/train_mnist_fast, ``8_Final_00s76.ipynb``::

    N x 1 x 28 x 28
    conv 5x5, 24 filters; max pool 2; ReLU          N x 24 x 12 x 12
    conv 3x3, 32 filters; max pool 2; ReLU          N x 32 x 5 x 5
    flatten; fc 256; ReLU                           N x 256
    fc 10                                           N x 10

The max pools come before the ReLUs, as in the reference (the same function, a quarter of the
ReLU work). ``batch_norm=True`` (the ``mnist-fast`` and ``mnist-99.5`` recipes) puts a
BatchNorm after each pool, on the pooled map (a quarter of the work of normalising the
convolution's output), and drops the convolutions' biases, which BatchNorm cancels. The
reference ends in ``log_softmax``; here the network returns logits, as every cnnlab model does
(cross-entropy of logits is NLL of log-softmax, the same loss).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model


def _stage(
    in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool
) -> list[tuple[str, nn.Module]]:
    """conv, max pool 2, [BatchNorm], ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=not batch_norm)
    layers: list[tuple[str, nn.Module]] = [("conv", conv), ("pool", nn.MaxPool2d(2))]
    if batch_norm:
        layers.append(("norm", nn.BatchNorm2d(out_channels)))
    return [*layers, ("relu", nn.ReLU(inplace=True))]


@register_model("mnistnet", default_input=(1, 28, 28), default_num_classes=10)
class MnistNet(ImageClassifier):
    """tuomaso/train_mnist_fast's net: conv 5x5 24, conv 3x3 32, fc 256 (+BatchNorm)

    The network of the module docstring.

    Args:
        num_classes: outputs of the last layer.
        in_channels: input channels (1 for MNIST).
        widths: filters of the two convolutions.
        hidden: units of the hidden fully connected layer.
        batch_norm: BatchNorm after each pooled convolution.

    Shape:
        ``(N, in_channels, 28, 28) -> (N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: Sequence[int] = (24, 32),
        hidden: int = 256,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(num_classes, (in_channels, 28, 28))
        widths = tuple(widths)
        if len(widths) != 2 or min(widths) < 1 or hidden < 1:
            raise ModelError(
                f"expected two widths >= 1 and hidden >= 1, received widths={widths}, "
                f"hidden={hidden}"
            )
        w1, w2 = widths
        stage1 = [(f"{name}1", layer) for name, layer in _stage(in_channels, w1, 5, batch_norm)]
        stage2 = [(f"{name}2", layer) for name, layer in _stage(w1, w2, 3, batch_norm)]
        self.features = nn.Sequential(
            OrderedDict(
                [
                    # N x C x 28 x 28
                    *stage1,
                    # N x w1 x 12 x 12
                    *stage2,
                    # N x w2 x 5 x 5
                    ("flatten", nn.Flatten()),
                    # N x (w2 * 25)
                ]
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("fc1", nn.Linear(w2 * 5 * 5, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("fc2", nn.Linear(hidden, num_classes)),
                ]
            )
        )
