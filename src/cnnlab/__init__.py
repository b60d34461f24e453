"""cnnlab: convolutional neural networks for image classification.

The public API is listed in ``__all__`` and resolved lazily (PEP 562), so ``import cnnlab``
is cheap and ``cnnlab.scratch`` (the NumPy engine) can be imported where torch is absent.

Example:
    >>> import cnnlab
    >>> history = cnnlab.fit("lenet5", "mnist", out="runs/lenet5")  # doctest: +SKIP
    >>> cnnlab.evaluate("runs/lenet5").accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API: dict[str, str] = {
    "CnnlabError": "cnnlab.errors",
    "create_model": "cnnlab.registry",
    "list_models": "cnnlab.registry",
    "register_model": "cnnlab.registry",
    "load_dataset": "cnnlab.data.datasets",
    "fetch_dataset": "cnnlab.data.datasets",
    "TrainConfig": "cnnlab.training.config",
    "fit": "cnnlab.training.run",
    "load_run": "cnnlab.training.run",
    "History": "cnnlab.training.history",
    "evaluate": "cnnlab.evaluation.evaluate",
    "predict": "cnnlab.evaluation.predict",
    "summary": "cnnlab.analysis",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
