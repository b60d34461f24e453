"""The typed configuration of a training run (saved as the run's ``config.json``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnnlab.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


@dataclass
class TrainConfig:
    """Everything that determines a training run.

    The defaults are the recipe ``cnnlab train lenet5 --data mnist`` uses: Adam with a
    one-cycle schedule peaking at 1e-2, batch 128, 3 epochs, 10% of the training set held out
    for validation. On MNIST it reaches 99% test accuracy in 3 epochs (BENCHMARKS.md has the
    measured accuracies and seconds).
    """

    model: str = "lenet5"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "mnist"
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    step_epochs: int = 1
    step_gamma: float = 0.5
    label_smoothing: float = 0.0
    val_split: float = 0.1
    seed: int = 0
    device: str = "auto"
    monitor: str = "val_accuracy"
    early_stopping: int = 0
    checkpoint_every: int = 0
    channels_last: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject impossible values with one clear line each.

        Raises:
            ConfigError: naming the option, the value received and what is expected.
        """
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("step_epochs", self.step_epochs)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("monitor", self.monitor, MONITORS)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"expected a finite learning rate > 0, received lr={self.lr!r}")
        for name in ("momentum", "weight_decay", "label_smoothing", "step_gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"expected a finite {name} >= 0, received {name}={value!r}")
        if self.label_smoothing >= 1 or self.momentum >= 1:
            raise ConfigError(
                "expected label_smoothing and momentum below 1, received "
                f"label_smoothing={self.label_smoothing}, momentum={self.momentum}"
            )
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"expected val_split in [0, 1), received val_split={self.val_split}")
        if self.val_split == 0 and self.monitor.startswith("val_"):
            raise ConfigError(
                f"expected monitor 'loss' or 'accuracy' without a validation split, "
                f"received monitor={self.monitor!r} with val_split=0"
            )
        if self.early_stopping < 0 or self.checkpoint_every < 0:
            raise ConfigError(
                "expected early_stopping >= 0 and checkpoint_every >= 0, received "
                f"early_stopping={self.early_stopping}, checkpoint_every={self.checkpoint_every}"
            )
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ConfigError(
                f"expected device auto, cpu or cuda[:N], received device={self.device!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"expected training options {sorted(names)}, received {unknown}")
        return cls(**data)


def _positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a whole number >= 1, received {name}={value!r}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"expected {name} in {', '.join(choices)}, received {name}={value!r}")
