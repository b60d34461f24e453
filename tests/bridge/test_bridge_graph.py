"""The bridge and the graph executor on hand-made models: fan-out, concatenation, a layer
called twice, slicing and padding (option-A shortcuts), weights both ways, unsupported ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.bridge import copy_to_torch, load_from_torch, to_scratch
from cnnlab.errors import CnnlabError, UnsupportedOpError
from cnnlab.scratch.grad_mode import is_grad_enabled, no_grad
from cnnlab.scratch.graph import GraphNet


class Branchy(nn.Module):
    """Every wiring case at once: the input feeds three consumers, one ReLU module runs three
    times, a residual add, a channel concatenation, a strided slice and a zero pad."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2, ceil_mode=True)
        self.fc = nn.Linear(8 * 3 * 3 + 3 * 3 * 3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.conv_a(x))
        b = self.relu(self.conv_b(x))
        y = self.bn(torch.cat([a, b], 1))
        y = self.relu(y + F.pad(x, (0, 0, 0, 0, 2, 3)))  # residual with zero-padded channels
        shortcut = x[:, :, ::2, ::2]  # N x 3 x 3 x 3
        return self.fc(torch.cat([torch.flatten(self.pool(y), 1), shortcut.flatten(1)], 1))


def _pair(seed: int = 0, batch_last: bool = True) -> tuple[nn.Module, GraphNet]:
    torch.manual_seed(seed)
    model = Branchy().double().train()
    return model, to_scratch(model, np.float64, batch_last=batch_last)


@pytest.mark.parametrize("batch_last", [True, False], ids=["planned", "batch-first"])
def test_fan_out_and_concatenation_gradients_match_autograd(batch_last: bool) -> None:
    model, net = _pair(batch_last=batch_last)
    x = torch.randn(3, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    out = model(x)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    ours = net.forward(x.detach().numpy())
    grad_x = net.backward(weight.numpy())
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_x, x.grad.numpy(), rtol=1e-10, atol=1e-12)
    params = dict(net.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(params[name].grad, p.grad.numpy(), rtol=1e-10, atol=1e-12)
    buffers = dict(net.named_buffers())
    for name, b in model.named_buffers():  # running statistics updated alike
        np.testing.assert_allclose(buffers[name], b.numpy(), rtol=1e-12)


def test_backward_twice_accumulates_like_autograd() -> None:
    model, net = _pair()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    for _ in range(2):
        model(x).sum().backward()
        out = net.forward(x.numpy())
        net.backward(np.ones_like(out), needs_input_grad=False)
    np.testing.assert_allclose(net.fc.weight.grad, model.fc.weight.grad.numpy(), rtol=1e-10)


def test_state_dict_keys_and_order_are_torchs_and_weights_go_both_ways() -> None:
    model, net = _pair()
    assert list(net.state_dict()) == list(model.state_dict())
    for p in net.parameters():
        p.data += 1.0  # "trained" by the NumPy engine
    other = Branchy().double()
    copy_to_torch(net, other)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), net.state_dict()[key])
    fresh = to_scratch(Branchy().double(), np.float64)
    load_from_torch(fresh, other)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    net.eval()
    fresh.eval()
    np.testing.assert_array_equal(net.forward(x), fresh.forward(x))


def test_frozen_parameters_stay_frozen() -> None:
    model, _ = _pair()
    model.conv_a.weight.requires_grad_(False)
    net = to_scratch(model, np.float64)
    out = net.forward(np.ones((2, 3, 5, 5)))
    net.backward(np.ones_like(out))
    assert net.conv_a.weight.grad is None and net.conv_b.weight.grad is not None


def test_inference_mode_keeps_no_caches() -> None:
    _, net = _pair()
    net.eval().forward(np.ones((2, 3, 5, 5)), keep_cache=False)
    with pytest.raises(RuntimeError, match="without a forward pass"):
        net.backward(np.ones((2, 5)))


class WithSiLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class WithExp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.block(x))


def test_unsupported_layer_names_the_layer_type_and_path() -> None:
    with pytest.raises(UnsupportedOpError, match=r"received SiLU at layer act"):
        to_scratch(WithSiLU())


def test_unsupported_function_names_the_op_and_the_layer() -> None:
    with pytest.raises(UnsupportedOpError) as info:
        to_scratch(WithExp())
    message = str(info.value)
    assert "'exp'" in message and "WithExp" in message and "\n" not in message
    assert isinstance(info.value, CnnlabError)


def test_no_grad_gives_the_same_logits_and_keeps_nothing_for_backward() -> None:
    _, net = _pair()
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    net.eval()
    expected = net.forward(x)
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()  # nesting restores the outer state
        np.testing.assert_array_equal(net.forward(x), expected)
    assert is_grad_enabled()
    with pytest.raises(RuntimeError, match="without a forward pass"):
        net.backward(np.ones_like(expected))
