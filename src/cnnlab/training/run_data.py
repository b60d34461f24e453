"""What a run needs from its data besides the tensors: folder options and augmentation.

Both are stored with the run (``meta["data_options"]``, with ``"stream": true`` when the
folder was streamed; ``meta["augment"]`` and, for PCA colour augmentation,
``meta["augment_pca"]``) so that ``--resume``, ``evaluate`` and ``predict`` reproduce them
exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.data.augment import Augmenter, pca_from_dict, pca_of, pca_to_dict
from cnnlab.data.augment_spec import parse_augment
from cnnlab.data.dataset import DatasetSplits, ImageSplit
from cnnlab.data.datasets import is_named_dataset
from cnnlab.models import get_model_entry
from cnnlab.training.config import TrainConfig


def resolve_data_spec(spec: str) -> str:
    """A catalogue name unchanged; a folder as an absolute path (the run works from anywhere)."""
    if is_named_dataset(spec) or not Path(spec).is_dir():
        return spec
    return str(Path(spec).resolve())


def folder_options(config: TrainConfig, saved_meta: dict[str, Any] | None = None) -> dict[str, Any]:
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
    default = get_model_entry(config.model).default_input  # (C, H, W)
    options = {
        "image_size": list(config.image_size or default[1:]),
        "channels": config.channels or default[0],
        "strict": config.strict,
    }
    stream = ((saved_meta or {}).get("data_options") or {}).get("stream", config.stream)
    if stream is not None:
        options["stream"] = stream
    return options


def recorded_data_options(options: dict[str, Any], splits: DatasetSplits) -> dict[str, Any]:
    """The data options stored with the run: ``options`` plus ``"stream": true`` when the
    folder streamed (asked for, or chosen because it was too large for memory), so every
    command that reloads the run's data streams it too."""
    return {**options, "stream": True} if splits.train.streamed else options


def build_augmenter(
    config: TrainConfig, train: ImageSplit, saved_meta: dict[str, Any] | None = None
) -> tuple[Augmenter | None, dict[str, Any]]:
    """The run's augmenter and the metadata that describes it.

    PCA colour augmentation is fitted on the training split once (on every pixel, from exact
    sums: an in-memory and a streamed split give the same eigenvectors); a resumed run reuses
    the eigenvectors saved in its ``meta`` instead of refitting.

    Returns:
        ``(augmenter or None, meta entries)``.
    """
    spec = parse_augment(config.augment)
    if not spec.enabled:
        return None, {}
    meta: dict[str, Any] = {"augment": spec.to_string()}
    pca = None
    if spec.pca_lighting:
        saved = (saved_meta or {}).get("augment_pca")
        pca = pca_from_dict(saved) if saved else pca_of(train.pixel_moments())
        meta["augment_pca"] = pca_to_dict(pca)
    return Augmenter(spec, pca), meta
