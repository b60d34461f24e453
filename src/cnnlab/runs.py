"""The run directory's read side: its file names, its metadata and loading a trained model.

A run directory (written by :func:`cnnlab.fit`) holds::

    config.json        {"config": the TrainConfig, "meta": the RunMeta}
    history.json       per-epoch metrics (Keras-style dict), rewritten after every epoch
    history.csv        the same, one row per epoch
    last.safetensors   resumable checkpoint (model, optimizer, schedule, callbacks, RNG, position)
    best.safetensors   weights of the best epoch by the monitored metric
    curves.png         training vs validation curves

Every checkpoint carries the run's :class:`RunMeta` as a JSON object (plus the epoch, step
and monitored score it was written at), so a checkpoint file alone describes its model.
:func:`load_run` turns a run directory or a checkpoint file into a :class:`Run`; this is the
one way to do that, and it needs nothing of the training machinery.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.analysis.source import file_sha256, load_model_from_file
from cnnlab.data.datasets import is_named_dataset
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import (
    CheckpointError,
    ConfigError,
    ModelError,
    RunFileWarning,
    describe_missing,
    expected,
    shown_path,
)
from cnnlab.models import create_model
from cnnlab.models.loading import built_with_weights
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint
from cnnlab.training.freezing import apply_freeze
from cnnlab.training.history import METRICS, History

CONFIG_FILE = "config.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
LAST = "last.safetensors"
BEST = "best.safetensors"
CURVES = "curves.png"

#: The version of :class:`RunMeta`'s JSON form this cnnlab writes (a missing one reads as 1).
META_VERSION = 1

_MISSING = object()


# ---- reading typed fields ----------------------------------------------------------------------
def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(_is_int(v) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_pca(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("eigenvalues"), list)
        and isinstance(value.get("eigenvectors"), list)
    )


def _is_class_list(value: Any) -> bool:
    return _is_str_list(value) and len(value) > 0


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _is_precision(value: Any) -> bool:
    return value in ("fp32", "bf16", "fp16")


def _is_dict_or_none(value: Any) -> bool:
    return value is None or isinstance(value, dict)


class _Fields:
    """Typed look-ups in one JSON object of run metadata; a missing or mistyped field raises
    one :class:`CheckpointError` line naming the field, what it should be and where it is."""

    def __init__(self, data: Any, source: str | Path, prefix: str = "") -> None:
        self.data, self.source, self.prefix = data, source, prefix

    def get(
        self, name: str, expected: str, check: Callable[[Any], bool], default: Any = _MISSING
    ) -> Any:
        path = f"{self.prefix}{name}"
        if name not in self.data:
            if default is _MISSING:
                raise CheckpointError(
                    f"expected run metadata field {path!r} ({expected}), received metadata "
                    f"without it in {self.source}"
                )
            return default
        value = self.data[name]
        if not check(value):
            raise CheckpointError(
                f"expected run metadata field {path!r} to be {expected}, received "
                f"{path}={_short(value)} in {self.source}"
            )
        return value

    def nested(self, name: str, what: str, default: Any = _MISSING) -> _Fields | None:
        """The fields of the object ``name`` (None when absent and ``default`` is None)."""
        data = self.get(name, f"an object with {what}", lambda v: isinstance(v, dict), default)
        return None if data is None else _Fields(data, self.source, f"{self.prefix}{name}.")


# ---- the metadata ------------------------------------------------------------------------------
#: Where a run's network comes from (:attr:`ModelSpec.source`).
MODEL_SOURCES = ("registry", "file", "module")


@dataclass(frozen=True)
class ModelSpec:
    """How to build the run's network again.

    Three sources, each rebuilt its own way by :meth:`build`:

    - ``"registry"``: a registered model, rebuilt by :func:`cnnlab.create_model` from its name
      and options (no code of the run is executed).
    - ``"file"``: ``FILE.py:CALLABLE`` (``cnnlab train mynet.py:build``); the file's absolute
      path and the SHA-256 of its content are recorded, and loading the run imports the file
      again only while its content is the same (a changed or missing file is refused).
    - ``"module"``: an ``nn.Module`` instance passed to :func:`cnnlab.fit`; ``name`` is its
      class, for reading only. Nothing can rebuild it: the run loads with ``model=`` a module
      built like the trained one (``cnnlab.load_run(path, model=MyNet())``).

    Attributes:
        name: the registered name, the ``FILE.py:CALLABLE`` as given, or the module's class.
        num_classes: classifier outputs.
        in_channels: input channels.
        kwargs: the model options it was built with.
        source: ``"registry"``, ``"file"`` or ``"module"``.
        file: the model file's absolute path (``"file"`` only).
        sha256: the model file's SHA-256 when the run started (``"file"`` only).
    """

    name: str
    num_classes: int
    in_channels: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "registry"
    file: str | None = None
    sha256: str | None = None

    @classmethod
    def of(cls, model: nn.Module) -> ModelSpec:
        """The spec of a model built by :func:`cnnlab.create_model`."""
        spec = model.cnnlab_spec
        return cls(spec["name"], spec["num_classes"], spec["in_channels"], dict(spec["kwargs"]))

    @classmethod
    def of_file(
        cls, spec: str, num_classes: int, in_channels: int, kwargs: dict[str, Any] | None = None
    ) -> ModelSpec:
        """The spec of ``FILE.py:CALLABLE``, recording the file's path and content hash.

        Raises:
            ModelError: no such file.
        """
        path = Path(spec.rpartition(":")[0])
        if not path.is_file():
            raise ModelError(expected("an existing Python file in FILE.py:CALLABLE", model=spec))
        file = str(path.resolve())
        digest = file_sha256(path)
        return cls(spec, num_classes, in_channels, dict(kwargs or {}), "file", file, digest)

    @classmethod
    def of_module(cls, model: nn.Module, num_classes: int, in_channels: int) -> ModelSpec:
        """The spec of an ``nn.Module`` instance (its class, for reading: see the class doc);
        a model built by :func:`cnnlab.create_model` keeps its registered spec."""
        if hasattr(model, "cnnlab_spec"):
            return cls.of(model)
        kind = type(model)
        return cls(f"{kind.__module__}.{kind.__qualname__}", num_classes, in_channels, {}, "module")

    @property
    def reference(self) -> str:
        """What builds this network again by name: the registered name, or
        ``/absolute/FILE.py:CALLABLE`` (a module has only its class name)."""
        if self.source == "file":
            return f"{self.file}:{self.name.rpartition(':')[2]}"
        return self.name

    def build(self, model: nn.Module | None = None) -> nn.Module:
        """A freshly initialised model of this spec (``model`` itself when given).

        Raises:
            ModelError: an unknown name or option, or a model file that fails to import.
            CheckpointError: a model file that is gone or changed, or a module passed to
                ``fit`` and no ``model`` to load it into.
        """
        if model is not None:
            return model
        if self.source == "module":
            raise CheckpointError(
                f"expected model= (a {self.name} built like the trained one, e.g. "
                f"cnnlab.load_run(path, model=...)) for a run trained on a module passed to "
                f"cnnlab.fit, received none (train FILE.py:CALLABLE to reload a run on its own)"
            )
        if self.source == "file":
            self._check_file()
            callable_name = self.name.rpartition(":")[2]
            return load_model_from_file(
                f"{self.file}:{callable_name}",
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                **self.kwargs,
            )
        return create_model(
            self.name, num_classes=self.num_classes, in_channels=self.in_channels, **self.kwargs
        )

    def _check_file(self) -> None:
        """Raises: CheckpointError: the model file is gone or its content changed since."""
        path = Path(str(self.file))
        if not path.is_file():
            raise CheckpointError(
                f"expected the model file {path} the run was trained with, received no such "
                f"file (restore it to load the run)"
            )
        digest = file_sha256(path)
        if digest != self.sha256:
            raise CheckpointError(
                f"expected {path} unchanged since the run was trained (sha256 "
                f"{str(self.sha256)[:12]}...), received a changed file (sha256 {digest[:12]}...): "
                f"restore it, or train a new run with it"
            )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "kwargs": dict(self.kwargs),
        }
        if self.source != "registry":
            data["source"] = self.source
        if self.source == "file":
            data["file"] = self.file
            data["sha256"] = self.sha256
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "run metadata") -> ModelSpec:
        """Raises: CheckpointError: not a classifier spec (the message names the field)."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise CheckpointError(
                f"expected a classifier checkpoint naming its model (run metadata field "
                f"'model' with a name), received model={_short(data)} in {source}"
            )
        f = _Fields(data, source, "model.")
        positive = "a whole number >= 1"
        origin = f.get("source", " or ".join(MODEL_SOURCES), MODEL_SOURCES.__contains__, "registry")
        is_file = origin == "file"
        is_digest = lambda v: isinstance(v, str) and len(v) == 64  # noqa: E731
        return cls(
            name=data["name"],
            num_classes=f.get("num_classes", positive, lambda v: _is_int(v) and v >= 1),
            in_channels=f.get("in_channels", positive, lambda v: _is_int(v) and v >= 1),
            kwargs=dict(f.get("kwargs", "an object", lambda v: isinstance(v, dict), {})),
            source=origin,
            file=f.get("file", "the model file's path", _is_str) if is_file else None,
            sha256=f.get("sha256", "a SHA-256 in hex", is_digest) if is_file else None,
        )


