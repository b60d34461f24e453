"""Finding layers by the names ``cnnlab summary`` shows, and catching what they compute.

Layer kinds are decided by module class (``isinstance``), never by names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.analysis import Field, summary
from cnnlab.errors import ConfigError

POOLS: tuple[type[nn.Module], ...] = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.LPPool2d,
    nn.FractionalMaxPool2d,
)


@dataclass(frozen=True)
class Layer:
    """One layer as ``cnnlab summary`` lists it.

    Attributes:
        name: qualified module name, e.g. ``features.0``.
        module: the module.
        output_shape: output shape of one sample (first call), e.g. ``(6, 28, 28)``.
        field: receptive field of its output units in input pixels (None when unknown).
    """

    name: str
    module: nn.Module
    output_shape: tuple[int, ...]
    field: Field | None = None

    @property
    def spatial(self) -> bool:
        """Whether the output is a stack of 2-D maps, ``C x H x W``."""
        return len(self.output_shape) == 3

    @property
    def label(self) -> str:
        """``features.0 (Conv2d) 6x28x28``: name, type and output shape, for titles."""
        shape = "x".join(str(d) for d in self.output_shape)
        return f"{self.name} ({type(self.module).__name__}) {shape}"


def is_conv(layer: Layer) -> bool:
    return isinstance(layer.module, nn.Conv2d)


def is_conv_or_pool(layer: Layer) -> bool:
    return isinstance(layer.module, (nn.Conv2d, *POOLS))


def model_layers(model: nn.Module, input_shape: Sequence[int]) -> list[Layer]:
    """The model's layers in the order they run, named as in ``cnnlab summary`` (a layer
    called several times is listed once, with the shape of its first call).

    Raises:
        ModelError: the model cannot take inputs of ``input_shape``.
    """
    modules = dict(model.named_modules())
    layers: dict[str, Layer] = {}
    for row in summary(model, tuple(input_shape)).layers:
        if row.name in modules and row.name not in layers and row.output_shape is not None:
            shape = tuple(row.output_shape)
            layers[row.name] = Layer(row.name, modules[row.name], shape, row.field)
    return list(layers.values())


def choose_layers(
    layers: Sequence[Layer],
    names: Sequence[str],
    accept: Callable[[Layer], bool],
    what: str,
) -> list[Layer]:
    """The layers called ``names``, in the order given.

    Args:
        layers: the model's layers (:func:`model_layers`).
        names: the names asked for.
        accept: which layers may be asked for.
        what: how to describe the accepted layers in the error, e.g. ``"a conv layer"``.

    Raises:
        ConfigError: a name that is not an accepted layer; the message lists the valid names.
    """
    valid = {layer.name: layer for layer in layers if accept(layer)}
    unknown = [name for name in names if name not in valid]
    if unknown:
        shown = unknown[0] if len(unknown) == 1 else unknown
        raise ConfigError(
            f"expected {what} named as in `cnnlab summary` ({', '.join(valid) or 'none'}), "
            f"received layer={shown!r}"
        )
    return [valid[name] for name in names]


@contextlib.contextmanager
def capture_outputs(layers: Sequence[Layer]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each layer's first call during the forward passes run inside.

    The forward hooks are removed when the block ends, whatever happens in it.

    Example:
        >>> with capture_outputs(layers) as outputs:  # doctest: +SKIP
        ...     model(x)
        >>> outputs["features.0"].shape  # doctest: +SKIP
        torch.Size([1, 6, 28, 28])
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            outputs.setdefault(name, output)

        return hook

    try:
        for layer in layers:
            handles.append(layer.module.register_forward_hook(hook_for(layer.name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
