"""Numerical gradient checks (float64 central differences) of every layer and a small net."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.scratch import functional as F
from cnnlab.scratch import gradcheck, gradcheck_module
from cnnlab.scratch import nn as snn


def layer_cases() -> dict[str, tuple[snn.Module, tuple[int, ...]]]:
    rng = np.random.default_rng(0)
    return {
        "conv": (
            snn.Conv2d(4, 4, 3, stride=2, padding=1, dilation=1, groups=2, rng=rng),
            (2, 4, 6, 5),
        ),
        "conv-same-dilated": (
            snn.Conv2d(2, 3, (2, 3), padding="same", dilation=2, rng=rng),
            (2, 2, 5, 6),
        ),
        "linear": (snn.Linear(5, 3, rng=rng), (4, 5)),
        "batchnorm2d": (snn.BatchNorm2d(3), (4, 3, 3, 3)),
        "batchnorm1d": (snn.BatchNorm1d(3), (5, 3)),
        "maxpool": (snn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 2, 7, 6)),
        "avgpool": (
            snn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
            (2, 2, 7, 6),
        ),
        "adaptive": (snn.AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5)),
        "lrn": (snn.LocalResponseNorm(3, alpha=0.1, k=1.5), (2, 5, 3, 3)),
        "sigmoid": (snn.Sigmoid(), (3, 4)),
        "tanh": (snn.Tanh(), (3, 4)),
        "gelu": (snn.GELU(), (3, 4)),
        "gelu_tanh": (snn.GELU("tanh"), (3, 4)),
        "leaky_relu": (snn.LeakyReLU(0.1), (3, 4)),
        "relu": (snn.ReLU(), (3, 4)),
    }


CASES = layer_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_layer_passes_gradcheck(name: str) -> None:
    layer, shape = CASES[name]
    x = np.random.default_rng(1).standard_normal(shape)
    if name in {"relu", "leaky_relu"}:
        x += np.sign(x) * 0.1  # keep central differences away from the kink
    result = gradcheck_module(layer, x, tolerance=1e-7)
    assert result.passed, result
    assert "input" in result.errors


def test_small_network_passes_gradcheck_on_a_sample_of_elements() -> None:
    rng = np.random.default_rng(2)
    model = snn.Sequential(
        snn.Conv2d(1, 3, 3, padding=1, rng=rng),
        snn.BatchNorm2d(3),
        snn.Tanh(),
        snn.AvgPool2d(2),
        snn.Flatten(),
        snn.Linear(12, 4, rng=rng),
    )
    result = gradcheck_module(model, rng.standard_normal((3, 1, 4, 4)), max_elements=10)
    assert result.passed, result
    assert result.checked_elements["0.weight"] == 10
    assert set(result.errors) == {
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "5.weight",
        "5.bias",
        "input",
    }


def test_gradcheck_of_cross_entropy_with_smoothing() -> None:
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    _, cache = F.cross_entropy(logits, target, 0.2)
    result = gradcheck(
        lambda: F.cross_entropy(logits, target, 0.2)[0],
        {"logits": logits},
        {"logits": F.cross_entropy_backward(cache)},
    )
    assert result.passed, result


def test_gradcheck_catches_a_wrong_gradient() -> None:
    x = np.random.default_rng(4).standard_normal(6)
    result = gradcheck(lambda: float(np.sum(x**3)), {"x": x}, {"x": 3 * x**2 + 1e-3})
    assert not result.passed
    assert result.errors["x"] > 1e-6
    assert "FAIL" in repr(result)


def test_gradcheck_requires_float64() -> None:
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda: 0.0, {"x": np.zeros(2, np.float32)}, {"x": np.zeros(2)})


def test_gradcheck_module_restores_running_stats() -> None:
    bn = snn.BatchNorm2d(2)
    before = bn.state_dict()
    gradcheck_module(bn, np.random.default_rng(5).standard_normal((3, 2, 2, 2)))
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
