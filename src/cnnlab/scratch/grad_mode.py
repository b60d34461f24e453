"""Whether forward passes keep what backward passes need: the engine's ``torch.no_grad``.

Inference (evaluation, prediction) runs the graph under :func:`no_grad`; layers then skip work
only a backward pass would use (max pooling's argmax), and the graph executor keeps no caches.

    with no_grad():
        logits = net.forward(x)

The mode is per thread, as torch's is: :class:`cnnlab.scratch.parallel.DataParallel` runs
shards of one batch in two threads, each entering and leaving :func:`no_grad` on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_mode = threading.local()  # .enabled, set on a thread's first no_grad()


def is_grad_enabled() -> bool:
    """``False`` inside :func:`no_grad` (of the calling thread)."""
    return getattr(_mode, "enabled", True)


@contextmanager
def no_grad() -> Iterator[None]:
    """Forward passes inside keep nothing for backward (nestable; restored on exit)."""
    previous, _mode.enabled = is_grad_enabled(), False
    try:
        yield
    finally:
        _mode.enabled = previous
