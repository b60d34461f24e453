"""Tests generated from the registry: every model is built, run forward and backward, checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.analysis import check_input
from cnnlab.errors import ModelError
from cnnlab.models import create_model, get_model_entry, list_models
from cnnlab.models._base import ImageClassifier
from zoo_inputs import HEAVY, small_input, zoo_models

ALL_MODELS = list_models()


# For HEAVY models backward runs to the input only: the weight gradients of VGG's 100M-weight
# classifier would dominate the test time without testing anything more.
@pytest.mark.parametrize("name", zoo_models())
def test_forward_backward_reset(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).train()
    assert isinstance(model, ImageClassifier)
    shape = small_input(name)
    x = torch.randn(2, *shape, requires_grad=True)

    out = model(x)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    loss = out.logsumexp(1).mean() + sum(a.logsumexp(1).mean() for a in model.aux_outputs)
    if name in HEAVY:
        (grad,) = torch.autograd.grad(loss, x)
    else:
        loss.backward()
        grad = x.grad
        for p in model.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0

    model.reset_classifier(7)
    assert model.num_classes == 7
    assert check_input(model, shape) == (7,)
    head = model.get_classifier()
    assert (getattr(head, "out_features", None) or head.out_channels) == 7


@pytest.mark.parametrize("name", ALL_MODELS)
def test_default_input_shape_pass(name: str) -> None:
    """At the default input (224x224 for ImageNet nets) the shape pass gives the logits shape."""
    entry = get_model_entry(name)
    assert check_input(name, entry.default_input) == (entry.default_num_classes,)
    with torch.device("meta"):
        model = create_model(name)
    assert tuple(model.default_input_shape) == entry.default_input
    assert model.num_classes == entry.default_num_classes


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("lenet5-paddle", (1, 28, 28)),
        ("lenet5", (1, 32, 32)),
        ("baseline", (3, 32, 32)),
        ("resnet20", (1, 28, 28)),
        ("resnet18", (1, 28, 28)),
        ("googlenet", (1, 28, 28)),
        ("vgg11", (3, 32, 32)),
        ("resnet50", (3, 32, 32)),
    ],
)
def test_dataset_sizes(name: str, shape: tuple[int, int, int]) -> None:
    """MNIST- and CIFAR-sized inputs work where the architecture allows."""
    assert check_input(name, shape)[0] == get_model_entry(name).default_num_classes


@pytest.mark.parametrize(
    ("name", "shape", "layer", "arithmetic", "smallest"),
    [
        ("alexnet", (3, 32, 32), "features.12", "(1 - 3 + 2*0)/2 + 1 = 0", "3x63x63"),
        ("vgg16", (1, 28, 28), "features.30", "floor((1 - 2 + 2*0)/2) + 1 = 0", "1x32x32"),
        ("nin", (3, 32, 32), "features.5", "(1 - 3 + 2*0)/2 + 1 = 0", "3x39x39"),
        ("lenet5", (1, 28, 28), "features.6", "(4 - 5 + 2*0)/1 + 1 = 0", "1x32x32"),
    ],
)
def test_input_too_small_names_layer_and_arithmetic(
    name: str, shape: tuple[int, int, int], layer: str, arithmetic: str, smallest: str
) -> None:
    with pytest.raises(ModelError) as info:
        check_input(name, shape)
    message = str(info.value)
    assert "\n" not in message
    assert layer in message and arithmetic in message and smallest in message
    assert f"received input_shape={shape}" in message
    # ... and the smallest size it names is the smallest that works
    size = int(smallest.split("x")[-1])
    check_input(name, (shape[0], size, size))
    with pytest.raises(ModelError, match="input too small"):
        check_input(name, (shape[0], size - 1, size - 1))


def test_baseline_sized_for_other_inputs() -> None:
    with pytest.raises(ModelError, match="expected 1536 input features, received 1176"):
        check_input("baseline", (1, 28, 28))
    assert create_model("baseline", in_channels=1, input_size=28)(
        torch.zeros(2, 1, 28, 28)
    ).shape == (2, 10)


def test_lenet5_paddle_reproduces_seed_001_shapes() -> None:
    """Seed 001 prints the output and weight shapes of each conv / pool / fc for a batch of 3."""
    model = create_model("lenet5-paddle")
    seen: list[tuple[str, list[int]]] = []
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.Linear)
    for m in model.modules():
        if isinstance(m, kinds):
            m.register_forward_hook(
                lambda mod, _i, out: seen.append((type(mod).__name__, list(out.shape)))
            )
    model(torch.randn(3, 1, 28, 28))
    assert seen == [
        ("Conv2d", [3, 6, 24, 24]),
        ("MaxPool2d", [3, 6, 12, 12]),
        ("Conv2d", [3, 16, 8, 8]),
        ("MaxPool2d", [3, 16, 4, 4]),
        ("Conv2d", [3, 120, 1, 1]),
        ("Linear", [3, 64]),
        ("Linear", [3, 10]),
    ]
    weights = [
        tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    # seed 001 (Paddle stores Linear weights as in x out; PyTorch as out x in)
    assert weights == [(6, 1, 5, 5), (16, 6, 5, 5), (120, 16, 4, 4), (64, 120), (10, 64)]
    assert all(
        isinstance(m, nn.Sigmoid) for m in model.modules() if isinstance(m, nn.Sigmoid | nn.ReLU)
    )


def test_googlenet_aux_classifiers_only_in_training() -> None:
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=4)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    out = model(x)
    assert out.shape == (2, 4)
    assert len(model.aux_outputs) == 2 and all(a.shape == (2, 4) for a in model.aux_outputs)
    assert model.aux_loss_weight == pytest.approx(0.3)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 4)
    assert model.aux_outputs == ()
    model.reset_classifier(3)
    model.train()
    model(x)
    assert all(a.shape == (2, 3) for a in model.aux_outputs)
    with torch.device("meta"):
        plain = create_model("googlenet", aux_logits=False).train()
    plain(x.to("meta"))
    assert plain.aux_outputs == ()


def test_cifar_resnet_shortcut_options() -> None:
    a = create_model("resnet20")
    b = create_model("resnet20", shortcut="B")
    x = torch.randn(2, 3, 32, 32)
    assert a(x).shape == b(x).shape == (2, 10)
    # option B adds two 1x1 projections + BN: 16*32 + 2*32 and 32*64 + 2*64 weights
    assert sum(p.numel() for p in b.parameters()) - sum(p.numel() for p in a.parameters()) == (
        16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    )
    with pytest.raises(ModelError, match="expected shortcut 'A' or 'B', received shortcut='C'"):
        create_model("resnet20", shortcut="C")
