"""The Keras CIFAR-10 baseline of seed 003, layer for layer.

Keras ``model.summary()`` for it (seed 003, input 32x32x3)::

    conv2d (Conv2D)              456       5x5x3x6 + 6
    batch_normalization          24        4x6 (gamma, beta trainable; moving mean/var not)
    dense (Dense)                196736    (16x16x6)x128 + 128
    dense_1 (Dense)              1290      128x10 + 10
    Total params: 198,506   Trainable params: 198,494   Non-trainable params: 12

Keras details kept so the network behaves like the seed's: "same" padding, BatchNorm with
``epsilon=1e-3`` and ``momentum=0.99`` (PyTorch momentum ``0.01``), Glorot-uniform kernels and
zero biases. Keras's "same" 2x2/2 max pool is ``ceil_mode=True`` here (identical for even sizes,
and for odd sizes both keep the last, partial window). The softmax of the last Dense layer is
left to the loss (logits out), as everywhere in cnnlab.

Keras builds the Dense layer when it first sees data; here its input size is computed from
``input_size`` (default 32, pass 28 for MNIST-sized images).
"""

from __future__ import annotations

from torch import nn

from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model
from cnnlab.shapes import conv_output_size


@register_model("baseline", default_input=(3, 32, 32), default_num_classes=10)
class Baseline(ImageClassifier):
    """The Keras CNN tutorial's CIFAR-10 baseline: conv 6@5x5, BN, ReLU, max pool, dense 128.

    In full: conv 6@5x5 same, BN, ReLU, max-pool 2/2 same, dropout, flatten, dense 128,
    dropout, dense.

    Args:
        num_classes: outputs of the last layer.
        in_channels: input channels.
        input_size: input height and width (an int for square images).
        dropout: dropout probability of the two dropout layers.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)`` with ``(H, W) == input_size``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int | tuple[int, int] = 32,
        dropout: float = 0.2,
    ) -> None:
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        super().__init__(num_classes, (in_channels, h, w))
        pooled = conv_output_size(h, 2, 2, ceil_mode=True) * conv_output_size(
            w, 2, 2, ceil_mode=True
        )
        self.features = nn.Sequential(
            # N x C x 32 x 32
            nn.Conv2d(in_channels, 6, kernel_size=5, padding="same"),  # c1
            nn.BatchNorm2d(6, eps=1e-3, momentum=0.01),  # b1
            nn.ReLU(),  # a1
            nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True),  # p1
            nn.Dropout(dropout),  # d1
            # N x 6 x 16 x 16
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            # N x 1536
            nn.Linear(6 * pooled, 128),  # f1
            nn.ReLU(),
            nn.Dropout(dropout),  # d2
            nn.Linear(128, num_classes),  # f2
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
