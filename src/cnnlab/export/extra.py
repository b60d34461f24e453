"""The optional ``cnnlab[export]`` dependencies: onnx, onnxscript and onnxruntime.

cnnlab itself never needs them; export needs all three, and running an ``.onnx`` file (predict,
evaluate) needs onnxruntime only. A missing one is a one-line user error naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cnnlab.errors import CnnlabError

EXTRA = "export"
EXPORT_MODULES = ("onnx", "onnxscript", "onnxruntime")
RUNTIME_MODULES = ("onnxruntime",)


class MissingExtraError(CnnlabError):
    """An optional dependency of the ``cnnlab[export]`` extra is not installed."""


def require(*names: str, purpose: str = "ONNX export") -> list[ModuleType]:
    """Import the named modules of the extra, or raise one line saying what to install.

    Args:
        names: top-level module names (default: all three of the extra).
        purpose: what needs them, for the message.

    Raises:
        MissingExtraError: one or more of them cannot be imported.
    """
    names = names or EXPORT_MODULES
    modules, missing = [], []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"expected the cnnlab[{EXTRA}] extra for {purpose} (install it with: pip install "
            f"'cnnlab[{EXTRA}]'), received an environment without {', '.join(missing)}"
        )
    return modules
