"""The typed configuration of a training run (saved as the run's ``config.json``).

Each field carries its own documentation: ``metadata["help"]`` says what it does, and
``metadata["flag"]`` (a :class:`Flag`, or None) how it is given on the command line.
``cnnlab.cli`` generates the ``train`` and ``finetune`` options from these, so a field's help
text and default live in this file only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnnlab.data.augment_spec import CROP_MODES, TTA_MODES, parse_augment
from cnnlab.errors import ConfigError, expected

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
ENGINES = ("torch", "numpy")
PRECISIONS = ("fp32", "bf16", "fp16")  # cnnlab.training.precision
#: TTA of the test evaluation after training: the modes that need no crop size.
TEST_TTA_MODES = tuple(mode for mode in TTA_MODES if mode not in CROP_MODES)

TRAINING_COMMANDS = ("train", "finetune")


@dataclass(frozen=True)
class Flag:
    """How a :class:`TrainConfig` field is given on the command line (read by ``cnnlab.cli``).

    Attributes:
        name: the option, e.g. ``--batch-size``; its value lands in the field of that name.
        commands: the commands that take it.
        parse: turns the option's text into the field's value; None: a switch without a value
            (``--strict``) that sets the field to True.
        choices: the accepted values (checked by the parser and listed in ``--help``).
        metavar: the value's name in ``--help``.
        default_help: the default in words, where the default value alone says too little
            (``None``: the model's input).
    """

    name: str
    commands: tuple[str, ...] = TRAINING_COMMANDS
    parse: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    default_help: str | None = None


def about(help: str, flag: Flag | None = None) -> dict[str, Any]:
    """The metadata of a :class:`TrainConfig` field: its help text and command-line flag
    (None: the commands take it otherwise, e.g. as a positional argument, or not at all)."""
    return {"help": help, "flag": flag}


def parse_image_size(text: str) -> list[int]:
    """``--image-size`` text: ``S`` (a square), ``H,W`` or ``HxW`` in pixels.

    Raises:
        ConfigError: not one or two whole numbers >= 1.
    """
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise ConfigError(f"expected SIZE or H,W in pixels, received {text!r}")
    return values


def parse_milestones(text: str) -> list[int]:
    """``--milestones`` text: epochs, comma-separated, e.g. ``91,136``.

    Raises:
        ConfigError: not whole numbers.
    """
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"expected epochs E1,E2,... (whole numbers), received {text!r}") from None


@dataclass
class TrainConfig:
    """Everything that determines a training run.

    The defaults are the recipe ``cnnlab train lenet5 --data mnist`` uses: Adam with a
    one-cycle schedule peaking at 1e-2, batch 128, 3 epochs, 10% of the training set held out
    for validation. On MNIST it reaches 99% test accuracy in 3 epochs (BENCHMARKS.md has the
    measured accuracies and seconds). Each field's ``metadata`` holds its help text and its
    command-line :class:`Flag` (see :func:`about`).
    """

    model: str = field(
        default="lenet5",
        metadata=about(
            "registered model name (see `cnnlab models`), path/to/file.py:callable, or the "
            "class of an nn.Module given to cnnlab.fit (`cnnlab train MODEL`)"
        ),
    )
    model_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata=about("model options, e.g. {'activation': 'tanh'} (`--model-option KEY=VALUE`)"),
    )
    data: str = field(
        default="mnist",
        metadata=about("dataset: mnist, fashion-mnist, cifar10 or an image folder (`--data`)"),
    )
    recipe: str | None = field(
        default=None,
        metadata=about(
            "the named recipe the run started from (`cnnlab train --recipe NAME`, see "
            "`cnnlab recipes`); None: options given one by one"
        ),
    )
    epochs: int = field(default=3, metadata=about("epochs", Flag("--epochs", parse=int)))
    batch_size: int = field(
        default=128, metadata=about("mini-batch size", Flag("--batch-size", parse=int))
    )
    optimizer: str = field(
        default="adam",
        metadata=about("optimizer", Flag("--optimizer", parse=str, choices=OPTIMIZERS)),
    )
    lr: float = field(
        default=1e-2, metadata=about("(peak) learning rate", Flag("--lr", parse=float))
    )
    momentum: float = field(
        default=0.9,
        metadata=about(
            "momentum of the momentum and nesterov optimizers", Flag("--momentum", parse=float)
        ),
    )
    weight_decay: float = field(
        default=0.0,
        metadata=about("weight decay (decoupled for adamw)", Flag("--weight-decay", parse=float)),
    )
    schedule: str = field(
        default="onecycle",
        metadata=about("learning-rate schedule", Flag("--schedule", parse=str, choices=SCHEDULES)),
    )
    step_epochs: int = field(
        default=1,
        metadata=about("step schedule: decay every N epochs", Flag("--step-epochs", parse=int)),
    )
    step_gamma: float = field(
        default=0.5,
        metadata=about(
            "step and multistep schedules: decay factor", Flag("--step-gamma", parse=float)
        ),
    )
    milestones: list[int] | None = field(
        default=None,
        metadata=about(
            "multistep schedule: the epochs after which the learning rate decays, e.g. 91,136",
            Flag("--milestones", parse=parse_milestones, metavar="E1,E2", default_help="none"),
        ),
    )
    label_smoothing: float = field(
        default=0.0,
        metadata=about("label smoothing of the loss", Flag("--label-smoothing", parse=float)),
    )
    val_split: float = field(
        default=0.1,
        metadata=about(
            "share of training data held out for validation", Flag("--val-split", parse=float)
        ),
    )
    seed: int = field(
        default=0,
        metadata=about(
            "random seed: weights, shuffling, held-out split", Flag("--seed", parse=int)
        ),
    )
    device: str = field(
        default="auto",
        metadata=about(
            "auto (CUDA when present), cpu, cuda or cuda:N", Flag("--device", parse=str)
        ),
    )
    monitor: str = field(
        default="val_accuracy",
        metadata=about(
            "metric that picks the best checkpoint", Flag("--monitor", parse=str, choices=MONITORS)
        ),
    )
    early_stopping: int = field(
        default=0,
        metadata=about(
            "stop after PATIENCE epochs without improvement of --monitor",
            Flag("--early-stopping", parse=int, metavar="PATIENCE", default_help="0, off"),
        ),
    )
    min_steps: int = field(
        default=0,
        metadata=about(
            "train at least N optimiser steps: with few examples (few batches per epoch) the "
            "epochs are raised to reach N, and a line says so",
            Flag(
                "--min-steps",
                parse=int,
                metavar="N",
                default_help="0 (off) for train; 200 for finetune unless --epochs is given",
            ),
        ),
    )
    checkpoint_every: int = field(
        default=0,
        metadata=about(
            "also write the resumable checkpoint every STEPS steps",
            Flag(
                "--checkpoint-every",
                parse=int,
                metavar="STEPS",
                default_help="0, at epoch ends only",
            ),
        ),
    )
    channels_last: bool = field(
        default=True,
        metadata=about(
            "channels-last memory layout on CPU, faster convolutions (not on the command line)"
        ),
    )
    engine: str = field(
        default="torch",
        metadata=about(
            "torch (autograd) or numpy (cnnlab.scratch via cnnlab.bridge, hand-written "
            "backward; CPU only)",
            Flag("--engine", parse=str, choices=ENGINES),
        ),
    )
    sync_bn: bool = field(
        default=False,
        metadata=about(
            "several CUDA processes: BatchNorm statistics over the global batch "
            "(SyncBatchNorm; refused on the CPU, which torch cannot sync)",
            Flag("--sync-bn", default_help="off"),
        ),
    )
    precision: str = field(
        default="fp32",
        metadata=about(
            "number format of the forward pass: fp32, or autocast to bf16 (CPU, CUDA) or fp16 "
            "(CUDA, loss-scaled); the torch engine only (cnnlab.training.precision)",
            Flag("--precision", parse=str, choices=PRECISIONS),
        ),
    )
    augment: str = field(
        default="",
        metadata=about(
            "random augmentation of training batches, Keras ImageDataGenerator style, e.g. "
            "rotation_range=40,width_shift_range=0.2,zoom_range=0.2,horizontal_flip "
            "(see cnnlab.data.augment_spec)",
            Flag("--augment", parse=str, metavar="SPEC", default_help="none"),
        ),
    )
    test_tta: str = field(
        default="none",
        metadata=about(
            "test-time augmentation of the test evaluation after training (the result line "
            "and --json, which also give the single-view accuracy): none, flip or shift "
            "(cnnlab.evaluation.tta; crops: cnnlab evaluate --tta 10crop --crop-size N)",
            Flag("--test-tta", parse=str, choices=TEST_TTA_MODES),
        ),
    )
    image_size: list[int] | None = field(
        default=None,
        metadata=about(
            "image folders: resize every image to SIZE or H,W",
            Flag(
                "--image-size",
                parse=parse_image_size,
                metavar="H,W",
                default_help="the model's input",
            ),
        ),
    )
    channels: int | None = field(
        default=None,
        metadata=about(
            "image folders: 1 grey-scale or 3 RGB",
            Flag(
                "--channels",
                parse=int,
                choices=(1, 3),
                default_help="the model's input channels",
            ),
        ),
    )
    strict: bool = field(
        default=False,
        metadata=about(
            "image folders: reject files that are not decodable images",
            Flag("--strict", default_help="skip them"),
        ),
    )
    stream: bool | None = field(
        default=None,
        metadata=about(
            "image folders: decode the images batch by batch from their files instead of "
            "holding them in memory",
            Flag(
                "--stream",
                commands=(*TRAINING_COMMANDS, "evaluate"),
                default_help="only when they would not fit in a quarter of the RAM",
            ),
        ),
    )
    workers: int | None = field(
        default=None,
        metadata=about(
            "image folders: processes decoding images",
            Flag(
                "--workers",
                commands=(*TRAINING_COMMANDS, "evaluate"),
                parse=int,
                metavar="N",
                default_help="min(4, cores); 0: none",
            ),
        ),
    )
    classes: list[str] | None = field(
        default=None,
        metadata=about(
            "keep only these classes (names, comma-separated), e.g. 0,1,2,3,4",
            Flag("--classes", parse=str, default_help="all"),
        ),
    )
    per_class: int | None = field(
        default=None,
        metadata=about(
            "keep N training examples of each class (drawn with --seed)",
            Flag("--per-class", parse=int, metavar="N", default_help="all"),
        ),
    )
    finetune_from: str | None = field(
        default=None,
        metadata=about(
            "transfer: the run or checkpoint the weights come from (`cnnlab finetune RUN`)"
        ),
    )
    freeze: str = field(
        default="none",
        metadata=about(
            "what stops learning: none, all (the backbone), N (the first N layers with "
            "parameters) or up-to:LAYER (a layer name from `cnnlab summary`)",
            Flag("--freeze", commands=("finetune",), parse=str),
        ),
    )
    lr_backbone: float | None = field(
        default=None,
        metadata=about(
            "learning rate of the trainable backbone layers",
            Flag(
                "--lr-backbone",
                commands=("finetune",),
                parse=float,
                metavar="X",
                default_help="--lr",
            ),
        ),
    )
    cache_features: bool = field(
        default=False,
        metadata=about(
            "compute the frozen backbone's features once (cached on disk), train the head on "
            "them; implies --freeze all",
            Flag("--cache-features", commands=("finetune",), default_help="off"),
        ),
    )

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
        _choice("precision", self.precision, PRECISIONS)
        _choice("test_tta", self.test_tta, TEST_TTA_MODES)
        if self.engine == "numpy" and self.precision != "fp32":
            raise ConfigError(
                "expected precision fp32 with engine numpy (it computes in float32), "
                f"received precision={self.precision!r}"
            )
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
        if type(self.min_steps) is not int or self.min_steps < 0:
            raise ConfigError(
                expected("a whole number of min_steps >= 0", min_steps=self.min_steps)
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
        _validate_milestones(self)
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
    def from_dict(cls, data: Any, source: str = "the training options") -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (a saved ``config.json``): unknown keys and
        values of another type than the field's are an error (missing keys take the default).

        Args:
            source: where ``data`` comes from, for the message (e.g. the file).

        Raises:
            ConfigError: not an object, an unknown key, or a mistyped value (one line).
        """
        if not isinstance(data, dict):
            raise ConfigError(
                f"expected the training options as a JSON object, received "
                f"{type(data).__name__} in {source}"
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names, key=str)
        if unknown:
            raise ConfigError(
                f"expected training options among {sorted(names)}, received {unknown} in {source}"
            )
        for f in fields(cls):
            if f.name in data and not _has_type(data[f.name], str(f.type)):
                value = repr(data[f.name])
                value = value if len(value) <= 60 else value[:57] + "..."
                raise ConfigError(
                    f"expected training option {f.name!r} to be {f.type}, received "
                    f"{f.name}={value} in {source}"
                )
        return cls(**data)


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as ``int``, ``list[int] | None`` or
    ``dict[str, Any]`` (an int counts as a float; a bool as neither)."""
    for option in annotation.split(" | "):
        if option == "None" and value is None:
            return True
        if option == "bool" and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if option == "int" and isinstance(value, int):
            return True
        if option == "float" and isinstance(value, (int, float)):
            return True
        if option == "str" and isinstance(value, str):
            return True
        if option.startswith("dict[") and isinstance(value, dict):
            return True
        if option.startswith("list[") and isinstance(value, list):
            item = option[5:-1]
            if all(_has_type(v, item) for v in value):
                return True
    return False


def _positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a whole number >= 1, received {name}={value!r}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"expected {name} in {', '.join(choices)}, received {name}={value!r}")


def _validate_milestones(config: TrainConfig) -> None:
    """The multistep schedule needs ascending epochs >= 1; other schedules take none."""
    milestones = config.milestones
    if config.schedule != "multistep":
        if milestones is not None:
            raise ConfigError(
                f"expected milestones only with schedule multistep, received "
                f"milestones={milestones!r} with schedule={config.schedule!r}"
            )
        return
    if (
        not isinstance(milestones, list)
        or not milestones
        or not all(type(m) is int and m >= 1 for m in milestones)
        or milestones != sorted(set(milestones))
    ):
        raise ConfigError(
            "expected milestones of schedule multistep: ascending epochs >= 1, e.g. [91, 136], "
            f"received milestones={milestones!r}"
        )


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
