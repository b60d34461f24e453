"""Predicting the classes of new image files with a trained run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.images import DEFAULT_MAX_MEGAPIXELS, load_image
from cnnlab.errors import ConfigError, expected
from cnnlab.export.runtime import is_onnx_path, load_onnx_run
from cnnlab.inference import compute_logits
from cnnlab.runs import Run, as_run


@dataclass
class Prediction:
    """The top-k classes of one image, most probable first."""

    path: str
    classes: list[str]
    probabilities: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "top_k": [
                {"class": c, "probability": p} for c, p in zip(self.classes, self.probabilities)
            ],
        }

    def render(self) -> str:
        ranked = "  ".join(f"{c} {p:.2%}" for c, p in zip(self.classes, self.probabilities))
        return f"{self.path}: {ranked}"


def predict(
    run: str | Path | Run,
    images: Sequence[str | Path],
    top_k: int = 3,
    invert: bool = False,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> list[Prediction]:
    """Classify image files (PNG/JPEG/BMP, any size or mode).

    Each image is converted exactly as the run's training data was (channels, size, then the
    run's padding and normalisation); ``invert`` turns dark-on-light pictures into MNIST's
    light-on-dark, and is never applied unless asked. ``max_megapixels`` is the pixel budget
    of one decoded image (:func:`cnnlab.data.images.load_image`).
    """
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, received top_k={top_k}")
    if not images:
        raise ConfigError("expected at least one image file, received none")
    if not max_megapixels > 0:
        raise ConfigError(expected("a positive --max-megapixels", max_megapixels=max_megapixels))
    if is_onnx_path(run):  # an exported graph, run by onnxruntime (cnnlab.export)
        run = load_onnx_run(run)
    run = as_run(run)
    prep = run.preprocessing
    size, budget = prep.image_size, max_megapixels
    batch = torch.stack([load_image(p, prep.channels, size, invert, budget) for p in images])
    probabilities = compute_logits(run.model, batch, prep).softmax(1)
    top = probabilities.topk(min(top_k, len(run.classes)), dim=1)
    return [
        Prediction(str(path), [run.classes[i] for i in idx.tolist()], values.tolist())
        for path, values, idx in zip(images, top.values, top.indices)
    ]