@dataclass(frozen=True)
class ClassSelection:
    """The part of the data a run was trained on (``--classes``, ``--per-class``).

    Attributes:
        classes: the classes kept, in order (None: all).
        per_class: training examples kept of each class (None: all).
    """

    classes: tuple[str, ...] | None = None
    per_class: int | None = None

    def to_dict(self) -> dict[str, Any]:
        classes = None if self.classes is None else list(self.classes)
        return {"classes": classes, "per_class": self.per_class}

    @classmethod
    def from_fields(cls, f: _Fields) -> ClassSelection:
        classes = f.get("classes", "a list of class names or null", _optional(_is_str_list), None)
        per_class = f.get(
            "per_class", "a whole number or null", _optional(lambda v: _is_int(v) and v >= 1), None
        )
        return cls(None if classes is None else tuple(classes), per_class)


@dataclass(frozen=True)
class FinetuneInfo:
    """Where a fine-tuned run's weights came from and what stayed frozen.

    Attributes:
        source: the run or checkpoint fine-tuned (``"from"`` in JSON).
        source_checkpoint: the checkpoint file the weights were read from.
        source_classes: the source's classes.
        freeze: the freeze spec (:mod:`cnnlab.training.freezing`).
        frozen_params: number of frozen parameters.
        trainable_params: number of trainable parameters.
    """

    source: str
    source_checkpoint: str
    source_classes: tuple[str, ...]
    freeze: str
    frozen_params: int
    trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "source_checkpoint": self.source_checkpoint,
            "source_classes": list(self.source_classes),
            "freeze": self.freeze,
            "frozen_params": self.frozen_params,
            "trainable_params": self.trainable_params,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> FinetuneInfo:
        text, count = "a string", "a whole number >= 0"
        is_count = lambda v: _is_int(v) and v >= 0  # noqa: E731
        return cls(
            source=f.get("from", text, _is_str),
            source_checkpoint=f.get("source_checkpoint", text, _is_str),
            source_classes=tuple(f.get("source_classes", "a list of class names", _is_str_list)),
            freeze=f.get("freeze", text, _is_str),
            frozen_params=f.get("frozen_params", count, is_count),
            trainable_params=f.get("trainable_params", count, is_count),
        )


