"""What the explorer looks at: a trained run, or a registered (or file) model, untrained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.analysis import check_input, is_file_spec, load_model_from_file
from cnnlab.data.digits import is_digit_run
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import ConfigError, expected
from cnnlab.models import create_model
from cnnlab.runs import Run, is_run_or_checkpoint, load_run


@dataclass
class Target:
    """A model with everything needed to feed it images and name its outputs.

    Attributes:
        model: the network, in eval mode, on the CPU.
        name: its registered name (or the file spec / class name).
        classes: class names, index = output.
        preprocessing: how a stored-size ``uint8`` image becomes model input.
        source: what was given on the command line (run directory, checkpoint or name).
        run: the loaded run, None for an untrained model.
    """

    model: nn.Module
    name: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    source: str
    run: Run | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` the network takes (padding included)."""
        prep = self.preprocessing
        return (prep.channels, *prep.input_size)

    @property
    def digits(self) -> bool:
        """Whether drawings get MNIST-style preprocessing: grey-scale images of the ten digits."""
        return is_digit_run(self.classes, self.preprocessing.channels)

    @property
    def trained(self) -> bool:
        return self.run is not None


def load_target(spec: str | Path, checkpoint: str = "best", seed: int = 0) -> Target:
    """A run directory or ``.safetensors`` checkpoint (trained weights), or a registered model
    name or ``path/to/file.py:callable`` (weights initialised from ``seed``).

    An untrained model takes its default input, pixels scaled to 0..1 (mean 0, std 1 of the
    ``[0, 1]`` scale), and its classes are named ``0 .. N-1``.

    Raises:
        CheckpointError: a path that is not a run or checkpoint, or unreadable weights.
        ModelError: an unknown model name (close names suggested) or a model that cannot be
            built or run on its default input.
        ConfigError: a file model without ``default_input_shape``.
    """
    text = str(spec)
    if is_run_or_checkpoint(text) or Path(text).exists():
        run = load_run(text, checkpoint=checkpoint)
        name = str(run.meta.model.name)
        return Target(run.model, name, run.classes, run.preprocessing, text, run)
    torch.manual_seed(seed)
    model = load_model_from_file(text) if is_file_spec(text) else create_model(text)
    shape = getattr(model, "default_input_shape", None)
    if shape is None or len(shape) != 3:
        raise ConfigError(
            expected(
                "a model with default_input_shape (C, H, W) or a run directory",
                model=text,
            )
        )
    channels, height, width = (int(v) for v in shape)
    output = check_input(model, (channels, height, width))
    num_classes = int(output[0]) if len(output) == 1 else 0
    if num_classes < 1:
        raise ConfigError(
            expected("a classifier with one output per class", model=text, output=list(output))
        )
    prep = Preprocessing(
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        image_size=(height, width),
        input_size=(height, width),
        channels=channels,
    )
    classes = tuple(str(i) for i in range(num_classes))
    return Target(model.eval(), text, classes, prep, text)
