"""Lazy public APIs (PEP 562): a package lists its names and the modules that define them,
and each is imported on first use, so importing the package itself stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_api(
    package: str, namespace: dict[str, Any], api: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` exposing ``api`` (name -> defining module).

    A resolved name is stored in ``namespace`` (the package's globals), so each is looked up
    only once.
    """

    def getattr_(name: str) -> Any:
        if name in api:
            value = getattr(importlib.import_module(api[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted([*namespace, *api])

    return getattr_, dir_
