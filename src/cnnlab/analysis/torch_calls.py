"""Watching the torch functions a forward calls: a ``TorchFunctionMode`` with one plain handler,
and the tensors inside (nested) arguments and results.

Shared by the shape pass (:mod:`cnnlab.analysis.trace`), receptive fields
(:mod:`cnnlab.analysis.receptive_field`), model building on ``meta``
(:mod:`cnnlab.analysis.source`) and the wiring the explore page draws
(:mod:`cnnlab.explore.structure`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


class FunctionWatcher(TorchFunctionMode):
    """A ``TorchFunctionMode`` that hands every call to :meth:`handle` with ``kwargs`` a dict.

    Subclasses implement :meth:`handle`, which must return the function's result (normally
    ``func(*args, **kwargs)``).
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        return self.handle(func, args, kwargs or {})

    def handle(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run (or replace) one torch function call and return its result."""
        raise NotImplementedError


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """The tensors in ``obj``: itself if a tensor, those in a (nested) list or tuple, else none."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, list | tuple):
        return [t for item in obj for t in tensors_in(item)]
    return []


def argument_tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors passed to a call, positional ones first (see :func:`tensors_in`)."""
    return tensors_in(args) + tensors_in(list(kwargs.values()))
