"""Where a model comes from: a registered name, a ``path/to/file.py:callable`` or a module."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.analysis.torch_calls import FunctionWatcher
from cnnlab.errors import ModelError, expected
from cnnlab.models import create_model, get_model_entry

_INIT_FUNCTIONS = {
    nn.init.uniform_, nn.init.normal_, nn.init.trunc_normal_, nn.init.constant_, nn.init.ones_,
    nn.init.zeros_, nn.init.eye_, nn.init.dirac_, nn.init.xavier_uniform_,
    nn.init.xavier_normal_, nn.init.kaiming_uniform_, nn.init.kaiming_normal_,
    nn.init.orthogonal_, nn.init.sparse_, torch.Tensor.normal_, torch.Tensor.uniform_,
}  # fmt: skip


class _SkipMetaInit(FunctionWatcher):
    """Skip weight initialisation of meta tensors: there are no values to set, and torch's
    first ``normal_`` on meta imports its decompositions and sympy (most of a second)."""

    def handle(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        first = args[0] if args else kwargs.get("tensor")
        if func in _INIT_FUNCTIONS and isinstance(first, torch.Tensor) and first.is_meta:
            return first
        return func(*args, **kwargs)


def build_uninitialised(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model with uninitialised CPU weights, for shape analysis only.

    The model is built on the ``meta`` device without initialisation, then given empty CPU
    storage: memory is reserved but never written, so even VGG-16 is built in milliseconds.
    """
    with torch.device("meta"), _SkipMetaInit():
        model = create_model(name, num_classes, in_channels, **kwargs)
    return _empty_storage(model)


def _empty_storage(model: nn.Module) -> nn.Module:
    """Replace meta parameters and buffers by uninitialised CPU tensors, keeping ties.

    (``Module.to_empty`` would do, but its ``empty_like`` of a meta tensor triggers the same
    slow import as any meta kernel.)
    """
    made: dict[int, torch.Tensor] = {}  # id of a meta tensor -> its CPU replacement
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if id(p) not in made:
                empty = torch.empty(p.shape, dtype=p.dtype)
                made[id(p)] = nn.Parameter(empty, requires_grad=p.requires_grad)
            setattr(module, name, made[id(p)])
        for name, b in list(module.named_buffers(recurse=False)):
            if id(b) not in made:
                made[id(b)] = torch.empty(b.shape, dtype=b.dtype)
            setattr(module, name, made[id(b)])
    return model


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a ``file.py:callable`` rather than a registered model."""
    path, sep, _ = spec.rpartition(":")
    return bool(sep) and path.endswith(".py")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex (how a run recognises its model file)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model_from_file(spec: str, **kwargs: Any) -> nn.Module:
    """Import ``path/to/file.py`` and call ``callable`` in it to get a model.

    Only the keyword arguments the callable accepts (e.g. ``num_classes``) are passed.

    Raises:
        ModelError: missing file, missing or non-callable attribute, the call fails, or it does
            not return an ``nn.Module``.
    """
    path_text, _, attr = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise ModelError(expected("an existing Python file in FILE.py:CALLABLE", model=spec))
    module_name = f"cnnlab_user_model_{abs(hash(path.resolve()))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ModelError(expected("an importable Python file", model=spec))
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        raise ModelError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(expected(f"a callable named {attr!r} in {path}", model=spec))
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepted = {}
    given = {k: v for k, v in kwargs.items() if v is not None and k in accepted}
    try:
        model = factory(**given)
    except Exception as e:
        raise ModelError(f"calling {attr}() from {path} failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ModelError(
            expected(f"{attr}() to return a torch.nn.Module", returned=type(model).__name__)
        )
    return model


def resolve_model(
    model: nn.Module | str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    **model_kwargs: Any,
) -> tuple[nn.Module, str, tuple[int, ...] | None]:
    """The model, a display name and its default input shape (None if unknown).

    A registered name is built with uninitialised weights (see :func:`build_uninitialised`),
    which is all a summary needs.
    """
    if isinstance(model, nn.Module):
        return model, type(model).__name__, getattr(model, "default_input_shape", None)
    if not isinstance(model, str):
        raise ModelError(expected("a model name, FILE.py:CALLABLE or an nn.Module", model=model))
    if is_file_spec(model):
        built = load_model_from_file(model, num_classes=num_classes, in_channels=in_channels)
        return built, model, getattr(built, "default_input_shape", None)
    entry = get_model_entry(model)
    built = build_uninitialised(model, num_classes, in_channels, **model_kwargs)
    default = getattr(built, "default_input_shape", entry.default_input)
    return built, model, tuple(default)