#: How a training session's thread count was chosen (:attr:`ThreadsUsed.chosen`).
THREAD_CHOICES = ("automatic", "by hand", "launcher", "device default")


@dataclass(frozen=True)
class ThreadsUsed:
    """The torch thread count a training session computed with, and how it was chosen.

    torch's results differ in the last bits from one count to another, so a bitwise
    continuation of a run resumes it with the same count (``--threads N``).

    Attributes:
        count: torch's intra-op threads (``torch.get_num_threads()``) while training.
        chosen: ``automatic`` (as many as cores other processes left free,
            :mod:`cnnlab.threads`), ``by hand`` (``--threads N``, ``fit(threads=N)`` or
            ``OMP_NUM_THREADS``), ``launcher`` (one of several processes: the launcher's
            share of the cores) or ``device default`` (training on a GPU: torch's own count).
    """

    count: int
    chosen: str

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "chosen": self.chosen}

    def describe(self) -> str:
        """E.g. ``2 threads, chosen automatically (the cores other processes left free)``."""
        how = {
            "automatic": "chosen automatically (the cores other processes left free)",
            "by hand": "set by hand (--threads, threads= or OMP_NUM_THREADS)",
            "launcher": "the launcher's share of the cores (one of several processes)",
            "device default": "torch's default (training on a GPU)",
        }[self.chosen]
        return f"{self.count} thread{'' if self.count == 1 else 's'}, {how}"

    @classmethod
    def from_fields(cls, f: _Fields) -> ThreadsUsed:
        return cls(
            count=f.get("count", "a whole number >= 1", _is_positive_int),
            chosen=f.get("chosen", " or ".join(THREAD_CHOICES), lambda v: v in THREAD_CHOICES),
        )


