"""What a run needs from its data besides the tensors: folder options and augmentation.

Both are stored with the run (``meta["data_options"]``, ``meta["augment"]`` and, for PCA
colour augmentation, ``meta["augment_pca"]``) so that ``--resume``, ``evaluate`` and
``predict`` reproduce them exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.data.augment import Augmenter, fit_pca, pca_from_dict, pca_to_dict
from cnnlab.data.augment_spec import parse_augment
from cnnlab.data.dataset import ImageDataset
from cnnlab.data.datasets import is_named_dataset
from cnnlab.registry import get_model_entry
from cnnlab.training.config import TrainConfig


def resolve_data_spec(spec: str) -> str:
    """A catalogue name unchanged; a folder as an absolute path (the run works from anywhere)."""
    if is_named_dataset(spec) or not Path(spec).is_dir():
        return spec
    return str(Path(spec).resolve())


def folder_options(config: TrainConfig) -> dict[str, Any]:
    """``load_dataset`` keyword arguments for the run's data: for an image folder, the size
    and channels (default: the model's input) and strictness; nothing for named datasets
    (where passing folder options is an error ``load_dataset`` reports)."""
    if is_named_dataset(config.data) or not Path(config.data).is_dir():
        options: dict[str, Any] = {}
        if config.image_size is not None:
            options["image_size"] = config.image_size
        if config.channels is not None:
            options["channels"] = config.channels
        if config.strict:
            options["strict"] = True
        return options
    default = get_model_entry(config.model).default_input  # (C, H, W)
    return {
        "image_size": list(config.image_size or default[1:]),
        "channels": config.channels or default[0],
        "strict": config.strict,
    }


def build_augmenter(
    config: TrainConfig, train: ImageDataset, saved_meta: dict[str, Any] | None = None
) -> tuple[Augmenter | None, dict[str, Any]]:
    """The run's augmenter and the metadata that describes it.

    PCA colour augmentation is fitted on the training split once; a resumed run reuses the
    eigenvectors saved in its ``meta`` instead of refitting.

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
        pca = pca_from_dict(saved) if saved else fit_pca(train.images)
        meta["augment_pca"] = pca_to_dict(pca)
    return Augmenter(spec, pca), meta
