"""LeNet-5 as seed 000 describes it: shapes and the per-layer parameter table."""

import pytest
import torch
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models import create_model


def _param_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_per_layer_parameters_match_seed_000():
    counts = [sum(p.numel() for p in m.parameters()) for m in _param_layers(create_model("lenet5"))]
    assert counts == [156, 2416, 48120, 10164, 850]
    # and they follow the seed's arithmetic, e.g. C1 = 5x5x1x6 + 6
    assert counts[0] == 5 * 5 * 1 * 6 + 6 and counts[2] == 5 * 5 * 16 * 120 + 120


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_variants_run_forward_and_backward(activation, pooling):
    model = create_model("lenet5", activation=activation, pooling=pooling)
    x = torch.randn(3, 1, 32, 32)
    shapes = []
    h = x
    for layer in model.features:
        h = layer(h)
        shapes.append(tuple(h.shape[1:]))
    assert (6, 28, 28) in shapes and (6, 14, 14) in shapes and (16, 10, 10) in shapes
    assert (16, 5, 5) in shapes and (120, 1, 1) in shapes
    out = model(x)
    out.sum().backward()
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.parameters())
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}[activation] in kinds
    assert {"max": "MaxPool2d", "avg": "AvgPool2d"}[pooling] in kinds


def test_reset_classifier():
    model = create_model("lenet5")
    model.reset_classifier(3)
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3)
    assert model.get_classifier().out_features == 3


def test_bad_activation_is_named():
    with pytest.raises(ModelError, match=r"expected activation in .*received activation='gelu'"):
        create_model("lenet5", activation="gelu")
