"""Run directories: starting, resuming and loading training runs.

A run directory holds::

    config.json        the TrainConfig and the metadata needed to rebuild model and inputs
    history.json       per-epoch metrics (Keras-style dict), rewritten after every epoch
    history.csv        the same, one row per epoch
    last.safetensors   resumable checkpoint (model, optimizer, schedule, callbacks, RNG, position)
    best.safetensors   weights of the best epoch by the monitored metric
    curves.png         training vs validation curves
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.dataset import DatasetSplits, split_validation
from cnnlab.data.datasets import is_named_dataset, load_dataset
from cnnlab.data.preprocess import Preprocessing, fit_preprocessing
from cnnlab.data.selection import select
from cnnlab.errors import CheckpointError, ConfigError, ModelError
from cnnlab.fileio import atomic_write_json
from cnnlab.registry import create_model
from cnnlab.training.callbacks import Callback, CSVLogger, EarlyStopping, JSONLogger, SaveBest
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import (
    Distributed,
    check_resumed_world,
    check_training,
    launch_meta,
    prepare_model,
    seed_ranks,
    session,
)
from cnnlab.training.freezing import apply_freeze
from cnnlab.training.history import History
from cnnlab.training.loop import Trainer
from cnnlab.training.run_data import (
    build_augmenter,
    folder_options,
    recorded_data_options,
    resolve_data_spec,
)

CONFIG_FILE = "config.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
LAST = "last.safetensors"
BEST = "best.safetensors"
CURVES = "curves.png"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fit(
    model: str | None = None,
    data: str | DatasetSplits | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> History:
    """Train a registered model; the Python face of ``cnnlab train``.

    Args:
        model: registered model name (ignored when resuming).
        data: dataset spec (``"mnist"``, an image folder) or loaded :class:`DatasetSplits`
            (in memory or streamed).
        out: run directory to create (must not hold a run already); None trains in memory.
        resume: a run directory to continue; its saved config is used (and its data streamed
            if it was). ``epochs`` may be raised for the ``constant`` and ``step`` schedules;
            ``workers`` may be changed.
        callbacks: extra callbacks, called after the built-in ones.
        verbose: print one line per epoch to stderr.
        progress: progress bar per epoch; default: when stderr is a terminal.
        cache_dir: dataset cache folder.
        **options: :class:`TrainConfig` fields (``epochs``, ``lr``, ``optimizer`` ...).

    Returns:
        The :class:`History`; ``history.history["val_accuracy"]`` etc. as in Keras.

    Under torchrun every process calls ``fit`` with the same arguments and they train one
    run together (:mod:`cnnlab.training.distributed`, ``docs/distributed.md``): the callbacks
    run in every process, rank 0 writes the run, and every process returns the same history.
    A torchrun restart of the job that started ``out`` continues that run.
    """
    with session() as dist:  # a torchrun launch's process group (one process: nothing)
        return _train(
            model, data, out, resume, list(callbacks), verbose, progress, cache_dir, options, dist
        )


def _train(
    model: str | None,
    data: str | DatasetSplits | None,
    out: str | Path | None,
    resume: str | Path | None,
    callbacks: list[Callback],
    verbose: bool,
    progress: bool | None,
    cache_dir: str | Path | None,
    options: dict[str, Any],
    dist: Distributed,
) -> History:
    dist.check_same("training options", {"model": model, **_same_everywhere(options)})
    # rank 0 decides (creates the run folder, reads a resumed run) and tells the others
    run_dir, config, saved_meta = dist.decide(
        lambda: _start_run(model, data, out, resume, options, dist)
    )
    resume = run_dir if saved_meta is not None else None
    data_options = folder_options(config, saved_meta)
    if isinstance(data, str) or data is None:
        splits = dist.main_first(  # rank 0 fills the cache, the others read it
            lambda: load_dataset(config.data, cache_dir, workers=config.workers, **data_options)
        )
    else:
        splits = data
    splits = select(splits, config.classes, config.per_class, config.seed)  # --classes ...
    splits = _with_validation(splits, config)
    torch.manual_seed(config.seed)
    channels = splits.train.image_shape[0]
    net = create_model(
        config.model, num_classes=len(splits.classes), in_channels=channels, **config.model_kwargs
    )
    net = prepare_model(net, config, dist)  # --sync-bn
    preprocessing, transfer_meta = _network_start(net, splits, config, saved_meta)
    meta = run_meta(net, splits, preprocessing, config)
    meta.update(transfer_meta, **launch_meta(dist))
    augmenter, augment_meta = build_augmenter(config, splits.train, saved_meta)
    meta.update(augment_meta, data_options=recorded_data_options(data_options, splits))
    if run_dir is not None and resume is None and dist.is_main:
        atomic_write_json(run_dir / CONFIG_FILE, {"config": config.to_dict(), "meta": meta})
    inputs = (net, splits, preprocessing, config)
    if config.cache_features:  # the head trains on the frozen backbone's cached features
        from cnnlab.transfer import feature_training

        if resume is not None and (run_dir / LAST).is_file():
            net.load_state_dict(load_checkpoint(run_dir / LAST).model_state)
        inputs = dist.main_first(
            lambda: feature_training(
                net, splits, preprocessing, config, cache_dir, verbose and dist.is_main
            )
        )
    seed_ranks(config.seed, dist)  # several processes: augmentation and dropout differ per rank
    trainer = Trainer(
        *inputs,
        dist.device(config.device),
        callbacks=[*_builtin_callbacks(run_dir if dist.is_main else None, config), *callbacks],
        checkpoint_path=run_dir / LAST if run_dir is not None else None,
        meta=meta,
        log=_stderr if verbose and dist.is_main else None,
        progress=(sys.stderr.isatty() if progress is None else progress) and dist.is_main,
        augmenter=augmenter,
        dist=dist,
    )
    if resume is not None and dist.broadcast((run_dir / LAST).is_file()):
        trainer.restore(run_dir / LAST)
        if dist.restart_count and verbose and dist.is_main:
            _stderr(
                f"restart {dist.restart_count} of the {dist.world_size} processes: continuing "
                f"{run_dir} from epoch {trainer.epoch + 1}, batch {trainer.batches_done + 1}"
            )
    # (a run killed before its first checkpoint restarts from the beginning: same seed, same run)
    history = trainer.fit()
    if run_dir is not None and dist.is_main:
        from cnnlab.viz.plots import plot_history

        plot_history(history, run_dir / CURVES, title=f"{config.model} on {config.data}")
    dist.barrier()  # the run's files are complete before any process reads them
    return history


def _start_run(
    model: str | None,
    data: str | DatasetSplits | None,
    out: str | Path | None,
    resume: str | Path | None,
    options: dict[str, Any],
    dist: Distributed,
) -> tuple[Path | None, TrainConfig, dict[str, Any] | None]:
    """Rank 0's decision: the run folder, the config and (for a resumed run) its saved
    metadata. A torchrun restart of the job that started ``out`` continues it.

    Raises:
        ConfigError: no model or data, an existing run at ``out``, options that cannot change
            on resume, another world size than the resumed run's, or what cannot run on
            ``dist.world_size`` processes.
    """
    if resume is None and out is not None and restarted_run(Path(out), dist):
        resume, options = out, {}  # the same command line: the saved config is its config
    if resume is not None:
        run_dir, config = Path(resume), _resumed_config(Path(resume), options)
        saved_meta = read_run_config(run_dir).get("meta") or {}
        check_resumed_world(saved_meta, run_dir, dist.world_size)
    else:
        if model is None or data is None:
            raise ConfigError("expected a model name and data to train on, received none")
        spec = resolve_data_spec(data if isinstance(data, str) else data.name)
        config = TrainConfig(model=model, data=spec, **options)
        run_dir, saved_meta = (Path(out) if out is not None else None), None
    check_training(config, dist.world_size, dist.device(config.device))
    if run_dir is not None and saved_meta is None:
        ensure_new_run_dir(run_dir)
    return run_dir, config, saved_meta


def restarted_run(out: Path, dist: Distributed) -> bool:
    """True when torchrun restarted the processes of the job that started the run at
    ``out`` (it records the job's id): the restarted processes continue it."""
    if not dist.restart_count or dist.run_id is None or not (out / CONFIG_FILE).is_file():
        return False
    saved = read_run_config(out).get("meta") or {}
    return saved.get("torchelastic_run_id") == dist.run_id


def _same_everywhere(options: dict[str, Any]) -> dict[str, Any]:
    """The options every process of a run must share (decoding workers may differ)."""
    return {name: value for name, value in options.items() if name != "workers"}


def _network_start(
    net: nn.Module, splits: DatasetSplits, config: TrainConfig, saved_meta: dict[str, Any] | None
) -> tuple[Preprocessing, dict[str, Any]]:
    """The run's preprocessing and extra metadata: the class selection and, for fine-tuning,
    the source's weights, the freeze and what was frozen (:mod:`cnnlab.transfer`)."""
    extra: dict[str, Any] = {}
    if config.classes is not None or config.per_class is not None:
        extra["selection"] = {"classes": config.classes, "per_class": config.per_class}
    if config.finetune_from is None:
        return choose_preprocessing(net, splits), extra
    from cnnlab.transfer import prepare_finetune

    preprocessing, frozen, info = prepare_finetune(net, config, splits, saved_meta)
    return preprocessing, {**extra, "frozen": frozen, "finetune": info}


def ensure_new_run_dir(path: Path) -> None:
    """Refuse to start a run where one exists (never destroy a run); create the folder."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"expected a folder for the run, received a file at --out {path}")
    if path.is_dir() and any(path.iterdir()):
        what = "holds a run" if (path / CONFIG_FILE).exists() else "is not empty"
        raise ConfigError(
            f"expected a new or empty run folder, received --out {path}, which {what} "
            f"(use --resume {path} to continue it, or another --out)"
        )
    path.mkdir(parents=True, exist_ok=True)


def _resumed_config(run_dir: Path, options: dict[str, Any]) -> TrainConfig:
    saved = read_run_config(run_dir)
    config = TrainConfig.from_dict(saved["config"])
    extra = sorted(set(options) - {"epochs", "workers"})
    if extra:
        raise ConfigError(
            f"expected only --epochs and --workers when resuming, received {', '.join(extra)}"
        )
    if "workers" in options:  # how many processes decode does not change the run
        config.workers = options["workers"]
    if "epochs" in options and options["epochs"] != config.epochs:
        if config.schedule in ("onecycle", "cosine"):
            raise ConfigError(
                f"expected the saved epochs={config.epochs} when resuming a {config.schedule} "
                f"schedule (its length is fixed), received epochs={options['epochs']}"
            )
        config.epochs = options["epochs"]
    config.validate()
    return config


def _with_validation(splits: DatasetSplits, config: TrainConfig) -> DatasetSplits:
    if splits.val is not None or config.val_split == 0:
        return splits
    train, val = split_validation(splits.train, config.val_split, config.seed)
    return DatasetSplits(splits.name, train=train, test=splits.test, val=val)


def choose_preprocessing(model: nn.Module, splits: DatasetSplits) -> Preprocessing:
    """Normalisation from the training split; zero-pad only if the model cannot take the
    stored size as it is (MNIST's 28x28 for LeNet-5's 32x32).

    Raises:
        ModelError: the images do not fit the model even when padded to its default input.
    """
    from cnnlab.analysis import check_input

    c, h, w = splits.train.image_shape
    default = tuple(model.default_input_shape)
    try:
        check_input(model, (c, h, w))
        return fit_preprocessing(splits.train, (c, h, w))
    except ModelError:
        if h > default[1] or w > default[2]:
            raise
    return fit_preprocessing(splits.train, (c, default[1], default[2]))


def run_meta(
    model: nn.Module, splits: DatasetSplits, preprocessing: Preprocessing, config: TrainConfig
) -> dict[str, Any]:
    """What a checkpoint needs to describe itself."""
    return {
        "model": model.cnnlab_spec,
        "classes": list(splits.classes),
        "preprocessing": preprocessing.to_dict(),
        "input_shape": [preprocessing.channels, *preprocessing.input_size],
        "data": config.data,
        "channels_last": config.channels_last,
    }


def _builtin_callbacks(run_dir: Path | None, config: TrainConfig) -> list[Callback]:
    callbacks: list[Callback] = []
    if run_dir is not None:
        callbacks += [
            SaveBest(run_dir / BEST, config.monitor),
            JSONLogger(run_dir / HISTORY_JSON),
            CSVLogger(run_dir / HISTORY_CSV),
        ]
    if config.early_stopping:
        callbacks.append(EarlyStopping(config.monitor, patience=config.early_stopping))
    return callbacks


def is_run_or_checkpoint(path: str | Path) -> bool:
    """True for an existing run directory or ``.safetensors`` file (not a model name)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() or (path.is_file() and path.suffix == ".safetensors")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a run directory.

    Raises:
        CheckpointError: not a run directory, or an unreadable config.
    """
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir() or not path.is_file():
        raise CheckpointError(
            f"expected a run directory (with {CONFIG_FILE}) or a .safetensors checkpoint, "
            f"received {run_dir}"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


@dataclass
class Run:
    """A trained model with everything needed to use it (what :func:`load_run` returns).

    Attributes:
        path: the run directory or checkpoint file given.
        checkpoint: the checkpoint file the weights came from.
        model: the model in eval mode, on the CPU.
        classes: class names, index = label.
        preprocessing: how images become model input.
        meta: the checkpoint's metadata.
        history: the run's history, when loaded from a run directory.
    """

    path: Path
    checkpoint: Path
    model: nn.Module
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    meta: dict[str, Any]
    history: History | None

    @property
    def data(self) -> str | None:
        return self.meta.get("data")

    @property
    def data_options(self) -> dict[str, Any]:
        """``load_dataset`` options that reproduce the run's data (image folders)."""
        return dict(self.meta.get("data_options") or {})

    def data_options_for(self, spec: str) -> dict[str, Any]:
        """``load_dataset`` options converting ``spec`` as the run's training data was: the
        saved options for the run's own data, its image size and channels for another folder."""
        if spec == self.data:
            return self.data_options
        if is_named_dataset(spec):
            return {}
        prep = self.preprocessing
        return {"image_size": list(prep.image_size), "channels": prep.channels}


def load_run(path: str | Path, checkpoint: str = "best") -> Run:
    """Load a run directory (its ``best`` or ``last`` checkpoint) or a checkpoint file.

    Raises:
        CheckpointError: not a run or checkpoint, or weights that do not fit the architecture
            the checkpoint names.
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
        if (path / HISTORY_JSON).is_file():
            history = History.from_dict(json.loads((path / HISTORY_JSON).read_text()))
    elif path.is_file():
        file = path
    else:
        raise CheckpointError(
            f"expected a run directory or a .safetensors checkpoint, received {path} (no such path)"
        )
    ckpt = load_checkpoint(file)
    model = model_from_checkpoint(ckpt, file)
    if "frozen" in ckpt.meta:  # a fine-tuned run: the same parameters stay non-trainable
        apply_freeze(model, ckpt.meta["frozen"])
    return Run(
        path,
        file,
        model,
        tuple(ckpt.meta["classes"]),
        Preprocessing.from_dict(ckpt.meta["preprocessing"]),
        ckpt.meta,
        history,
    )


def model_from_checkpoint(ckpt: Checkpoint, source: Path) -> nn.Module:
    """Rebuild the model a checkpoint names and load its weights (strictly).

    Raises:
        CheckpointError: unknown model, or weights of another architecture.
    """
    spec = ckpt.meta.get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise CheckpointError(
            f"expected a classifier checkpoint naming its model, received {source}"
        )
    try:
        model = create_model(
            spec["name"],
            num_classes=spec["num_classes"],
            in_channels=spec["in_channels"],
            **spec.get("kwargs", {}),
        )
    except ModelError as exc:
        raise CheckpointError(
            f"checkpoint {source} names a model cnnlab cannot build: {exc}"
        ) from None
    try:
        model.load_state_dict(ckpt.model_state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(
            f"expected weights for {spec['name']}, received weights of another architecture "
            f"in {source} ({first})"
        ) from None
    return model.eval()
