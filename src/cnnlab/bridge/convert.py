"""torch model -> scratch :class:`~cnnlab.scratch.graph.GraphNet` (layers, graphs, weights)."""

from __future__ import annotations

import numpy as np
import torch.fx as fx
from torch import nn

from cnnlab.bridge.ops import convert_function, convert_layer, layer_op
from cnnlab.bridge.trace import layer_of, strip_prefix, trace
from cnnlab.bridge.weights import load_from_torch
from cnnlab.errors import UnsupportedOpError
from cnnlab.scratch.graph import Graph, GraphNet, Node
from cnnlab.scratch.layout_plan import plan_batch_last
from cnnlab.scratch.nn.module import Module


def to_scratch(
    model: nn.Module,
    dtype: np.dtype | type = np.float32,
    rng: np.random.Generator | None = None,
    batch_last: bool = True,
) -> GraphNet:
    """The NumPy twin of a torch model: same layers, same ``state_dict`` keys, same weights.

    The model is traced with torch.fx in training and in eval mode (so GoogLeNet's auxiliary
    heads are outputs of the training graph only); the scratch net runs the graph of its own
    mode and starts in the torch model's mode.

    Args:
        model: any model built from the layers and functions in :mod:`cnnlab.bridge.ops`.
        dtype: float dtype of the scratch weights (float64 for gradient checks).
        rng: generator every dropout layer draws its masks from (seed it for reproducible
            training); a fresh ``default_rng(0)`` when ``None``.
        batch_last: keep spatial values batch-last between layers
            (:mod:`cnnlab.scratch.layout_plan`; several times faster); ``False`` runs every op
            in PyTorch's layout. Inputs and outputs are batch-first either way.

    Returns:
        A :class:`GraphNet` whose ``state_dict()`` has the torch model's keys.

    Raises:
        UnsupportedOpError: an op or layer the NumPy engine lacks, naming it and its layer.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    fx_graphs = {mode: trace(model, mode) for mode in (True, False)}
    used = {
        strip_prefix(str(node.target))
        for graph in fx_graphs.values()
        for node in graph.nodes
        if node.op == "call_module"
    }
    layers: dict[str, Module] = {}
    for name, module in model.named_modules():  # torch's order, so state_dict order matches
        has_state = any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False)
        )
        if name in used or (has_state and name):
            layers[name] = convert_layer(module, name, np.dtype(dtype), rng)
    graphs = [_build(fx_graphs[mode], layers) for mode in (True, False)]
    if batch_last:
        graphs = [plan_batch_last(graph) for graph in graphs]
    net = GraphNet(*graphs)
    for name, layer in layers.items():
        net.add_layer(name, layer)
    _check_keys(net, model)
    load_from_torch(net, model)
    scratch_params = dict(net.named_parameters())
    for name, p in model.named_parameters():
        scratch_params[name].requires_grad = p.requires_grad
    return net.train(model.training)


def _build(graph: fx.Graph, layers: dict[str, Module]) -> Graph:
    """fx nodes -> scratch nodes; nodes the outputs do not depend on are dropped."""
    nodes: list[Node] = []
    inputs: list[str] = []
    outputs: tuple[str, ...] = ()
    for node in graph.nodes:
        if node.op == "placeholder":
            inputs.append(node.name)
        elif node.op == "call_module":
            name = strip_prefix(str(node.target))
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
                raise UnsupportedOpError(
                    f"expected layers called with one tensor, received {node.args} at layer {name}"
                )
            nodes.append(Node(node.name, layer_op(layers[name]), (node.args[0].name,), name))
        elif node.op in ("call_function", "call_method"):
            where = layer_of(node)
            op, args = convert_function(node, where)
            if not all(isinstance(a, fx.Node) for a in args):
                raise UnsupportedOpError(
                    f"expected tensor arguments, received {args} for op {node.target!r} in layer "
                    f"{where}"
                )
            nodes.append(Node(node.name, op, tuple(a.name for a in args)))
        elif node.op == "output":
            outputs = tuple(a.name for a in node.args[0])
        else:
            raise UnsupportedOpError(
                f"expected layer and function calls, received {node.op} {node.target!r} in "
                f"layer {layer_of(node)} (the NumPy engine cannot read tensors from attributes)"
            )
    if len(inputs) != 1:
        raise UnsupportedOpError(f"expected a model with one input, received inputs {inputs}")
    return Graph(inputs[0], _live(nodes, outputs), outputs)


def _live(nodes: list[Node], outputs: tuple[str, ...]) -> list[Node]:
    """The nodes the outputs depend on, in order."""
    needed = set(outputs)
    for node in reversed(nodes):
        if node.name in needed:
            needed.update(node.inputs)
    return [node for node in nodes if node.name in needed]


def _check_keys(net: GraphNet, model: nn.Module) -> None:
    ours = {k for k, _ in net.named_parameters()} | {k for k, _ in net.named_buffers()}
    theirs = set(model.state_dict())
    if ours != theirs:
        raise UnsupportedOpError(
            f"expected every weight to belong to a supported layer, received weights the NumPy "
            f"engine cannot place: missing {sorted(theirs - ours)[:5]}, extra "
            f"{sorted(ours - theirs)[:5]}"
        )
