"""``Module`` and ``Sequential``: torch.nn's bookkeeping (names, state_dict, train/eval) for
layers whose ``backward`` is written by hand.

A layer's ``forward(x)`` caches what its ``backward`` needs; ``backward(grad_out)`` adds the
parameter gradients into ``.grad`` (``+=``) and returns the input gradient. One cache per layer:
a layer object used twice in one forward pass needs the graph executor instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from cnnlab.scratch.nn.parameter import Parameter

_NO_CACHE = object()


class Module:
    """Base class mirroring ``torch.nn.Module``'s registration of parameters, buffers and
    children (by attribute assignment), so that ``state_dict()`` keys match PyTorch's."""

    training: bool
    #: Whether ``forward`` can read and write the batch-last ``(C, H, W, N)`` layout
    #: (:mod:`cnnlab.scratch.functional.layout`); the graph executor switches such layers to
    #: it by setting ``batch_last = True``.
    accepts_batch_last: ClassVar[bool] = False
    #: Whether the layer works element by element (any layout, any shape).
    elementwise: ClassVar[bool] = False
    #: This layer's inputs and outputs are batch-last (only when ``accepts_batch_last``).
    batch_last: bool = False

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: object) -> None:
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"expected a Parameter or None for {name!r}, received {value!r}")
            params[name] = None
        elif isinstance(value, Module):
            modules[name] = value
        elif name in modules and value is None:
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        """Register a parameter, or ``None`` for an absent one (``bias=False``), as PyTorch."""
        self.__dict__.pop(name, None)
        self._parameters[name] = value

    def __getattr__(self, name: str) -> object:
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """A non-trainable array saved in ``state_dict`` (e.g. BatchNorm running statistics)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = value

    # ------------------------------------------------------------------ computation
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output and keep what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        """Add parameter gradients into ``.grad`` (``+=``) and return the input's gradient
        (``None`` allowed when ``needs_input_grad`` is ``False``)."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _save_for_backward(self, cache: object) -> None:
        """Keep what ``backward`` needs (released by :meth:`_saved`)."""
        object.__setattr__(self, "_cache", cache)

    def _saved(self) -> Any:
        """The forward pass's cache, released so its memory can go; raises without one."""
        cache = self.__dict__.get("_cache", _NO_CACHE)
        if cache is _NO_CACHE:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward pass")
        object.__setattr__(self, "_cache", _NO_CACHE)
        return cache

    def _accumulate_grads(self, **grads: np.ndarray | None) -> None:
        """Add each gradient into its parameter's ``.grad`` (``+=``); a parameter that is
        absent (``bias=False``, ``affine=False``) or a gradient that was not computed is
        skipped."""
        for name, grad in grads.items():
            param = self._parameters.get(name)
            if param is not None and grad is not None:
                param.accumulate_grad(grad)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once (a shared one under its first name), as PyTorch."""
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        for mod_prefix, module in modules:
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_prefix, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, in PyTorch's key order (per module:
        parameters, then buffers, then children)."""
        out: dict[str, np.ndarray] = {}
        for mod_prefix, module in self.named_modules():
            dot = f"{mod_prefix}." if mod_prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[dot + name] = p.data.copy()
            for name, b in module._buffers.items():
                if b is not None:
                    out[dot + name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays in place (cast to each target's dtype); shapes must match.

        Raises:
            KeyError: with ``strict``, when keys are missing or unexpected.
            ValueError: when a shape differs.
        """
        targets: dict[str, tuple[Module, str, bool]] = {}
        for mod_prefix, module in self.named_modules():
            dot = f"{mod_prefix}." if mod_prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    targets[dot + name] = (module, name, True)
            for name, b in module._buffers.items():
                if b is not None:
                    targets[dot + name] = (module, name, False)
        if strict:
            missing = sorted(set(targets) - set(state_dict))
            unexpected = sorted(set(state_dict) - set(targets))
            if missing or unexpected:
                raise KeyError(
                    f"expected the model's state_dict keys, received missing={missing} "
                    f"unexpected={unexpected}"
                )
        for key, (module, name, is_param) in targets.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            current = module._parameters[name].data if is_param else module._buffers[name]
            if value.shape != current.shape:
                raise ValueError(
                    f"expected {key} of shape {current.shape}, received shape {value.shape}"
                )
            np.copyto(current, value, casting="unsafe")

    # ------------------------------------------------------------------ modes and dtype
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (default) or zero every parameter's gradient."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast floating-point parameters and buffers (e.g. to ``np.float64`` for gradcheck)."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype, copy=False)
                    p.grad = None
            for name, b in m._buffers.items():
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    m._buffers[name] = b.astype(dtype, copy=False)
        return self

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [
            f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()
        ]
        body = "\n" + "\n".join(lines) + "\n" if lines else ""
        return f"{type(self).__name__}({self.extra_repr()}{body})"


class Sequential(Module):
    """Layers applied in order; children are named ``"0"``, ``"1"``, ... as in PyTorch.

    Shape:
        whatever its layers do.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            self._modules[str(i)] = layer

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, layer: Module) -> Sequential:
        self._modules[str(len(self._modules))] = layer
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self:
            x = layer(x)
        return x

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        """Back through the layers in reverse; the first layer skips its input gradient
        unless ``needs_input_grad``."""
        layers = list(self)
        grad: np.ndarray | None = grad_out
        for i in range(len(layers) - 1, -1, -1):
            assert grad is not None
            grad = layers[i].backward(grad, needs_input_grad=needs_input_grad or i > 0)
        return grad
