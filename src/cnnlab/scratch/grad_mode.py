"""Whether forward passes keep what backward passes need: the engine's ``torch.no_grad``.

Inference (evaluation, prediction) runs the graph under :func:`no_grad`; layers then skip work
only a backward pass would use (max pooling's argmax), and the graph executor keeps no caches.

    with no_grad():
        logits = net.forward(x)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_enabled = True


def is_grad_enabled() -> bool:
    """``False`` inside :func:`no_grad`."""
    return _enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Forward passes inside keep nothing for backward (nestable; restored on exit)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous
