"""The model registry: ``@register_model``, ``create_model`` and ``list_models``.

A model is registered by decorating a factory ``f(num_classes, in_channels, **kw) ->
nn.Module``: the model class itself where its constructor is the factory (``@register_model``
above ``class LeNet5``), else a function (a variant of a family: ``resnet18``). Registration
is strict (a duplicate name raises), lookups of unknown names suggest close matches, and every
model built through :func:`create_model` remembers the name and keyword arguments it was built
from, so a checkpoint can rebuild it without executing code.

This module imports no model (it sits below the zoo): look models up through
:mod:`cnnlab.models` (or the public ``cnnlab.create_model``), which registers every family first.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.errors import ModelError

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model.

    Attributes:
        name: the registered name, e.g. ``"lenet5"``.
        factory: builds the model; takes ``num_classes``, ``in_channels`` and model options.
        default_input: the input shape ``(C, H, W)`` the architecture was designed for.
        default_num_classes: classes of the paper's head.
        description: one line for ``cnnlab models``.
    """

    name: str
    factory: ModelFactory
    default_input: tuple[int, int, int]
    default_num_classes: int
    description: str
    options: tuple[str, ...] = field(default=())


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    default_input: tuple[int, int, int],
    default_num_classes: int = 1000,
    description: str = "",
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering a model factory (a class or a function) under ``name``; its
    options are the factory's parameters other than ``num_classes`` and ``in_channels``, its
    description the first line of its docstring unless ``description`` is given.

    Raises:
        ValueError: ``name`` is already registered (a programming error, not a user error).
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        params = inspect.signature(factory).parameters
        options = tuple(p for p in params if p not in ("num_classes", "in_channels"))
        doc = description or (inspect.getdoc(factory) or "").split("\n")[0]
        _REGISTRY[name] = ModelEntry(
            name, factory, tuple(default_input), default_num_classes, doc, options
        )
        return factory

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``.

    Raises:
        ModelError: unknown name; the message suggests close names.
    """
    if name not in _REGISTRY:
        _not_a_name(name)
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        known = ", ".join(sorted(_REGISTRY))
        raise ModelError(f"unknown model {name!r}{hint}; expected one of: {known}")
    return _REGISTRY[name]


def _not_a_name(name: str) -> None:
    """A clearer error for a run or a Python file given where a model name is expected.

    Raises:
        ModelError: ``name`` is a run directory, a checkpoint or a ``.py`` file.
    """
    path = Path(name)
    if (path / "config.json").is_file() or (path.suffix == ".safetensors" and path.is_file()):
        what = "a run directory" if path.is_dir() else "a checkpoint"
        raise ModelError(
            f"expected a model name (see `cnnlab models`), received {name}, {what}: continue "
            f"it with `cnnlab train --resume {name}`, or reuse its weights on other data with "
            f"`cnnlab finetune {name} --data DATA --out DIR`"
        )
    if path.suffix == ".py":
        raise ModelError(
            f"expected FILE.py:CALLABLE (the function in {name} that returns the nn.Module, "
            f"e.g. {name}:build), received {name} without :CALLABLE"
        )


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a registered name (see :func:`list_models`).
        num_classes: size of the classifier output; defaults to the paper's.
        in_channels: input channels; defaults to the model's default input.
        **kwargs: model options (e.g. ``activation="tanh"`` for ``lenet5``).

    Returns:
        The model, with ``model.cnnlab_spec = {"name", "num_classes", "in_channels",
        "kwargs"}`` recording how to build it again.

    Raises:
        ModelError: unknown model, unknown option or an option value the model rejects.
    """
    entry = get_model_entry(name)
    num_classes = entry.default_num_classes if num_classes is None else int(num_classes)
    in_channels = entry.default_input[0] if in_channels is None else int(in_channels)
    unknown = sorted(set(kwargs) - set(entry.options))
    if unknown:
        raise ModelError(
            f"unknown option {unknown[0]!r} for model {name!r}; "
            f"expected one of: {', '.join(entry.options) or '(none)'}"
        )
    if num_classes < 1 or in_channels < 1:
        raise ModelError(
            f"expected num_classes >= 1 and in_channels >= 1, received "
            f"num_classes={num_classes}, in_channels={in_channels}"
        )
    model = entry.factory(num_classes=num_classes, in_channels=in_channels, **kwargs)
    model.cnnlab_spec = {
        "name": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "kwargs": dict(kwargs),
    }
    return model
