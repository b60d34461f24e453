"""How a run's freshly built network starts: its preprocessing and, when fine-tuning, the
source run's weights and the freeze (seed 002's transfer-learning recipe).

A new run fits its normalisation to the training split; a fine-tuned run copies every layer but
the classifier from the source and keeps the source's normalisation (the backbone's weights
expect it). :func:`cnnlab.fit` and :func:`cnnlab.resume` call :func:`network_start`;
:func:`cnnlab.finetune` is ``fit`` with ``finetune_from`` set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.preprocess import Preprocessing, fit_preprocessing
from cnnlab.errors import CheckpointError, ConfigError, ModelError
from cnnlab.models._base import classifier_names
from cnnlab.runs import FinetuneInfo, RunMeta, load_run
from cnnlab.training.config import TrainConfig
from cnnlab.training.freezing import apply_freeze, frozen_names


@dataclass(frozen=True)
class NetworkStart:
    """What starting the network decided (recorded in the run's :class:`RunMeta`).

    Attributes:
        preprocessing: how images become the network's input.
        frozen: parameter names kept non-trainable (fine-tuning only).
        finetune: the fine-tuning source (fine-tuning only).
    """

    preprocessing: Preprocessing
    frozen: tuple[str, ...] | None = None
    finetune: FinetuneInfo | None = None


def network_start(
    net: nn.Module, splits: DatasetSplits, config: TrainConfig, saved: RunMeta | None
) -> NetworkStart:
    """Start ``net`` for a new run, or for a resumed one (``saved``: its metadata).

    Raises:
        ModelError: the images do not fit the model.
        CheckpointError: a fine-tuning source cnnlab cannot use.
        ConfigError: data that does not fit the fine-tuning source.
    """
    if config.finetune_from is None:
        return NetworkStart(choose_preprocessing(net, splits))
    return prepare_finetune(net, config, splits, saved)


def choose_preprocessing(model: nn.Module, splits: DatasetSplits) -> Preprocessing:
    """Normalisation from the training split; zero-pad only if the model cannot take the
    stored size as it is (MNIST's 28x28 for LeNet-5's 32x32).

    Raises:
        ModelError: the images do not fit the model even when padded to its default input.
    """
    from cnnlab.analysis import check_input

    c, h, w = splits.train.image_shape
    default = tuple(getattr(model, "default_input_shape", (c, h, w)))  # a user's model: data
    try:
        check_input(model, (c, h, w))
        return fit_preprocessing(splits.train, (c, h, w))
    except ModelError:
        if h > default[1] or w > default[2]:
            raise
    return fit_preprocessing(splits.train, (c, default[1], default[2]))


def prepare_finetune(
    net: nn.Module, config: TrainConfig, splits: DatasetSplits, saved: RunMeta | None
) -> NetworkStart:
    """Initialise a freshly built ``net`` (new head) from ``config.finetune_from`` and freeze.

    The source's weights are copied into every layer but the classifier (whose new, seeded
    initialisation is what ``reset_classifier`` would give), and the source's normalisation is
    kept (the backbone's weights expect it). A resumed run (``saved`` given) takes the
    preprocessing from its own metadata: the source is not needed any more.

    Raises:
        CheckpointError: the source is missing, not a classifier, or another architecture.
        ConfigError: the data's channels differ from the source's.
    """
    frozen = tuple(frozen_names(net, config.freeze))
    if saved is not None:
        if saved.finetune is None:
            raise CheckpointError(
                f"expected a fine-tuned run's metadata with its source ('finetune'), received "
                f"none for the run fine-tuned from {config.finetune_from}"
            )
        apply_freeze(net, frozen)
        return NetworkStart(saved.preprocessing, frozen, saved.finetune)
    source = load_run(config.finetune_from)
    spec = source.meta.model
    channels = splits.train.image_shape[0]
    if spec.in_channels != channels or spec.reference != config.model:
        raise ConfigError(
            f"expected {spec.name} on {spec.in_channels}-channel images like the source "
            f"run, received {config.model} on {channels}-channel images"
        )
    state = {k: v for k, v in source.model.state_dict().items()}
    head = classifier_names(net)
    for name in head:
        state.pop(name, None)
    result = net.load_state_dict(state, strict=False)
    if result.unexpected_keys or sorted(result.missing_keys) != sorted(head):
        raise CheckpointError(
            f"expected weights of {config.model} in {config.finetune_from}, received missing "
            f"{result.missing_keys} and unexpected {result.unexpected_keys}"
        )
    apply_freeze(net, frozen)
    fitted = choose_preprocessing(net, splits)
    preprocessing = dataclasses.replace(
        fitted, mean=source.preprocessing.mean, std=source.preprocessing.std
    )
    info = FinetuneInfo(
        source=str(config.finetune_from),
        source_checkpoint=str(source.checkpoint),
        source_classes=tuple(source.classes),
        freeze=config.freeze,
        frozen_params=sum(p.numel() for p in net.parameters() if not p.requires_grad),
        trainable_params=sum(p.numel() for p in net.parameters() if p.requires_grad),
    )
    return NetworkStart(preprocessing, frozen, info)
