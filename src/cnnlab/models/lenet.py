"""LeNet-5 (LeCun et al., 1998), as seed 000 describes it.

Input 32x32x1. MNIST's 28x28 digits are zero-padded to 32x32 as in the paper; that padding is
done by the data pipeline (``cnnlab.data.preprocess.Preprocessor``, ``pad_to``), on the raw
pixels before normalisation, so the model itself always sees 32x32.

Layer        output      parameters
C1 conv 5x5  6x28x28     5x5x1x6 + 6     = 156
S2 pool 2x2  6x14x14     0
C3 conv 5x5  16x10x10    5x5x6x16 + 16   = 2416
S4 pool 2x2  16x5x5      0
C5 conv 5x5  120x1x1     5x5x16x120 + 120 = 48120
F6 linear    84          120x84 + 84     = 10164
output       10          84x10 + 10      = 850

Known deviations from the paper (as every modern re-implementation makes them): C3 connects to
all six S2 maps (the paper used a hand-made partial connection table, 1516 weights), S2/S4 are
plain average or max pooling (the paper's sub-sampling had a trainable coefficient and bias per
map), and the output is a linear layer with softmax cross-entropy (the paper used Euclidean
RBF units). The parameter counts above are the ones of seed 000, which makes the same choices.
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models._base import ImageClassifier
from cnnlab.registry import register_model

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
POOLINGS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def _choose(table: dict[str, type[nn.Module]], kind: str, value: str) -> type[nn.Module]:
    if value not in table:
        raise ModelError(f"expected {kind} in {sorted(table)}, received {kind}={value!r}")
    return table[value]


@register_model("lenet5", default_input=(1, 32, 32), default_num_classes=10)
class LeNet5(ImageClassifier):
    """LeNet-5 (LeCun 1998): conv 6@5x5, pool, conv 16@5x5, pool, conv 120@5x5, fc 84, fc.

    With a choice of activation and pooling.

    Args:
        num_classes: outputs of the last layer.
        in_channels: input channels (1 for MNIST).
        activation: ``"relu"`` (default), or the classic ``"tanh"`` / ``"sigmoid"``.
        pooling: ``"max"`` (default) or the classic ``"avg"``.

    Shape:
        ``(N, in_channels, 32, 32) -> (N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "relu",
        pooling: str = "max",
    ) -> None:
        super().__init__(num_classes, (in_channels, 32, 32))
        act = _choose(ACTIVATIONS, "activation", activation)
        pool = _choose(POOLINGS, "pooling", pooling)
        self.features = nn.Sequential(
            # N x C x 32 x 32
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1
            act(),
            pool(kernel_size=2, stride=2),  # S2
            # N x 6 x 14 x 14
            nn.Conv2d(6, 16, kernel_size=5),  # C3
            act(),
            pool(kernel_size=2, stride=2),  # S4
            # N x 16 x 5 x 5
            nn.Conv2d(16, 120, kernel_size=5),  # C5: a 5x5 conv on a 5x5 map, i.e. fully connected
            act(),
            # N x 120 x 1 x 1
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(120, 84),  # F6
            act(),
            nn.Linear(84, num_classes),  # output
        )


@register_model("lenet5-paddle", default_input=(1, 28, 28), default_num_classes=10)
class LeNet5Paddle(ImageClassifier):
    """The PaddlePaddle tutorial's LeNet (28x28, sigmoid): conv 6@5, pool, conv 16@5, conv 120@4.

    The LeNet variant of seed 001 (PaddlePaddle tutorial) for 28x28 MNIST digits:
    conv 6@5x5, max pool 2, conv 16@5x5, max pool 2, conv 120@4x4, fc 64, fc classes, with
    sigmoid activations. The seed prints, for a batch of 3 inputs of 1x28x28::

        conv2d_0 [3, 6, 24, 24]   pool2d_0 [3, 6, 12, 12]
        conv2d_1 [3, 16, 8, 8]    pool2d_1 [3, 16, 4, 4]
        conv2d_2 [3, 120, 1, 1]   linear_0 [3, 64]   linear_1 [3, 10]

    Deviation from the seed's code: its ``forward`` applies the second sigmoid after the first
    pool (so the first maps go through sigmoid twice) and none after conv2 and conv3, contrary
    to its own comment ("every conv layer uses a sigmoid, followed by a 2x2 pool"); we follow the
    comment. Shapes and parameter counts are unaffected.

    Args:
        num_classes: outputs of the last layer.
        in_channels: input channels (1 for MNIST).
        activation: ``"sigmoid"`` (default, as the seed), ``"relu"`` or ``"tanh"``.

    Shape:
        ``(N, in_channels, 28, 28) -> (N, num_classes)``.
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, activation: str = "sigmoid"
    ) -> None:
        super().__init__(num_classes, (in_channels, 28, 28))
        act = _choose(ACTIVATIONS, "activation", activation)
        self.features = nn.Sequential(
            # N x C x 28 x 28
            nn.Conv2d(in_channels, 6, kernel_size=5),
            act(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # N x 6 x 12 x 12
            nn.Conv2d(6, 16, kernel_size=5),
            act(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # N x 16 x 4 x 4
            nn.Conv2d(16, 120, kernel_size=4),
            act(),
            # N x 120 x 1 x 1
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(120, 64),
            act(),
            nn.Linear(64, num_classes),
        )
