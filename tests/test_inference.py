"""``eval_mode`` / ``module_mode``: every submodule's own train/eval flag comes back, even when
the block raises; and batched logits leave a mixed-mode model as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.data.preprocess import Preprocessing
from cnnlab.inference import compute_logits, eval_mode, module_mode
from cnnlab.models import create_model
from cnnlab.training.freezing import apply_freeze, backbone_layers, set_train_mode


def mixed_model() -> nn.Sequential:
    """A training model whose BatchNorm is in eval mode and whose nested block is mixed too."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(4)),
    ).train()
    model[1].eval()
    model[2][1].eval()
    return model


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_eval_mode_restores_mixed_flags_even_when_the_block_raises():
    model = mixed_model()
    before = flags(model)
    assert before == [True, True, False, True, True, False]
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model) as inside:
        assert inside is model and not any(flags(model))
        raise RuntimeError("inside")
    assert flags(model) == before


def test_eval_mode_really_evaluates():
    """Inside, BatchNorm uses its running statistics (left untouched) and Dropout is off."""
    model = mixed_model()
    model[1].eval().train()  # now training: it would update its statistics outside eval mode
    running = model[1].running_mean.clone()
    x = torch.randn(8, 1, 6, 6)
    with eval_mode(model), torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)  # no dropout
    assert torch.equal(model[1].running_mean, running)
    model(x)
    assert not torch.equal(model[1].running_mean, running)  # back in training mode


def test_module_mode_can_train_a_model_in_eval_mode_for_a_while():
    model = mixed_model().eval()
    model[2][0].train()
    before = flags(model)
    with pytest.raises(ValueError), module_mode(model, training=True):
        assert all(flags(model))
        raise ValueError
    assert flags(model) == before == [False, False, False, False, True, False]


def test_logits_and_backbone_tracing_keep_frozen_batchnorm_in_eval_mode():
    """A fine-tuning model: frozen BatchNorm stays in eval mode while the rest trains."""
    model = create_model("resnet20", num_classes=3, in_channels=1)
    apply_freeze(model, [n for n, _ in model.named_parameters() if n.startswith("bn1")])
    set_train_mode(model)
    before = flags(model)
    assert not model.bn1.training and model.layer1.training
    images = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    logits = compute_logits(model, images, Preprocessing((0.5,), (0.5,), (32, 32), (32, 32), 1))
    assert logits.shape == (2, 3)
    backbone_layers(model)
    assert flags(model) == before
