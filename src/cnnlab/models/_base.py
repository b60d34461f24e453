"""The interface every cnnlab model shares (timm style)."""

from __future__ import annotations

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses pass their classes and default input shape ``(C, H, W)`` to ``__init__``, build
    ``self.features`` and ``self.classifier`` (or override the two methods) and implement
    :meth:`reset_classifier`.

    Args:
        num_classes: outputs of the classifier.
        default_input_shape: ``(C, H, W)``, the input the architecture was designed for.
    """

    default_input_shape: tuple[int, int, int]
    num_classes: int
    #: Auxiliary logits of the last training-mode forward (GoogLeNet's side classifiers);
    #: empty for models without auxiliary heads and in eval mode. A training loop adds
    #: ``aux_loss_weight * loss(a, y)`` for each ``a`` in it.
    aux_outputs: tuple[torch.Tensor, ...] = ()
    aux_loss_weight: float = 0.0

    def __init__(self, num_classes: int, default_input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.default_input_shape = default_input_shape

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone. Shape: ``(N, C, H, W) -> features`` (model specific)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier head. Shape: ``features -> (N, num_classes)`` logits."""
        return self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: ``(N, C, H, W) -> (N, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last layer, the one :meth:`reset_classifier` replaces.

        The default serves models whose ``self.classifier`` is an ``nn.Sequential`` ending in
        an ``nn.Linear``; other heads override both methods.
        """
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer with a freshly initialised one for ``num_classes`` outputs."""
        self.num_classes = num_classes
        self.classifier[-1] = nn.Linear(self.classifier[-1].in_features, num_classes)


def aux_loss_weight(model: nn.Module) -> float:
    """Weight of the auxiliary classifiers' losses (GoogLeNet's 0.3; 0 for other models)."""
    return float(getattr(model, "aux_loss_weight", 0.0))


def classifier_names(model: nn.Module) -> list[str]:
    """Parameter names of the classifier layer that :meth:`reset_classifier` replaces."""
    head = {id(p) for p in model.get_classifier().parameters()}
    return [n for n, p in model.named_parameters() if id(p) in head]
