"""Lazy public APIs (PEP 562): a package lists its names and the modules that define them,
and each is imported on first use, so importing the package itself stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_api(
    package: str, namespace: dict[str, Any], modules: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` exposing, for each defining module
    of ``modules``, the names it gives.

    A resolved name is stored in ``namespace`` (the package's globals), so each is looked up
    only once.
    """
    api = {name: module for module, names in modules.items() for name in names}

    def getattr_(name: str) -> Any:
        if name in api:
            value = getattr(importlib.import_module(api[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted([*namespace, *api])

    return getattr_, dir_, sorted(api)
