"""Batched inference: the one place that runs a model over stored images without gradients,
and the one way to put a model in eval mode for a while."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from cnnlab.errors import ConfigError

if TYPE_CHECKING:  # types only: inference sits below data in the layers
    from cnnlab.data.dataset import ImageSplit
    from cnnlab.data.preprocess import Preprocessing


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else must name a device this
    machine has (checked here, before a command writes anything).

    Raises:
        ConfigError: a string torch does not read as a device, or a device that is absent
            (CUDA without a GPU or a CUDA build of torch, ``cuda:N`` past the last GPU, MPS).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"expected a device auto, cpu, cuda or cuda:N, received device={name!r}"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA GPU" if torch.version.cuda else "a torch built without CUDA"
            raise ConfigError(
                f"expected a CUDA device, received device={name!r} on a machine with {why} "
                "(use --device cpu or auto)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"expected cuda:0 to cuda:{count - 1} ({count} GPUs), received device={name!r}"
            )
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise ConfigError(
        f"expected a device auto, cpu or cuda[:N] present on this machine, received device={name!r}"
    )


@contextlib.contextmanager
def module_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """``model.train(training)`` inside the block; afterwards, whatever happens in it, every
    submodule gets back its own previous flag (a model with frozen BatchNorm layers in eval
    mode inside a training model stays so mixed).

    Example:
        >>> with module_mode(model, training=True):  # doctest: +SKIP
        ...     graph = trace(model)
    """
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.train(training)
        yield model
    finally:
        for module, was_training in flags:
            module.training = was_training


def eval_mode(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """``model`` in eval mode inside the block, each submodule's flag restored after
    (:func:`module_mode` with ``training=False``).

    Example:
        >>> with eval_mode(model), torch.no_grad():  # doctest: +SKIP
        ...     logits = model(x)
    """
    return module_mode(model, training=False)


def to_model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """Put a 4-D batch in channels-last memory order when asked (faster convolutions on CPU)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def image_batches(images: torch.Tensor | ImageSplit, batch_size: int) -> Iterator[torch.Tensor]:
    """The images in stored order, ``batch_size`` at a time: slices of a tensor, or a split's
    batches (decoded from the files when the split is streamed).

    Shape:
        ``(N, C, H, W)`` tensor or split of N images -> batches ``(<= batch_size, C, H, W)``.
    """
    if isinstance(images, torch.Tensor):
        return iter(images.split(batch_size))
    return images.batches(batch_size)


#: Input values per inference batch: 4,096 MNIST digits (32x32), 1,365 CIFAR-10 images, 27
#: ImageNet-sized ones (3x224x224), so that large images never need gigabytes of activations
#: while small ones go through in a few large, fast batches.
INFERENCE_BATCH_VALUES = 2**22
MAX_INFERENCE_BATCH = 4096


def inference_batch_size(
    preprocessing: Preprocessing,
    values: int = INFERENCE_BATCH_VALUES,
    most: int = MAX_INFERENCE_BATCH,
) -> int:
    """The default batch of :func:`compute_logits` for inputs of this size: as many images as
    hold ``values`` input values, at least 1 and at most ``most``."""
    h, w = preprocessing.input_size
    per_image = preprocessing.channels * h * w
    return max(1, min(most, values // per_image))


def compute_logits(
    model: nn.Module,
    images: torch.Tensor | ImageSplit,
    preprocessing: Preprocessing,
    batch_size: int | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits of ``model`` for uint8 ``images`` (a tensor or a split, in memory or streamed),
    in eval mode (each submodule's mode is restored after), under ``torch.inference_mode``,
    ``batch_size`` images at a time (default :func:`inference_batch_size`). The result is an
    ordinary tensor (usable in autograd, e.g. as cached features).

    Shape:
        ``(N, C, H, W) uint8 -> (N, num_classes) float32`` on the CPU.
    """
    device = next(model.parameters(), torch.empty(0)).device  # CPU without weights (onnxruntime)
    batch_size = batch_size or inference_batch_size(preprocessing)
    with eval_mode(model), torch.inference_mode():
        chunks = []
        for batch in image_batches(images, batch_size):
            x = preprocessing(batch.to(device))
            chunks.append(model(to_model_layout(x, channels_last)).float().cpu())
    if not chunks:
        return torch.empty(0, 0)
    return torch.cat(chunks)  # outside inference mode: an ordinary tensor
