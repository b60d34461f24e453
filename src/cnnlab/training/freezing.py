"""Freezing parts of a network for transfer learning.

A freeze spec names what stops learning (``requires_grad=False``):

- ``none``: nothing (full fine-tuning);
- ``all``: the whole backbone, i.e. every layer :meth:`forward_features` runs; the head trains;
- ``N``: the first N layers that have parameters, in ``cnnlab summary`` order
  (``1`` on LeNet-5 freezes C1, its first conv block);
- ``up-to:LAYER``: every layer up to and including LAYER (a name from ``cnnlab summary``);
- ``head-only``: everything except the classifier layer (:meth:`get_classifier`), which is
  seed 002's recipe for very small data: train only your own softmax.

Frozen BatchNorm layers stay in eval mode while the rest trains (:func:`set_train_mode`), so
their running statistics are not updated by the new data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from cnnlab.errors import ConfigError
from cnnlab.inference import eval_mode

SIMPLE_SPECS = ("none", "all", "head-only")


def layer_names(model: nn.Module) -> list[str]:
    """Names of the leaf modules, in registration order (the rows of ``cnnlab summary``)."""
    return [name for name, m in model.named_modules() if name and not list(m.children())]


def _own_params(model: nn.Module, prefix: str) -> list[str]:
    module = model.get_submodule(prefix)
    return [f"{prefix}.{n}" for n, _ in module.named_parameters()]


def backbone_layers(model: nn.Module) -> list[str]:
    """The leaf layers :meth:`forward_features` runs (found by running it on a zero input of
    the model's default shape, in eval mode, with forward hooks)."""
    called: list[str] = []
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: called.append(name))
        for name, module in model.named_modules()
        if name and not list(module.children())
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model.forward_features(torch.zeros(1, *model.default_input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return [n for n in layer_names(model) if n in set(called)]


def parse_freeze(spec: str) -> str:
    """Check the syntax of a freeze spec (its layer, if any, is checked by :func:`frozen_names`).

    Raises:
        ConfigError: not one of the accepted forms.
    """
    spec = str(spec)
    if spec in SIMPLE_SPECS or spec.isdigit() or (spec.startswith("up-to:") and len(spec) > 6):
        return spec
    raise ConfigError(
        f"expected freeze all, none, head-only, a number of layers N or up-to:LAYER, "
        f"received freeze={spec!r}"
    )


def frozen_names(model: nn.Module, spec: str) -> list[str]:
    """The parameter names ``spec`` freezes, in ``named_parameters`` order.

    Raises:
        ConfigError: a bad spec, more layers than the model has, or a LAYER that is not one of
            the model's layers (the message lists them).
    """
    spec = parse_freeze(spec)
    leaves = layer_names(model)
    if spec == "none":
        layers: list[str] = []
    elif spec == "all":
        layers = backbone_layers(model)
    elif spec == "head-only":
        head = {id(p) for p in model.get_classifier().parameters()}
        return [n for n, p in model.named_parameters() if id(p) not in head]
    elif spec.isdigit():
        with_params = [n for n in leaves if _own_params(model, n)]
        if int(spec) > len(with_params):
            raise ConfigError(
                f"expected freeze N from 0 to {len(with_params)} (layers with parameters: "
                f"{', '.join(with_params)}), received freeze={spec}"
            )
        layers = with_params[: int(spec)]
    else:
        target = spec[len("up-to:") :]
        if target not in leaves:
            raise ConfigError(
                f"expected up-to:LAYER with one of the layers {', '.join(leaves)}, "
                f"received freeze={spec!r}"
            )
        layers = leaves[: leaves.index(target) + 1]
    wanted = {n for layer in layers for n in _own_params(model, layer)}
    return [n for n, _ in model.named_parameters() if n in wanted]


def apply_freeze(model: nn.Module, names: Sequence[str]) -> None:
    """Set ``requires_grad=False`` on the parameters ``names`` (and True on all others).

    Raises:
        ConfigError: a name that is not a parameter of ``model``.
    """
    params = dict(model.named_parameters())
    unknown = sorted(set(names) - set(params))
    if unknown:
        raise ConfigError(f"expected parameter names of the model, received frozen={unknown}")
    frozen = set(names)
    for name, p in params.items():
        p.requires_grad_(name not in frozen)


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, but BatchNorm layers whose parameters are all frozen stay in eval
    mode (their running statistics keep the pre-trained values)."""
    model.train()
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, _BatchNorm) and params and not any(p.requires_grad for p in params):
            module.eval()
    return model


def param_groups(model: nn.Module, lr: float, lr_backbone: float | None) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters: one group at ``lr``, or with
    ``lr_backbone`` the head first (its lr is the one logged) and the trainable backbone
    layers second, at ``lr_backbone``."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if lr_backbone is None:
        return [{"params": [p for _, p in trainable], "lr": lr}]
    backbone = {n for layer in backbone_layers(model) for n in _own_params(model, layer)}
    head = [p for n, p in trainable if n not in backbone]
    body = [p for n, p in trainable if n in backbone]
    return [
        g for g in ({"params": head, "lr": lr}, {"params": body, "lr": lr_backbone}) if g["params"]
    ]
