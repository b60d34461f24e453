"""The typed configuration of a training run (saved as the run's ``config.json``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnnlab.data.augment_spec import parse_augment
from cnnlab.errors import ConfigError, expected

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
ENGINES = ("torch", "numpy")


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
    engine: str = "torch"  # "numpy": cnnlab.scratch via cnnlab.bridge (CPU only)
    sync_bn: bool = False  # several CUDA processes: BatchNorm statistics of the global batch
    augment: str = ""  # --augment text (cnnlab.data.augment_spec); "" is none
    image_size: list[int] | None = None  # image folders: [H, W]; None: the model's input
    channels: int | None = None  # image folders: 1 or 3; None: the model's input channels
    strict: bool = False  # image folders: reject undecodable files instead of skipping them
    stream: bool | None = None  # image folders: True streams from the files; None: if too large
    workers: int | None = None  # image folders: decoding processes; None: min(4, cores)
    classes: list[str] | None = None  # keep only these classes (cnnlab.data.selection)
    per_class: int | None = None  # ... and this many training examples of each (seeded)
    finetune_from: str | None = None  # transfer: the run or checkpoint the weights come from
    freeze: str = "none"  # transfer: cnnlab.training.freezing spec
    lr_backbone: float | None = None  # transfer: learning rate of the trainable backbone layers
    cache_features: bool = False  # transfer: train the head on cached backbone features

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
        _choice("engine", self.engine, ENGINES)
        if self.engine == "numpy" and self.device not in ("auto", "cpu"):
            raise ConfigError(
                f"expected device auto or cpu with engine numpy, received device={self.device!r}"
            )
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
        parse_augment(self.augment)  # raises on unknown names and impossible values
        _validate_selection_and_transfer(self)
        if self.image_size is not None:
            self.image_size = list(self.image_size)
            if len(self.image_size) != 2 or not all(
                isinstance(v, int) and v >= 1 for v in self.image_size
            ):
                raise ConfigError(
                    f"expected image_size [H, W] of whole numbers >= 1, "
                    f"received image_size={self.image_size!r}"
                )
        if self.stream not in (None, True, False):
            raise ConfigError(expected("stream true, false or unset", stream=self.stream))
        workers = self.workers
        if workers is not None and (type(workers) is not int or workers < 0):
            raise ConfigError(expected("a whole number of workers >= 0", workers=workers))
        if self.sync_bn not in (True, False):
            raise ConfigError(expected("sync_bn true or false", sync_bn=self.sync_bn))
        if self.channels not in (None, 1, 3):
            raise ConfigError(
                f"expected channels 1 (grey-scale) or 3 (RGB), received channels={self.channels!r}"
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


def _validate_selection_and_transfer(config: TrainConfig) -> None:
    """--classes/--per-class and the fine-tuning options (cnnlab.transfer); imports torch-using
    modules only when those options are set (``import cnnlab.cli`` stays torch-free)."""
    if config.classes is not None:
        from cnnlab.data.selection import parse_classes

        config.classes = parse_classes(config.classes)
    if config.per_class is not None:
        _positive_int("per_class", config.per_class)
    if config.freeze != "none":
        from cnnlab.training.freezing import parse_freeze

        parse_freeze(config.freeze)
    if config.finetune_from is None and (
        config.freeze != "none" or config.cache_features or config.lr_backbone is not None
    ):
        raise ConfigError(
            "expected freeze, cache_features and lr_backbone only when fine-tuning a trained "
            f"run, received freeze={config.freeze!r}, cache_features={config.cache_features}, "
            f"lr_backbone={config.lr_backbone} without finetune_from"
        )
    lr_b = config.lr_backbone
    if lr_b is not None and not (
        isinstance(lr_b, (int, float)) and math.isfinite(lr_b) and lr_b > 0
    ):
        raise ConfigError(f"expected a finite lr_backbone > 0, received lr_backbone={lr_b!r}")
    if config.cache_features:
        if getattr(config, "augment", ""):
            raise ConfigError(
                "expected no --augment with --cache-features (cached features of unaugmented "
                f"images would be stale), received augment={config.augment!r}"
            )
        if config.freeze not in ("all", "head-only") or lr_b is not None:
            raise ConfigError(
                "expected a frozen backbone (--freeze all or --head-only, no --lr-backbone) with "
                f"--cache-features, received freeze={config.freeze!r}, lr_backbone={lr_b}"
            )
