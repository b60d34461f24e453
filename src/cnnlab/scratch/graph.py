"""A graph executor: any network as a list of scratch ops, with backpropagation through it.

A :class:`Graph` is a topologically ordered list of :class:`Node` s, each naming its op, the
values it reads (the graph input or earlier nodes) and, for layers, the module it belongs to.
:class:`GraphNet` is a :class:`~cnnlab.scratch.nn.Module` that owns the layers (so its
``state_dict`` keys are the torch model's) and runs one graph per mode (training graphs may
have extra outputs, e.g. GoogLeNet's auxiliary classifiers).

Forward caches each node's backward state in the node's slot (not in the layer, so a layer used
twice keeps two caches) and frees every value after its last reader. Backward walks the nodes in
reverse topological order; a value read by several nodes (a residual's fan-out, an Inception
module's input) receives the *sum* of their gradients, and parameter gradients accumulate in
``.grad`` with ``+=``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.scratch.grad_mode import is_grad_enabled, no_grad
from cnnlab.scratch.graph_ops import LayerOp, Op
from cnnlab.scratch.nn.module import Module


@dataclass(frozen=True)
class Node:
    """One op application.

    Attributes:
        name: unique value name (the torch.fx node name, e.g. ``features_0``).
        op: what runs.
        inputs: names of the values it reads, in argument order.
        module: qualified name of the layer it runs (``""`` for functional ops); error
            messages and ``state_dict`` keys use it.
    """

    name: str
    op: Op
    inputs: tuple[str, ...]
    module: str = ""


@dataclass
class Graph:
    """A network as ops: ``input`` is the image batch, ``outputs[0]`` the logits (``outputs[1:]``
    auxiliary logits, if any)."""

    input: str
    nodes: list[Node]
    outputs: tuple[str, ...]
    readers: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.readers = Counter(name for node in self.nodes for name in node.inputs)
        self.readers.update(self.outputs)

    def __str__(self) -> str:
        rows = [f"{n.name:<32} {type(n.op).__name__:<15} {', '.join(n.inputs)}" for n in self.nodes]
        return "\n".join([f"input {self.input}", *rows, f"outputs {', '.join(self.outputs)}"])


@dataclass
class _Tape:
    """What a forward pass leaves for backward."""

    graph: Graph
    caches: dict[str, Any]


class GraphNet(Module):
    """A scratch network run by a graph executor (built by :mod:`cnnlab.bridge` from a torch
    model, with the same ``state_dict`` keys).

    Args:
        train_graph: the graph run in ``train()`` mode.
        eval_graph: the graph run in ``eval()`` mode (defaults to ``train_graph``).

    Shape:
        ``(N, C, H, W) -> (N, num_classes)``; after a forward pass ``aux_outputs`` holds the
        graph's extra outputs (auxiliary logits in training mode).
    """

    def __init__(self, train_graph: Graph, eval_graph: Graph | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "graphs", {True: train_graph, False: eval_graph or train_graph})
        object.__setattr__(self, "aux_outputs", ())
        object.__setattr__(self, "_tape", None)

    def add_layer(self, qualified_name: str, layer: Module) -> None:
        """Attach ``layer`` under its dotted name, creating empty container modules on the way
        (so ``state_dict`` keys read ``layer1.0.conv1.weight`` as in the torch model)."""
        *path, leaf = qualified_name.split(".")
        parent: Module = self
        for part in path:
            child = parent._modules.get(part)
            if child is None:
                child = Module()
                parent._modules[part] = child
            parent = child
        parent._modules[leaf] = layer

    @property
    def graph(self) -> Graph:
        """The graph of the current mode."""
        return self.graphs[self.training]

    def forward(
        self,
        x: np.ndarray,
        keep_cache: bool | None = None,
        observe: Callable[[Node, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Run the graph; returns the logits (``aux_outputs`` gets the other outputs).

        Args:
            x: input batch.
            keep_cache: keep what :meth:`backward` needs; ``False`` (inference) runs the ops
                under :func:`~cnnlab.scratch.grad_mode.no_grad`, which saves memory and time.
                Default: whether gradients are enabled.
            observe: called with each node and its output as soon as it is computed (a
                later op may reuse the array: copy what must be kept).
        """
        keep_cache = is_grad_enabled() if keep_cache is None else keep_cache
        graph = self.graph
        values: dict[str, np.ndarray] = {graph.input: x}
        left = Counter(graph.readers)
        caches: dict[str, Any] = {}
        with nullcontext() if keep_cache else no_grad():
            for node in graph.nodes:
                out, cache = node.op.forward(*(values[name] for name in node.inputs))
                if keep_cache:
                    caches[node.name] = cache
                values[node.name] = out
                if observe is not None:
                    observe(node, out)
                for name in node.inputs:
                    left[name] -= 1
                    if left[name] == 0:
                        del values[name]
        outputs = [values[name] for name in graph.outputs]
        object.__setattr__(self, "aux_outputs", tuple(outputs[1:]))
        object.__setattr__(self, "_tape", _Tape(graph, caches) if keep_cache else None)
        return outputs[0]

    def backward(
        self,
        grad_out: np.ndarray,
        needs_input_grad: bool = True,
        aux_grads: Sequence[np.ndarray | None] = (),
    ) -> np.ndarray | None:
        """Backpropagate from the logits (and the auxiliary outputs, if given).

        Args:
            grad_out: gradient of the loss with respect to the logits.
            needs_input_grad: also return the input's gradient (``False`` saves the first
                layer's input-gradient product, as training does).
            aux_grads: gradients with respect to ``aux_outputs`` (``None`` for none).

        Returns:
            The input's gradient, or ``None`` when not needed.
        """
        tape = self.__dict__["_tape"]
        if tape is None:
            raise RuntimeError("GraphNet.backward called without a forward pass that kept caches")
        object.__setattr__(self, "_tape", None)
        graph, caches = tape.graph, tape.caches
        requires = self._requires_grad(graph, needs_input_grad)
        grads: dict[str, np.ndarray] = {}
        owned: set[str] = set()  # gradients that are our own sums, safe to add into in place

        def accumulate(name: str, grad: np.ndarray) -> None:
            if name not in grads:
                grads[name] = grad  # may alias another value's gradient: never modified in place
            elif name in owned:
                grads[name] += grad
            else:
                grads[name] = grads[name] + grad
                owned.add(name)

        for name, grad in zip(graph.outputs, (grad_out, *aux_grads)):
            if grad is not None:
                accumulate(name, grad)
        for node in reversed(graph.nodes):
            grad = grads.pop(node.name, None)
            if grad is None or not requires[node.name]:
                continue
            needs = [requires[name] for name in node.inputs]
            input_grads = node.op.backward(grad, caches.pop(node.name), needs)
            for name, need, input_grad in zip(node.inputs, needs, input_grads):
                if need and input_grad is not None:
                    accumulate(name, input_grad)
        return grads.get(graph.input) if needs_input_grad else None

    @staticmethod
    def _requires_grad(graph: Graph, input_requires: bool) -> dict[str, bool]:
        """A value needs a gradient when a trainable parameter or the input lies upstream."""
        requires = {graph.input: input_requires}
        for node in graph.nodes:
            own = isinstance(node.op, LayerOp) and any(
                p.requires_grad for p in node.op.layer.parameters()
            )
            requires[node.name] = own or any(requires[name] for name in node.inputs)
        return requires
