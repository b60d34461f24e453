"""The batch-last layout plan: which ops move to ``(C, H, W, N)``, where the graph converts,
and that a planned graph computes what autograd computes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.bridge import to_scratch
from cnnlab.models import create_model
from cnnlab.scratch.graph import Graph
from cnnlab.scratch.graph_ops import GetItemOp, ToBatchFirstOp, ToBatchLastOp


class Wiring(nn.Module):
    """Slicing, padding, concatenation and an addition of batch-last values, and one slice
    (an integer index, which drops an axis) that has no batch-last twin."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 3 * 3 * 2 + 4 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))  # N x 4 x 6 x 6
        corner = F.pad(y[:, 1:, ::2, 1::2], (0, 1, 1, 0, 0, 1))  # N x 4 x 4 x 4
        z = torch.cat([self.pool(y), corner[..., :3, 1:]], dim=-3)  # N x 8 x 3 x 3
        z = z + z  # an addition of two batch-last values
        row = y[:, :, 0]  # N x 4 x 6
        return self.fc(torch.cat([z.flatten(1), row.flatten(1)], 1))


def _conversions(graph: Graph) -> list[tuple[str, str]]:
    return [
        (type(node.op).__name__, node.inputs[0])
        for node in graph.nodes
        if isinstance(node.op, (ToBatchLastOp, ToBatchFirstOp))
    ]


def test_lenet5_converts_only_its_input_and_before_flatten() -> None:
    net = to_scratch(create_model("lenet5"))
    for graph in net.graphs.values():
        assert _conversions(graph) == [
            ("ToBatchLastOp", "x"),
            ("ToBatchFirstOp", "model_features_7"),
        ]
    layers = dict(net.named_modules())
    assert layers["features.0"].batch_last and layers["features.2"].batch_last  # conv, pool
    assert not layers["classifier.0"].batch_last  # linear


def test_planned_graph_matches_autograd_and_the_unplanned_graph() -> None:
    torch.manual_seed(0)
    model = Wiring().double()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    out = model(x)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    results = []
    for batch_last in (True, False):
        net = to_scratch(model, np.float64, batch_last=batch_last)
        logits = net.forward(x.detach().numpy())
        grad_x = net.backward(weight.numpy())
        np.testing.assert_allclose(logits, out.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad_x, x.grad.numpy(), rtol=1e-10, atol=1e-12)
        grads = {name: p.grad for name, p in net.named_parameters()}
        for name, p in model.named_parameters():
            np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12)
        results.append((logits, grad_x))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-13)


def test_ops_without_a_batch_last_twin_get_batch_first_inputs() -> None:
    graph = to_scratch(Wiring().double(), np.float64).graph
    by_name = {node.name: node for node in graph.nodes}
    slices = [node for node in graph.nodes if isinstance(node.op, GetItemOp)]
    moved = [
        node
        for node in slices
        if by_name.get(node.inputs[0]) is None
        or not isinstance(by_name[node.inputs[0]].op, ToBatchFirstOp)
    ]
    kept = [node for node in slices if node not in moved]
    assert len(kept) == 1 and kept[0].op.index == (slice(None), slice(None), 0)
    assert all(len(node.op.index) == 4 for node in moved)  # re-ordered to (C, H, W, N)
