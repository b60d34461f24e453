"""The network a run trains: a registered model, a ``FILE.py:CALLABLE`` or a module instance.

:func:`build_network` builds it (or takes the module given) together with the
:class:`~cnnlab.runs.ModelSpec` the run records, which is how the run's network is built again
when it is loaded (see :class:`~cnnlab.runs.ModelSpec` for each source).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.analysis.source import is_file_spec
from cnnlab.errors import ModelError
from cnnlab.models import create_model
from cnnlab.runs import ModelSpec, RunMeta
from cnnlab.training.config import TrainConfig


def model_text(model: str | nn.Module) -> str:
    """What the run's config records as its model: the name or ``FILE.py:CALLABLE`` given, or
    a module's class (``package.module.ClassName``)."""
    if isinstance(model, nn.Module):
        spec = getattr(model, "cnnlab_spec", None)
        kind = type(model)
        return spec["name"] if spec else f"{kind.__module__}.{kind.__qualname__}"
    return model


def build_network(
    config: TrainConfig,
    num_classes: int,
    in_channels: int,
    module: nn.Module | None = None,
    saved: RunMeta | None = None,
) -> tuple[nn.Module, ModelSpec]:
    """The network to train and its spec.

    Args:
        config: the run's configuration (``config.model``: a name or ``FILE.py:CALLABLE``).
        num_classes: classes of the data.
        in_channels: channels of the data.
        module: an ``nn.Module`` given to :func:`cnnlab.fit` (trained in place).
        saved: a resumed run's metadata: its model file must be the one it recorded.

    Raises:
        ModelError: unknown model or option, a model file that fails, or a module whose
            classes differ from the data's.
        CheckpointError: a resumed run's model file changed or is gone, or a resumed run
            trained on a module without ``module`` given.
    """
    if saved is not None and saved.model.source != "registry":
        return saved.model.build(module), saved.model
    if module is not None:
        return module, ModelSpec.of_module(module, num_classes, in_channels)
    if is_file_spec(config.model):
        kwargs = config.model_kwargs
        spec = ModelSpec.of_file(config.model, num_classes, in_channels, kwargs)
        return spec.build(), spec
    net = create_model(
        config.model, num_classes=num_classes, in_channels=in_channels, **config.model_kwargs
    )
    return net, ModelSpec.of(net)


def check_outputs(net: nn.Module, spec: ModelSpec, input_shape: Sequence[int]) -> None:
    """Check that a model of the user's gives one output per class (a registered model does by
    construction), with one forward pass of a zero image in eval mode.

    Shape:
        input: ``(1, C, H, W)`` zeros; output expected ``(1, num_classes)``.

    Raises:
        ModelError: another output shape, or the forward pass fails.
    """
    if spec.source == "registry":
        return
    was_training = net.training
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, *input_shape, device=device))
    except Exception as exc:
        raise ModelError(
            f"expected {spec.name} to take images of {tuple(input_shape)}, received "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    finally:
        net.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (1, spec.num_classes):
        raise ModelError(
            f"expected {spec.name} to give {spec.num_classes} outputs per image (one per class "
            f"of the data; a FILE.py:CALLABLE may take num_classes), received output {shape}"
        )
