"""The bridge between the two engines: the one place that knows both torch and scratch.

:func:`to_scratch` traces any registered torch model with torch.fx into a
:class:`~cnnlab.scratch.graph.GraphNet` (scratch ops run by a graph executor) with the same
``state_dict`` keys; :func:`load_from_torch` and :func:`copy_to_torch` move weights either way,
so a model trained by one engine can be evaluated, visualised or fine-tuned by the other.

Example:
    >>> from cnnlab import create_model
    >>> from cnnlab.bridge import to_scratch
    >>> net = to_scratch(create_model("lenet5"))  # doctest: +SKIP
    >>> net.eval().forward(x).shape  # doctest: +SKIP
    (8, 10)
"""

from cnnlab.bridge.convert import to_scratch
from cnnlab.bridge.weights import (
    copy_to_torch,
    load_from_torch,
    to_numpy_state,
    to_torch_state,
    tree_to_numpy,
    tree_to_torch,
)

__all__ = [
    "copy_to_torch",
    "load_from_torch",
    "to_numpy_state",
    "to_scratch",
    "to_torch_state",
    "tree_to_numpy",
    "tree_to_torch",
]
