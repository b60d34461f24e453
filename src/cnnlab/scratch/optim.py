"""Optimizers with ``torch.optim``'s exact update rules, parameter groups and state_dict layout.

Each ``step()`` updates every parameter whose ``grad`` is not ``None``, in place. Hyper-parameters
live in ``param_groups`` (a list of dicts, as in PyTorch), so a schedule sets ``group["lr"]``.
``state_dict()`` is ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``
with PyTorch's state names (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ...).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from cnnlab.scratch.nn.parameter import Parameter

ParamsT = Iterable[Parameter] | Iterable[dict[str, Any]]

#: Elements per slice of an in-place update (:func:`add_scaled`): its temporary is 4 MB in
#: float32, not the parameter's size (0.4 GB for VGG's first classifier layer, 0.8 GB in float64).
UPDATE_SLICE = 1 << 20


def add_scaled(target: np.ndarray, scale: float, values: np.ndarray) -> None:
    """``target += scale * values`` in place, a slice of :data:`UPDATE_SLICE` elements at a
    time; every element is computed and rounded as in the one-line form.

    Shape:
        ``target`` and ``values`` of one shape (else the one-line form, which broadcasts).
    """
    contiguous = target.flags.c_contiguous and values.flags.c_contiguous
    if target.size <= UPDATE_SLICE or target.shape != values.shape or not contiguous:
        target += scale * values
        return
    flat, source = target.reshape(-1), values.reshape(-1)
    for start in range(0, flat.size, UPDATE_SLICE):
        part = slice(start, start + UPDATE_SLICE)
        flat[part] += scale * source[part]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and (de)serialisation."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("expected at least one parameter, received an empty list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group; missing hyper-parameters come from the defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        full = {**self.defaults, **group, "params": params}
        self.param_groups.append(full)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (default) or zero the gradients of every managed parameter."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, self.state.setdefault(p, {}), group)

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        raise NotImplementedError

    def _params(self) -> list[Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: parameters are numbered in group order."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and buffers (cast to each parameter's dtype)."""
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [
            len(g["params"]) for g in self.param_groups
        ]:
            raise ValueError(
                "expected a state_dict with the same parameter groups, received sizes "
                f"{[len(g['params']) for g in saved_groups]}"
            )
        params = self._params()
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for key, s in state_dict["state"].items():
            p = params[int(key)]
            self.state[p] = {
                k: v.astype(p.dtype) if isinstance(v, np.ndarray) else v for k, v in s.items()
            }


class SGD(Optimizer):
    """``torch.optim.SGD``.

    ``g = grad + weight_decay * p``; with momentum, ``buf = g`` on the first step and then
    ``buf = momentum * buf + (1 - dampening) * g``; the step is ``g + momentum * buf`` (Nesterov)
    or ``buf``; ``p -= lr * step`` (a slice at a time: :func:`add_scaled`).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("expected momentum > 0 and dampening = 0 for Nesterov momentum")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        d_p = grad
        if group["weight_decay"] != 0:
            d_p = d_p + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(d_p, copy=True)
            else:
                buf *= momentum
                add_scaled(buf, 1 - group["dampening"], d_p)
            d_p = d_p + momentum * buf if group["nesterov"] else buf
        add_scaled(p.data, -group["lr"], d_p)


class Adam(Optimizer):
    """``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient; optional AMSGrad).

    ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g**2``;
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    """

    _decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        super().__init__(params, defaults)

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        step = state["step"]
        if wd != 0:
            if self._decoupled:
                p.data *= 1 - lr * wd
            else:
                grad = grad + wd * p.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch: exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt + eps
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr * weight_decay``
    applied before the Adam step (default ``weight_decay=1e-2``)."""

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``.

    ``v = alpha*v + (1-alpha)*g**2``; centred: ``avg = sqrt(v - mean_g**2) + eps`` (with
    ``mean_g = alpha*mean_g + (1-alpha)*g``), else ``sqrt(v) + eps``; with momentum
    ``buf = momentum*buf + g/avg`` and ``p -= lr*buf``, else ``p -= lr*g/avg``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p.data)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)  # torch: grad_avg.lerp_(grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)
