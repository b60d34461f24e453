"""What is exported: a trained run (directory or checkpoint) or an untrained registered model,
with its preprocessing, class names and the images its export is verified on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import ConfigError, DataError
from cnnlab.models import create_model, get_model_entry
from cnnlab.runs import Run, is_run_or_checkpoint, load_run


@dataclass
class ExportSource:
    """A network ready to export.

    Attributes:
        model: the network, in eval mode, on the CPU.
        preprocessing: how its images become network input (identity scaling for an
            untrained model: no statistics to normalise with).
        classes: class names, index = logit position.
        spec: the registry spec ``{"name", "num_classes", "in_channels", "kwargs"}``.
        description: ``"run runs/lenet5 (best.safetensors)"`` or ``"untrained lenet5"``.
        run: the loaded run, None for an untrained model.
    """

    model: nn.Module
    preprocessing: Preprocessing
    classes: tuple[str, ...]
    spec: dict[str, Any]
    description: str
    run: Run | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])


def _looks_like_path(text: str) -> bool:
    path = Path(text)
    return path.exists() or path.suffix == ".safetensors" or len(path.parts) > 1


def resolve_source(
    source: str | Path,
    *,
    checkpoint: str = "best",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    model_options: dict[str, Any] | None = None,
) -> ExportSource:
    """A run directory or checkpoint (its weights, preprocessing and classes), or a registered
    model name (untrained, at ``input_shape``, default the model's own input).

    Raises:
        CheckpointError: a missing or damaged run or checkpoint.
        ModelError: an unknown model name or an input the model cannot take.
        ConfigError: untrained-model options given with a run.
    """
    text = str(source)
    if is_run_or_checkpoint(text) or _looks_like_path(text):
        given = {
            "--input": input_shape,
            "--num-classes": num_classes,
            "--model-option": model_options,
        }
        extra = [flag for flag, value in given.items() if value]
        if extra:
            raise ConfigError(
                f"expected {', '.join(extra)} only with a model name (an untrained network), "
                f"received them with the run {text}"
            )
        run = load_run(text, checkpoint=checkpoint)
        return ExportSource(
            run.model.eval(),
            run.preprocessing,
            run.classes,
            run.meta.model.to_dict(),
            f"run {text} ({run.checkpoint.name})",
            run,
        )
    return _untrained(text, input_shape, num_classes, model_options or {})


def _untrained(
    name: str,
    input_shape: tuple[int, int, int] | None,
    num_classes: int | None,
    options: dict[str, Any],
) -> ExportSource:
    from cnnlab.analysis import check_input

    entry = get_model_entry(name)  # unknown names: one line with suggestions
    c, h, w = input_shape or entry.default_input
    model = create_model(name, num_classes=num_classes, in_channels=c, **options).eval()
    check_input(model, (c, h, w))  # too small an input: the layer and its arithmetic
    preprocessing = Preprocessing((0.0,) * c, (1.0,) * c, (h, w), (h, w), c)
    classes = tuple(str(i) for i in range(model.cnnlab_spec["num_classes"]))
    return ExportSource(model, preprocessing, classes, model.cnnlab_spec, f"untrained {name}")


def verification_images(
    source: ExportSource,
    count: int,
    data: str | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[torch.Tensor, str]:
    """``count`` images to verify the export on: spread over the run's test split (or
    ``data``'s), or random pixels for an untrained model or a run whose data cannot be loaded
    (the description says why).

    Shape:
        ``-> (count, C, H, W)`` uint8 at ``source.preprocessing.image_size``.

    Raises:
        DataError, ConfigError: ``data`` was given and cannot be loaded or does not fit.
    """
    prep = source.preprocessing
    if source.run is not None and data is None and source.run.data is None:
        what = "random pixels; the checkpoint names no dataset"
    elif source.run is not None:
        from cnnlab.evaluation.inputs import DataSelection, load_split

        try:
            spec, split = load_split(source.run, DataSelection(data=data), cache_dir)
            picked = torch.linspace(0, len(split) - 1, min(count, len(split))).round().long()
            images = split.take(picked)
            expected_shape = (prep.channels, *prep.image_size)
            if images.shape[0] >= 2 and tuple(images.shape[1:]) == expected_shape:
                return images, f"test split of {spec}"
            reason = f"{spec}'s test split has {len(split)} images of {list(images.shape[1:])}"
        except (DataError, ConfigError) as exc:
            if data is not None:
                raise
            reason = str(exc)
        what = f"random pixels; the run's test split is unavailable: {reason}"
    else:
        what = "random pixels (untrained model)"
    generator = torch.Generator().manual_seed(0)
    shape = (max(count, 2), prep.channels, *prep.image_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator), what
