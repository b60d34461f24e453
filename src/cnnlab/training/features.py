"""Cached-feature head training: with a frozen backbone, compute its features once, keep them
on disk, and train only the head on them (seed 002's recipe for small data).

Cached features live in ``<cache>/features/<key>.safetensors``; the key hashes the backbone's
weights and buffers, the preprocessing and the images (for a streamed folder: its files, their
sizes and modification times, and their conversion), so a cache entry is reused by any run with
the same three and never by another. Features are computed in one pass over a split, streamed
splits batch by batch, and held in memory (``N x`` the backbone's feature size, float32).

:func:`feature_training` gives the :class:`~cnnlab.training.loop.Trainer` the head over cached
features in place of the network over images; checkpoints stay those of the full network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
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
from cnnlab.errors import ConfigError
from cnnlab.fileio import atomic_write_bytes
from cnnlab.inference import compute_logits
from cnnlab.models._base import classifier_names
from cnnlab.training.config import TrainConfig
from cnnlab.training.freezing import backbone_layers


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
    """The preprocessing of cached features: none (they are model input already).

    ``channels`` and ``input_size`` describe one feature set as a ``(C, H, W)`` input (a flat
    vector of ``D`` values as ``1 x 1 x D``), which sizes inference batches
    (:func:`cnnlab.inference.inference_batch_size`).
    """

    def __init__(self, feature_shape: tuple[int, ...]) -> None:
        values = math.prod(feature_shape)
        self.channels = feature_shape[0] if len(feature_shape) == 3 else 1
        self.input_size = (1, values // self.channels)

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
    as_is = _AsIs(tuple(sets["train"].images.shape[1:]))
    return HeadOnFeatures(net), FeatureSplits(sets["train"], sets["val"]), as_is, config