@dataclass(frozen=True)
class RunMeta:
    """What a run (and each of its checkpoints) records about its model and data.

    Stored as a JSON object in ``config.json`` (``"meta"``) and in every checkpoint; a
    checkpoint adds where training was when it was written (``epoch``, ``step``, the monitored
    ``scores``). :meth:`from_dict` reads what any cnnlab of the same :data:`META_VERSION` wrote
    (metadata without a version is version 1) and ignores fields it does not know.

    Attributes:
        model: how to build the network.
        classes: class names, index = label.
        preprocessing: how images become model input.
        input_shape: ``(C, H, W)`` the network takes.
        data: the dataset spec trained on (None: unknown).
        channels_last: whether training used channels-last memory.
        world_size: how many processes trained the run (torchrun; a resume needs as many).
        launch_id: torchrun's job id (``TORCHELASTIC_RUN_ID``): a restart of that job
            continues the run instead of refusing its folder.
        precision: the number format training computed in (``fp32``, ``bf16`` or ``fp16``
            autocast; the weights are float32 either way).
        data_options: ``load_dataset`` options reproducing the run's data (image folders;
            ``"stream": true`` when the folder was streamed).
        selection: the classes and examples kept, when the run trained on a selection.
        frozen: parameter names kept non-trainable (fine-tuned runs).
        finetune: the fine-tuning source (fine-tuned runs).
        augment: the ``--augment`` text, when training augmented.
        augment_pca: PCA colour augmentation's eigenvalues and eigenvectors
            (:func:`cnnlab.data.augment.pca_to_dict`'s form).
        threads: the thread count the training session that wrote this computed with (None:
            not recorded, runs written before it was).
        epoch: epochs completed when a checkpoint was written (checkpoints only).
        step: steps into the next epoch (resumable checkpoints only).
        scores: the monitored metric at ``epoch`` (``best.safetensors`` only), e.g.
            ``{"val_accuracy": 0.98}``.
        version: the metadata format version.
    """

    model: ModelSpec
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    input_shape: tuple[int, int, int]
    data: str | None = None
    channels_last: bool = False
    precision: str = "fp32"
    world_size: int = 1
    launch_id: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    selection: ClassSelection | None = None
    frozen: tuple[str, ...] | None = None
    finetune: FinetuneInfo | None = None
    augment: str | None = None
    augment_pca: dict[str, Any] | None = None
    threads: ThreadsUsed | None = None
    epoch: int | None = None
    step: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    version: int = META_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored with the run (optional fields only when set)."""
        data: dict[str, Any] = {
            "version": self.version,
            "model": self.model.to_dict(),
            "classes": list(self.classes),
            "preprocessing": self.preprocessing.to_dict(),
            "input_shape": list(self.input_shape),
        }
        if self.data is not None:
            data["data"] = self.data
        data["channels_last"] = self.channels_last
        data["precision"] = self.precision
        data["world_size"] = self.world_size
        if self.launch_id is not None:
            data["torchelastic_run_id"] = self.launch_id
        if self.selection is not None:
            data["selection"] = self.selection.to_dict()
        if self.frozen is not None:
            data["frozen"] = list(self.frozen)
        if self.finetune is not None:
            data["finetune"] = self.finetune.to_dict()
        if self.augment is not None:
            data["augment"] = self.augment
        if self.augment_pca is not None:
            data["augment_pca"] = self.augment_pca
        if self.threads is not None:
            data["threads"] = self.threads.to_dict()
        data["data_options"] = dict(self.data_options)
        for name, value in (("epoch", self.epoch), ("step", self.step)):
            if value is not None:
                data[name] = value
        return {**data, **self.scores}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "run metadata") -> RunMeta:
        """Read and check metadata written by :meth:`to_dict` (or by cnnlab before it had a
        version).

        Args:
            data: the JSON object.
            source: where it comes from, for error messages (a file path).

        Raises:
            CheckpointError: not an object, another version, or a missing or mistyped field
                (one line naming the field).
        """
        if not isinstance(data, Mapping):
            raise CheckpointError(
                f"expected run metadata (a JSON object), received {_short(data)} in {source}"
            )
        f = _Fields(data, source)
        version = f.get("version", "a whole number", _is_int, META_VERSION)
        if version != META_VERSION:
            raise CheckpointError(
                f"expected run metadata version {META_VERSION}, received version={version} in "
                f"{source} (written by a newer cnnlab?)"
            )
        model = ModelSpec.from_dict(data.get("model"), source)
        classes = f.get("classes", "a non-empty list of class names", _is_class_list)
        preprocessing = _preprocessing(f)
        shape = f.get("input_shape", "a list [C, H, W] of whole numbers", _is_shape)
        selection = f.nested("selection", "classes and per_class", None)
        finetune = f.nested("finetune", "the fine-tuning source", None)
        threads = f.nested("threads", "count and chosen", None)
        frozen = f.get("frozen", "a list of parameter names", _is_str_list, None)
        scores = {name: f.get(name, "a number", _is_number) for name in METRICS if name in data}
        meta = cls(
            model=model,
            classes=tuple(classes),
            preprocessing=preprocessing,
            input_shape=(shape[0], shape[1], shape[2]),
            data=f.get("data", "a dataset spec (a string)", _optional(_is_str), None),
            channels_last=f.get("channels_last", "true or false", _is_bool, False),
            precision=f.get("precision", "fp32, bf16 or fp16", _is_precision, "fp32"),
            world_size=f.get(
                "world_size", "a whole number >= 1", lambda v: _is_int(v) and v >= 1, 1
            ),
            launch_id=f.get("torchelastic_run_id", "torchrun's job id", _optional(_is_str), None),
            data_options=dict(f.get("data_options", "an object", _is_dict_or_none, None) or {}),
            selection=None if selection is None else ClassSelection.from_fields(selection),
            frozen=None if frozen is None else tuple(frozen),
            finetune=None if finetune is None else FinetuneInfo.from_fields(finetune),
            augment=f.get("augment", "an --augment text", _is_str, None),
            augment_pca=f.get("augment_pca", "eigenvalues and eigenvectors", _is_pca, None),
            threads=None if threads is None else ThreadsUsed.from_fields(threads),
            epoch=f.get("epoch", "a whole number >= 0", lambda v: _is_int(v) and v >= 0, None),
            step=f.get("step", "a whole number >= 0", lambda v: _is_int(v) and v >= 0, None),
            scores={name: float(value) for name, value in scores.items()},
            version=version,
        )
        _check_consistent(meta, source)
        return meta


def _preprocessing(f: _Fields) -> Preprocessing:
    what = "mean, std, image_size, input_size and channels"
    p = f.nested("preprocessing", what)
    assert p is not None  # required: nested() raised when it is missing
    channels = p.get("channels", "1 or 3", lambda v: _is_int(v) and v in (1, 3))
    stats = f"a list of {channels} finite number(s)"
    mean = p.get("mean", stats, lambda v: _is_numbers(v, channels))
    std = p.get("std", f"{stats} > 0", lambda v: _is_numbers(v, channels) and min(v) > 0)
    size = "a list [H, W] of whole numbers >= 1"
    image_size = p.get("image_size", size, _is_size)
    input_size = p.get("input_size", size, _is_size)
    return Preprocessing(
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        image_size=(image_size[0], image_size[1]),
        input_size=(input_size[0], input_size[1]),
        channels=channels,
    )


def _is_numbers(value: Any, count: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == count
        and all(_is_number(v) and math.isfinite(v) for v in value)
    )


def _is_size(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_int(v) and v >= 1 for v in value)
    )


def _check_consistent(meta: RunMeta, source: str | Path) -> None:
    """The fields that describe the same thing agree (classes and outputs, channels)."""
    agreements = (
        ("model.num_classes", meta.model.num_classes, "the number of classes", len(meta.classes)),
        ("model.in_channels", meta.model.in_channels, "input_shape[0]", meta.input_shape[0]),
        (
            "preprocessing.channels",
            meta.preprocessing.channels,
            "input_shape[0]",
            meta.input_shape[0],
        ),
    )
    for name, value, other, expected_value in agreements:
        if value != expected_value:
            raise CheckpointError(
                f"expected run metadata field {name!r} to agree with {other} ({expected_value}), "
                f"received {name}={value} in {source}"
            )


# ---- run directories and checkpoints -----------------------------------------------------------
def is_run_or_checkpoint(path: str | Path) -> bool:
    """True for an existing run directory or ``.safetensors`` file (not a model name)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() or (path.is_file() and path.suffix == ".safetensors")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a run directory (``{"config": ..., "meta": ...}``), with
    its structure checked: an object holding the objects ``config`` and ``meta``.

    Raises:
        CheckpointError: not a run directory, or an unreadable or malformed config (one line
            naming the file).
    """
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir() or not path.is_file():
        raise CheckpointError(
            f"expected a run directory (with {CONFIG_FILE}) or a .safetensors checkpoint, "
            f"received {shown_path(run_dir)}"
        )
    try:
        saved = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise CheckpointError(
            f"expected a readable JSON {CONFIG_FILE}, received {shown_path(path)} ({reason})"
        ) from None
    if not isinstance(saved, dict):
        raise CheckpointError(
            f'expected {{"config": ..., "meta": ...}} (a JSON object) in {shown_path(path)}, '
            f"received a JSON {type(saved).__name__}"
        )
    for key in ("config", "meta"):
        if not isinstance(saved.get(key), dict):
            received = _short(saved[key]) if key in saved else "nothing"
            raise CheckpointError(
                f"expected {key!r} to be a JSON object in {shown_path(path)}, received "
                f"{key}={received}"
            )
    return saved


def read_history(run_dir: Path) -> History | None:
    """The run's ``history.json`` (None when it has none yet).

    A damaged one (not JSON, or not a history) does not stop anything that only uses the
    run: one :class:`~cnnlab.errors.RunFileWarning` names the file, and None is returned;
    ``--resume`` rewrites the file from the history kept in ``last.safetensors``.
    """
    path = run_dir / HISTORY_JSON
    if not path.exists() and not path.is_symlink():
        return None
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        history = History.from_dict(data)
        lengths = {len(history.epoch), *(len(v) for v in history.history.values())}
        if len(lengths) != 1:
            raise ValueError("columns of different lengths")
        return history
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        warnings.warn(
            f"expected a readable {HISTORY_JSON}, received {shown_path(path)} that cannot be "
            f"read ({reason[:100]}); going on without the training history "
            f"(train --resume {shown_path(run_dir)} rewrites it from {LAST})",
            RunFileWarning,
            stacklevel=2,
        )
        return None


def read_run_meta(run_dir: Path) -> RunMeta:
    """The :class:`RunMeta` of a run directory's ``config.json``.

    Raises:
        CheckpointError: not a run directory, or missing or malformed metadata.
    """
    saved = read_run_config(run_dir)
    return RunMeta.from_dict(saved["meta"], run_dir / CONFIG_FILE)


@dataclass
class Run:
    """A trained model with everything needed to use it (what :func:`load_run` returns).

    Attributes:
        path: the run directory or checkpoint file given.
        checkpoint: the checkpoint file the weights came from.
        model: the model in eval mode, on the CPU.
        meta: the checkpoint's metadata.
        history: the run's history, when loaded from a run directory.
    """

    path: Path
    checkpoint: Path
    model: nn.Module
    meta: RunMeta
    history: History | None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, index = label."""
        return self.meta.classes

    @property
    def preprocessing(self) -> Preprocessing:
        """How images become model input."""
        return self.meta.preprocessing

    @property
    def data(self) -> str | None:
        return self.meta.data

    @property
    def data_options(self) -> dict[str, Any]:
        """``load_dataset`` options that reproduce the run's data (image folders)."""
        return dict(self.meta.data_options)

    def data_options_for(self, spec: str) -> dict[str, Any]:
        """``load_dataset`` options converting ``spec`` as the run's training data was: the
        saved options for the run's own data, its image size and channels for another folder."""
        if spec == self.data:
            return self.data_options
        if is_named_dataset(spec):
            return {}
        prep = self.preprocessing
        return {"image_size": list(prep.image_size), "channels": prep.channels}


