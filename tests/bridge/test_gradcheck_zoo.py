"""``cnnlab gradcheck`` is trustworthy: every registered model passes at its documented size on
five seeds (weights, input and checked elements all follow the seed), a run is reproduced by
its seed, differences that cross a ReLU or max-pool kink are retried or left out and counted,
and a failure names its tensor, element, both values and whether a kink was near.

The sizes (docs/numpy-engine.md, "Gradient check"): each model at a small square input it takes
(:data:`SIDE`), batch 2 (:data:`BATCH`), two random parameter tensors and the input, one element
each. The networks above 20M weights are checked on one seed each (:data:`HEAVY`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from cnnlab.bridge.gradcheck import check_gradients
from cnnlab.models import get_model_entry
from cnnlab.scratch import nn as snn
from cnnlab.scratch.gradcheck import gradcheck, gradcheck_module
from zoo_inputs import HEAVY, zoo_models

SEEDS = range(5)
#: Input side per model: the smallest the stem takes (alexnet 63, nin 39, airbench 25, VGG 32),
#: the fixed size of the LeNets, mnistnet and the Keras baseline, 16 for GoogLeNet and the
#: ImageNet ResNets (1x1 maps in their last stages), 8 for the CIFAR ResNets. ResNet-18 at 16x16
#: with 2 images fails on seed 0 (BatchNorm over two values: gradients of 7e3, where a 1e-6
#: step is no longer small); at 32x32 with 4 images it passes.
SIDE = {
    "airbench94": 25, "alexnet": 63, "baseline": 32, "googlenet": 16, "lenet5": 32,
    "lenet5-paddle": 28, "mnistnet": 28, "nin": 39, "resnet18": 32, "resnet34": 16, "resnet50": 16,
    "resnet101": 16, "resnet152": 16, "resnet20": 8, "resnet32": 8, "resnet56": 8,
}  # fmt: skip
VGG_SIDE = 32
BATCH = {"resnet18": 4}
MAX_TENSORS, MAX_ELEMENTS = 2, 1


def documented_input(name: str) -> tuple[int, int, int]:
    channels = get_model_entry(name).default_input[0]
    side = SIDE.get(name, VGG_SIDE)
    return channels, side, side


def seeds_of(name: str) -> list[int]:
    """All five seeds; one for a HEAVY model (zoo_inputs), whose check costs 10-15 s on 2 cores,
    most of it building and converting the network, taken in turn from :data:`SEEDS` so that
    the heavy models together still cover all five."""
    if name not in HEAVY:
        return list(SEEDS)
    return [SEEDS[HEAVY.index(name) % len(SEEDS)]]


@pytest.mark.parametrize("name", zoo_models())
def test_every_zoo_model_passes_on_five_seeds(name: str) -> None:
    for seed in seeds_of(name):
        report = check_gradients(
            name,
            documented_input(name),
            batch=BATCH.get(name, 2),
            num_classes=5,
            max_tensors=MAX_TENSORS,
            max_elements=MAX_ELEMENTS,
            seed=seed,
        )
        assert report.passed, "\n".join(report.lines())
        assert len(report.result.tensors) == MAX_TENSORS + 1 and "input" in report.result.tensors


def test_a_seed_reproduces_a_check_and_seeds_the_weights() -> None:
    before = torch.get_rng_state()
    options = {"max_tensors": 2, "max_elements": 2}
    first = check_gradients("lenet5", seed=3, **options).to_dict()
    again = check_gradients("lenet5", seed=3, **options).to_dict()
    other = check_gradients("lenet5", seed=4, **options).to_dict()
    assert first == again  # weights, input, projection, tensors and elements: all seeded
    worst = [t["worst"]["analytic"] for t in first["tensors"]]
    assert worst != [t["worst"]["analytic"] for t in other["tensors"]]
    assert torch.equal(torch.get_rng_state(), before)  # the caller's generator is untouched


def _relu_at_kinks() -> tuple[snn.ReLU, np.ndarray]:
    """Inputs of a ReLU: most far from 0, some within the step (5e-7, crossed by 1e-6 but not
    by 1e-7) and some exactly at 0 (crossed by every step)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    x += np.sign(x) * 0.1
    flat = x.reshape(-1)
    flat[:5] = 5e-7
    flat[5:8] = 0.0
    return snn.ReLU(), x


def test_kink_crossings_are_retried_with_a_smaller_step_or_left_out() -> None:
    relu, x = _relu_at_kinks()
    result = gradcheck_module(relu, x, eps=1e-6)
    check = result.tensors["input"]
    assert result.passed and check.retried == 5 and check.skipped == 3
    assert check.checked == x.size - 3
    # the same differences without the kink watch: half slopes, a failed check
    module, data = _relu_at_kinks()
    out = module.forward(data)
    projection = np.random.default_rng(0).standard_normal(out.shape)
    grad = module.backward(projection)
    blind = gradcheck(
        lambda: float(np.sum(module.forward(data) * projection)), {"input": data}, {"input": grad}
    )
    assert not blind.passed


def test_max_pool_ties_are_detected() -> None:
    x = np.zeros((1, 1, 4, 4))  # every window a tie: any step changes the winner
    x[0, 0, 0, 0] = 1.0
    result = gradcheck_module(snn.MaxPool2d(2), x)
    check = result.tensors["input"]
    assert result.passed and check.skipped >= 12  # the tied zeros of the three flat windows


def test_a_failure_explains_itself_and_lines_come_as_tensors_finish(capsys, monkeypatch) -> None:
    wrong = snn.Tanh.backward
    monkeypatch.setattr(
        snn.Tanh, "backward", lambda self, g, needs_input_grad=True: 2 * wrong(self, g)
    )
    status, out, _ = run_cli(capsys, "gradcheck", "tanh", "--seed", "2")
    lines = out.splitlines()
    assert status == 1 and lines[0].startswith("[1/1] input  rel") and lines[0].endswith("FAIL")
    assert lines[1].startswith("    worst element input[")
    assert "numerical" in lines[1] and "analytic" in lines[1]
    assert "no ReLU or max-pool kink within 10x the step" in lines[1]
    numerical = float(lines[1].split("numerical ")[1].split(",")[0])
    analytic = float(lines[1].split("analytic ")[1].split(" ")[0])
    assert analytic == pytest.approx(2 * numerical, rel=1e-6)  # the doubled gradient
    assert lines[-1].startswith("gradcheck tanh input 2x3x7x7 seed 2: FAILED (1 tensors)")
    monkeypatch.undo()
    seen: list[tuple[str, int, int]] = []
    report = check_gradients(
        "lenet5",
        max_tensors=3,
        max_elements=1,
        on_tensor=lambda check, passed, k, total: seen.append((check.name, k, total)),
    )
    assert [(name, k, total) for name, k, total in seen] == [
        (name, k, 4) for k, name in enumerate(report.result.tensors, 1)
    ]
    status, out, err = run_cli(capsys, "gradcheck", "relu", "--json")
    doc = json.loads(out)  # stdout holds only the document (stderr is no terminal: no lines)
    assert status == 0 and doc["passed"] and doc["seed"] == 0 and "skipped_elements" in doc
    assert doc["tensors"][0]["worst"]["index"] and "[1/1]" not in err
