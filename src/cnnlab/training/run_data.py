"""What a run needs from its data besides the tensors: folder options and augmentation.

Both are stored with the run (:class:`~cnnlab.runs.RunMeta`'s ``data_options``, with
``"stream": true`` when the folder was streamed; ``augment`` and, for PCA colour augmentation,
``augment_pca``) so that ``--resume``, ``evaluate`` and ``predict`` reproduce them exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.analysis.source import is_file_spec
from cnnlab.data.augment import Augmenter, pca_from_dict, pca_of, pca_to_dict
from cnnlab.data.augment_spec import parse_augment
from cnnlab.data.dataset import DatasetSplits, ImageSplit
from cnnlab.data.datasets import is_named_dataset
from cnnlab.errors import ConfigError
from cnnlab.models import get_model_entry, list_models
from cnnlab.runs import RunMeta
from cnnlab.training.config import TrainConfig


def resolve_data_spec(spec: str) -> str:
    """A catalogue name unchanged; a folder as an absolute path (the run works from anywhere)."""
    if is_named_dataset(spec) or not Path(spec).is_dir():
        return spec
    return str(Path(spec).resolve())


def folder_options(config: TrainConfig, saved: RunMeta | None = None) -> dict[str, Any]:
    """``load_dataset`` keyword arguments for the run's data: for an image folder, the size
    and channels (default: the model's input), strictness, and streaming when asked (or when
    the resumed run streamed); only the options given for named datasets (where folder options
    are an error ``load_dataset`` reports)."""
    if is_named_dataset(config.data) or not Path(config.data).is_dir():
        given = {
            "image_size": config.image_size,
            "channels": config.channels,
            "strict": config.strict or None,
            "stream": config.stream,
        }
        return {name: value for name, value in given.items() if value is not None}
    default = _default_input(config)  # (C, H, W)
    options = {
        "image_size": list(config.image_size or default[1:]),
        "channels": config.channels or default[0],
        "strict": config.strict,
    }
    stream = (saved.data_options if saved else {}).get("stream", config.stream)
    if stream is not None:
        options["stream"] = stream
    return options


def _default_input(config: TrainConfig) -> tuple[int, int, int]:
    """The input shape images of a folder are converted to when ``--image-size`` or
    ``--channels`` is not given: the registered model's (a model of the user's has none).

    Raises:
        ConfigError: a model of the user's without both options.
        ModelError: an unknown model name.
    """
    if config.image_size is not None and config.channels is not None:
        return (config.channels, *config.image_size)
    own = is_file_spec(config.model) or "." in config.model  # a file, or a module's class
    if own and config.model not in list_models():
        raise ConfigError(
            f"expected --image-size and --channels for an image folder with a model of your own "
            f"(cnnlab knows the input of registered models only), received model="
            f"{config.model!r} with image_size={config.image_size}, channels={config.channels}"
        )
    return get_model_entry(config.model).default_input


def recorded_data_options(options: dict[str, Any], splits: DatasetSplits) -> dict[str, Any]:
    """The data options stored with the run: ``options`` plus ``"stream": true`` when the
    folder streamed (asked for, or chosen because it was too large for memory), so every
    command that reloads the run's data streams it too."""
    return {**options, "stream": True} if splits.train.streamed else options


def build_augmenter(
    config: TrainConfig, train: ImageSplit, saved: RunMeta | None = None
) -> Augmenter | None:
    """The run's augmenter (None: no augmentation).

    PCA colour augmentation is fitted on the training split once (on every pixel, from exact
    sums: an in-memory and a streamed split give the same eigenvectors); a resumed run reuses
    the eigenvectors saved in its metadata (``saved``) instead of refitting.
    """
    spec = parse_augment(config.augment)
    if not spec.enabled:
        return None
    pca = None
    if spec.pca_lighting:
        kept = saved.augment_pca if saved else None
        pca = pca_from_dict(kept) if kept else pca_of(train.pixel_moments())
    return Augmenter(spec, pca)


def recorded_augment(augmenter: Augmenter | None) -> tuple[str | None, dict[str, Any] | None]:
    """What the run records of its augmenter: the ``--augment`` text and the PCA
    eigenvalues and eigenvectors (``RunMeta.augment``, ``RunMeta.augment_pca``)."""
    if augmenter is None:
        return None, None
    pca = None if augmenter.pca is None else pca_to_dict(augmenter.pca)
    return augmenter.spec.to_string(), pca
