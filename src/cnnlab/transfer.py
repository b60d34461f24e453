"""Transfer learning: a trained network, a new head, some layers frozen, cached features.

Seed 002's recipe: take a trained network, replace its softmax layer with one for the new
classes, freeze the backbone when the new data is small, only the shallow layers when it is
medium, nothing when it is large; with a frozen backbone, compute its features once, keep them on
disk, and train only the head on them.

``finetune(source, data, out=...)`` is :func:`cnnlab.training.run.fit` with
``finetune_from=source``; :func:`prepare_finetune` and :func:`feature_training` are what
``fit`` calls for such runs. The run records the source, the freeze spec and the names of the
frozen parameters (``meta["frozen"]``), so ``load_run`` rebuilds the new architecture and
marks the same parameters non-trainable (``cnnlab summary RUN`` counts them as such).

Cached features live in ``<cache>/features/<key>.safetensors``; the key hashes the backbone's
weights and buffers, the preprocessing and the images (for a streamed folder: its files, their
sizes and modification times, and their conversion), so a cache entry is reused by any run with
the same three and never by another. Features are computed in one pass over a split, streamed
splits batch by batch, and held in memory (``N x`` the backbone's feature size, float32).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from cnnlab.data.dataset import DatasetSplits, ImageSplit, TensorSplit
from cnnlab.data.datasets import default_cache_dir
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.fileio import atomic_write_bytes
from cnnlab.inference import compute_logits
from cnnlab.training.config import TrainConfig
from cnnlab.training.freezing import apply_freeze, frozen_names
from cnnlab.training.history import History
from cnnlab.training.run import Run, choose_preprocessing, fit, load_run


def finetune(
    source: str | Path,
    data: str | DatasetSplits,
    *,
    out: str | Path | None = None,
    freeze: str = "none",
    head_only: bool = False,
    cache_features: bool = False,
    lr_backbone: float | None = None,
    **options: Any,
) -> History:
    """Fine-tune a trained run (or checkpoint) on new data; the Python face of ``cnnlab
    finetune``.

    Args:
        source: run directory or ``.safetensors`` checkpoint of a cnnlab classifier.
        data: dataset spec or loaded splits (its classes become the new head's).
        out: new run directory (None: train in memory).
        freeze: ``none``, ``all``, ``N`` or ``up-to:LAYER`` (:mod:`cnnlab.training.freezing`).
        head_only: train only the new classifier layer (same as ``freeze="head-only"``).
        cache_features: train the head on cached backbone features (needs a frozen backbone:
            ``freeze="all"`` is implied when ``freeze`` is ``none``).
        lr_backbone: learning rate of the trainable backbone layers (default: ``lr``).
        **options: :func:`fit` options (``epochs``, ``lr``, ``classes``, ``per_class``,
            ``cache_dir``, ``verbose`` ...).

    Raises:
        CheckpointError: ``source`` is not a classifier checkpoint cnnlab can rebuild.
        ConfigError: both ``head_only`` and another ``freeze``; a freeze LAYER that is not one
            of the network's layers (the message lists them).
    """
    if head_only and freeze not in ("none", "head-only"):
        raise ConfigError(
            f"expected either --head-only or --freeze, received head_only=True, freeze={freeze!r}"
        )
    freeze = "head-only" if head_only else freeze
    if cache_features and freeze == "none":
        freeze = "all"
    run = load_run(source)
    spec = run.meta["model"]
    frozen_names(run.model, freeze)  # a bad LAYER fails here, before anything is written
    return fit(
        spec["name"],
        data,
        out=out,
        model_kwargs=dict(spec.get("kwargs", {})),
        finetune_from=str(Path(source).resolve()),
        freeze=freeze,
        cache_features=cache_features,
        lr_backbone=lr_backbone,
        **options,
    )


def classifier_names(model: nn.Module) -> list[str]:
    """Parameter names of the classifier layer that :meth:`reset_classifier` replaces."""
    head = {id(p) for p in model.get_classifier().parameters()}
    return [n for n, p in model.named_parameters() if id(p) in head]


def prepare_finetune(
    net: nn.Module,
    config: TrainConfig,
    splits: DatasetSplits,
    saved_meta: dict[str, Any] | None,
) -> tuple[Preprocessing, list[str], dict[str, Any]]:
    """Initialise a freshly built ``net`` (new head) from ``config.finetune_from`` and freeze.

    The source's weights are copied into every layer but the classifier (whose new, seeded
    initialisation is what ``reset_classifier`` would give), and the source's normalisation is
    kept (the backbone's weights expect it). A resumed run (``saved_meta`` given) takes the
    preprocessing from its own metadata: the source is not needed any more.

    Returns:
        ``(preprocessing, frozen parameter names, metadata describing the transfer)``.

    Raises:
        CheckpointError: the source is missing, not a classifier, or another architecture.
        ConfigError: the data's channels differ from the source's.
    """
    frozen = frozen_names(net, config.freeze)
    if saved_meta is not None:
        apply_freeze(net, frozen)
        return (
            Preprocessing.from_dict(saved_meta["preprocessing"]),
            frozen,
            saved_meta["finetune"],
        )
    source: Run = load_run(config.finetune_from)
    spec = source.meta["model"]
    channels = splits.train.image_shape[0]
    if spec["in_channels"] != channels or spec["name"] != config.model:
        raise ConfigError(
            f"expected {spec['name']} on {spec['in_channels']}-channel images like the source "
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
    info = {
        "from": str(config.finetune_from),
        "source_checkpoint": str(source.checkpoint),
        "source_classes": list(source.classes),
        "freeze": config.freeze,
        "frozen_params": sum(p.numel() for p in net.parameters() if not p.requires_grad),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
    }
    return preprocessing, frozen, info


# ---- cached features ---------------------------------------------------------------------------
class HeadOnFeatures(nn.Module):
    """Trains ``net``'s head on cached features; its ``state_dict`` is the whole ``net``'s,
    so checkpoints of a cached-feature run are ordinary checkpoints of the full network.

    Shape:
        ``features -> (N, num_classes)``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(features)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True, assign: bool = False):
        return self.net.load_state_dict(state, strict=strict, assign=assign)


