"""Plan where a graph keeps its values batch-last ``(C, H, W, N)``.

Spatial layers (convolution, pooling, 2-d batch norm, local response norm) are several times
cheaper batch-last (:mod:`cnnlab.scratch.functional.layout` says why), so the planner rewrites a
:class:`~cnnlab.scratch.graph.Graph` once, before it runs:

* every layer with ``accepts_batch_last`` is switched to the batch-last layout;
* element-wise layers, identities and additions keep the layout of their inputs;
* concatenation, slicing and padding use their ``for_batch_last()`` twin when their inputs are
  batch-last;
* everything else (``Flatten``, ``Linear``, ...) gets batch-first inputs;
* a :class:`~cnnlab.scratch.graph_ops.ToBatchLastOp` or
  :class:`~cnnlab.scratch.graph_ops.ToBatchFirstOp` node is inserted wherever a value must
  change layout (once per value and direction), and the outputs are batch-first.

So a LeNet-5 graph converts twice per pass: the input batch, and C5's ``120 x 1 x 1`` maps
before ``Flatten``. The graph computes exactly what it computed before, in the same order.
"""

from __future__ import annotations

from dataclasses import replace

from cnnlab.scratch.graph import Graph, Node
from cnnlab.scratch.graph_ops import AddOp, IdentityOp, LayerOp, ToBatchFirstOp, ToBatchLastOp


def plan_batch_last(graph: Graph) -> Graph:
    """The same computation with spatial values kept batch-last; see the module docstring.

    Side effect: switches the graph's ``accepts_batch_last`` layers to ``batch_last = True``.
    """
    nodes: list[Node] = []
    batch_last: dict[str, bool] = {graph.input: False}
    converted: dict[tuple[str, bool], str] = {}

    def in_layout(name: str, want_batch_last: bool) -> str:
        """``name`` itself, or the node converting it to the wanted layout (made once)."""
        if batch_last[name] == want_batch_last:
            return name
        key = (name, want_batch_last)
        if key not in converted:
            suffix = "batch_last" if want_batch_last else "batch_first"
            op = ToBatchLastOp() if want_batch_last else ToBatchFirstOp()
            converted[key] = f"{name}_{suffix}"
            nodes.append(Node(converted[key], op, (name,)))
            batch_last[converted[key]] = want_batch_last
        return converted[key]

    for node in graph.nodes:
        planned, out_batch_last = _plan_node(node, [batch_last[name] for name in node.inputs])
        inputs = tuple(in_layout(name, out_batch_last) for name in node.inputs)
        if isinstance(planned.op, LayerOp) and planned.op.layer.accepts_batch_last:
            planned.op.layer.batch_last = True
        nodes.append(replace(planned, inputs=inputs))
        batch_last[node.name] = out_batch_last
    outputs = tuple(in_layout(name, False) for name in graph.outputs)
    return Graph(graph.input, nodes, outputs)


def _plan_node(node: Node, inputs_batch_last: list[bool]) -> tuple[Node, bool]:
    """The node to run and whether it runs batch-last (all its inputs are then converted to
    that layout)."""
    op = node.op
    layer = op.layer if isinstance(op, LayerOp) else None
    all_batch_last = bool(inputs_batch_last) and all(inputs_batch_last)
    if layer is not None and layer.accepts_batch_last:
        return node, True
    if (layer is not None and layer.elementwise) or isinstance(op, (IdentityOp, AddOp)):
        return node, all_batch_last  # mixed inputs of an addition meet batch-first
    twin = getattr(op, "for_batch_last", None)
    if all_batch_last and twin is not None:
        batch_last_op = twin()
        if batch_last_op is not None:
            return replace(node, op=batch_last_op), True
    return node, False