def as_run(run: str | Path | Run, model: nn.Module | None = None) -> Run:
    """``run`` itself, or the run directory / checkpoint file it names loaded with
    :func:`load_run` (its ``best`` checkpoint): the one way a path becomes a run.

    Args:
        model: the module to load the weights into (needed for a run trained on a module
            passed to :func:`cnnlab.fit`; see :class:`ModelSpec`).

    Raises:
        CheckpointError: not a run directory or a checkpoint.
    """
    return run if isinstance(run, Run) else load_run(run, model=model)


def load_run(path: str | Path, checkpoint: str = "best", model: nn.Module | None = None) -> Run:
    """Load a run directory (its ``best`` or ``last`` checkpoint) or a checkpoint file.

    A registered model is rebuilt from its name; a ``FILE.py:CALLABLE`` model by importing the
    file again, only while its content is what the run recorded; a module passed to
    :func:`cnnlab.fit` needs ``model`` (see :class:`ModelSpec`).

    Args:
        path: run directory or ``.safetensors`` checkpoint.
        checkpoint: ``best`` or ``last`` (run directories).
        model: a module built like the trained one, to load the weights into (strictly)
            instead of rebuilding the network; required for runs trained on a module.

    Raises:
        CheckpointError: not a run or checkpoint, malformed metadata, or weights that do not
            fit the architecture the checkpoint names.
    """
    path = Path(path)
    history = None
    if path.is_dir():
        read_run_config(path)
        if checkpoint not in ("best", "last"):
            raise ConfigError(
                f"expected checkpoint best or last, received checkpoint={checkpoint!r}"
            )
        file = path / (BEST if checkpoint == "best" else LAST)
        if not file.is_file():
            file = path / LAST
        history = read_history(path)
    elif path.is_file():
        file = path
    else:
        raise CheckpointError(
            f"expected a run directory or a .safetensors checkpoint, received "
            f"{shown_path(path)} ({describe_missing(path, 'no such path')})"
        )
    ckpt = load_checkpoint(file)
    meta = RunMeta.from_dict(ckpt.meta, file)
    model = _build_model(meta.model, ckpt, file, model)
    if meta.frozen is not None:  # a fine-tuned run: the same parameters stay non-trainable
        apply_freeze(model, meta.frozen)
    return Run(path, file, model, meta, history)


def model_from_checkpoint(
    ckpt: Checkpoint, source: Path, model: nn.Module | None = None
) -> nn.Module:
    """Rebuild the model a checkpoint names and load its weights (strictly).

    Raises:
        CheckpointError: malformed metadata, unknown model, a model file that changed or is
            gone, or weights of another architecture.
    """
    return _build_model(RunMeta.from_dict(ckpt.meta, source).model, ckpt, source, model)


def _build_model(
    spec: ModelSpec, ckpt: Checkpoint, source: Path, given: nn.Module | None = None
) -> nn.Module:
    if given is None and spec.source == "registry":  # no initialisation to overwrite
        model = built_with_weights(spec.build, ckpt.model_state)
        if model is not None:
            return model.eval()
    try:
        model = spec.build(given)
    except ModelError as exc:
        raise CheckpointError(
            f"checkpoint {source} names a model cnnlab cannot build: {exc}"
        ) from None
    try:
        model.load_state_dict(ckpt.model_state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(
            f"expected weights for {spec.name}, received weights of another architecture "
            f"in {source} ({first})"
        ) from None
    return model.eval()