class _Backbone(nn.Module):
    """``net.forward_features`` as a module, so :func:`compute_logits` batches it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


class _AsIs:
    """The preprocessing of cached features: none (they are model input already)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


@dataclass
class FeatureSet(TensorSplit):
    """Cached features standing in for a split's images (what the Trainer reads).

    Attributes:
        images: the backbone's features, shape ``(N, ...)`` float32.
        labels: ``(N,)`` int64.
    """


@dataclass
class FeatureSplits:
    """Train (and validation) features, in place of :class:`DatasetSplits`."""

    train: FeatureSet
    val: FeatureSet | None


def _sha256_tensor(h: Any, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def backbone_hash(net: nn.Module) -> str:
    """SHA-256 of the network's architecture spec and every weight and buffer except the
    classifier layer (it does not change the features)."""
    h = hashlib.sha256(json.dumps(getattr(net, "cnnlab_spec", {}), sort_keys=True).encode())
    head = set(classifier_names(net))
    for name, tensor in sorted(net.state_dict().items()):
        if name not in head:
            h.update(name.encode())
            _sha256_tensor(h, tensor)
    return h.hexdigest()


def feature_key(
    net: nn.Module, preprocessing: Preprocessing, images: torch.Tensor | ImageSplit
) -> str:
    """The cache key of the features of ``images``: backbone weights + preprocessing + data
    (the pixels of images in memory; the files of a streamed split).

    Shape:
        ``images``: ``(N, C, H, W)`` uint8, or a split of such images.
    """
    h = hashlib.sha256(backbone_hash(net).encode())
    h.update(json.dumps(preprocessing.to_dict(), sort_keys=True).encode())
    if isinstance(images, torch.Tensor):
        _sha256_tensor(h, images)
    elif images.streamed:
        h.update(images.fingerprint().encode())
    else:
        _sha256_tensor(h, images.images)
    return h.hexdigest()[:32]


def cached_features(
    net: nn.Module,
    images: torch.Tensor | ImageSplit,
    preprocessing: Preprocessing,
    cache_dir: str | Path | None = None,
) -> tuple[torch.Tensor, Path, bool]:
    """The backbone's features of ``images`` (a tensor, or a split in memory or streamed),
    from the cache or computed and stored.

    Returns:
        ``(features, cache file, hit)``.

    Shape:
        ``(N, C, H, W) uint8 -> (N, ...) float32`` (``forward_features``'s output).
    """
    folder = Path(cache_dir or default_cache_dir()) / "features"
    path = folder / f"{feature_key(net, preprocessing, images)}.safetensors"
    if path.is_file():
        try:
            return load_safetensors(path.read_bytes())["features"], path, True
        except (SafetensorError, KeyError, OSError):
            pass  # a damaged entry is recomputed and replaced
    features = compute_logits(_Backbone(net), images, preprocessing)
    atomic_write_bytes(path, save_safetensors({"features": features.contiguous()}))
    return features, path, False


def feature_training(
    net: nn.Module,
    splits: DatasetSplits,
    preprocessing: Preprocessing,
    config: TrainConfig,
    cache_dir: str | Path | None = None,
    log: bool = True,
) -> tuple[nn.Module, FeatureSplits, _AsIs, TrainConfig]:
    """What the Trainer gets instead of (net, splits, preprocessing, config) for
    ``--cache-features``: the head over cached features of the train and validation splits.

    Raises:
        ConfigError: a backbone parameter is not frozen.
    """
    from cnnlab.training.freezing import backbone_layers

    backbone = set(backbone_layers(net))
    trainable = [
        n for n, p in net.named_parameters() if p.requires_grad and n.rsplit(".", 1)[0] in backbone
    ]
    if trainable:
        raise ConfigError(
            f"expected a frozen backbone with --cache-features, received trainable {trainable}"
        )
    sets = {}
    for name in ("train", "val"):
        split = getattr(splits, name)
        if split is None:
            sets[name] = None
            continue
        features, path, hit = cached_features(net, split, preprocessing, cache_dir)
        sets[name] = FeatureSet(features, split.labels)
        if log:
            state = "reused" if hit else "computed and stored"
            print(
                f"features of {len(split)} {name} images {state}: {path}",
                file=sys.stderr,
                flush=True,
            )
    config = dataclasses.replace(config, channels_last=False)  # features are not images
    return HeadOnFeatures(net), FeatureSplits(sets["train"], sets["val"]), _AsIs(), config
