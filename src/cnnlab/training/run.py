"""Training runs: starting one (:func:`fit`) and continuing one (:func:`resume`).

This is the write side of a run directory; its layout, its metadata and loading a trained
model are :mod:`cnnlab.runs`. Both functions train through one internal function; they differ
only in where the configuration comes from (the arguments, or the run's ``config.json``) and
in what training continues from (nothing, or the run's ``last`` checkpoint).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.augment import Augmenter
from cnnlab.data.dataset import DatasetSplits, split_validation
from cnnlab.data.datasets import load_dataset
from cnnlab.data.selection import select
from cnnlab.errors import ConfigError
from cnnlab.fileio import atomic_write_json
from cnnlab.inference import resolve_device
from cnnlab.models import create_model
from cnnlab.runs import (
    BEST,
    CONFIG_FILE,
    CURVES,
    HISTORY_CSV,
    HISTORY_JSON,
    LAST,
    ClassSelection,
    ModelSpec,
    RunMeta,
    read_run_config,
    read_run_meta,
)
from cnnlab.training.callbacks import Callback, CSVLogger, EarlyStopping, JSONLogger, SaveBest
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.features import feature_training
from cnnlab.training.history import History
from cnnlab.training.loop import Trainer
from cnnlab.training.network_start import NetworkStart, network_start
from cnnlab.training.run_data import (
    build_augmenter,
    folder_options,
    recorded_augment,
    recorded_data_options,
    resolve_data_spec,
)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fit(
    model: str,
    data: str | DatasetSplits,
    *,
    out: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> History:
    """Train a registered model; the Python face of ``cnnlab train``.

    Args:
        model: registered model name.
        data: dataset spec (``"mnist"``, an image folder) or loaded :class:`DatasetSplits`
            (in memory or streamed).
        out: run directory to create (must not hold a run already); None trains in memory.
        callbacks: extra callbacks, called after the built-in ones.
        verbose: print one line per epoch to stderr.
        progress: progress bar per epoch; default: when stderr is a terminal.
        cache_dir: dataset cache folder.
        **options: :class:`TrainConfig` fields (``epochs``, ``lr``, ``optimizer`` ...).

    Returns:
        The :class:`History`; ``history.history["val_accuracy"]`` etc. as in Keras.

    Raises:
        ConfigError: no model or data, a bad option, or ``out`` holds a run already.
    """
    if model is None or data is None:
        raise ConfigError("expected a model name and data to train on, received none")
    spec = resolve_data_spec(data if isinstance(data, str) else data.name)
    config = TrainConfig(model=model, data=spec, **options)
    run_dir = Path(out) if out is not None else None
    if run_dir is not None:
        ensure_new_run_dir(run_dir)
    splits = None if isinstance(data, str) else data
    return _train(config, splits, run_dir, None, callbacks, verbose, progress, cache_dir)


def resume(
    run_dir: str | Path,
    data: DatasetSplits | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> History:
    """Continue a run from its last checkpoint; the Python face of ``cnnlab train --resume``.

    The run's saved configuration is used (and its data streamed if it was); a run killed
    before its first checkpoint restarts from the beginning (same seed, same run). On the CPU
    the result is bitwise that of a run never interrupted.

    Args:
        run_dir: the run directory.
        data: the run's data when it was trained on splits given in memory (default: loaded
            from the run's data spec).
        callbacks: extra callbacks, called after the built-in ones.
        verbose: print one line per epoch to stderr.
        progress: progress bar per epoch; default: when stderr is a terminal.
        cache_dir: dataset cache folder.
        **options: only ``epochs`` (raised, for the ``constant`` and ``step`` schedules) and
            ``workers``.

    Returns:
        The whole run's :class:`History`.

    Raises:
        CheckpointError: not a run directory, or unreadable metadata.
        ConfigError: another option, or other epochs for a schedule of fixed length.
    """
    run_dir = Path(run_dir)
    config = _resumed_config(run_dir, options)
    saved = read_run_meta(run_dir)
    return _train(config, data, run_dir, saved, callbacks, verbose, progress, cache_dir)


def _train(
    config: TrainConfig,
    data: DatasetSplits | None,
    run_dir: Path | None,
    saved: RunMeta | None,
    callbacks: Sequence[Callback],
    verbose: bool,
    progress: bool | None,
    cache_dir: str | Path | None,
) -> History:
    """Train the run ``config`` describes into ``run_dir`` (None: in memory).

    Args:
        data: the splits, or None to load ``config.data``.
        saved: a resumed run's metadata (None: a new run, whose ``config.json`` is written
            here, before the first epoch).
    """
    data_options = folder_options(config, saved)
    if data is None:
        data = load_dataset(config.data, cache_dir, workers=config.workers, **data_options)
    splits = select(data, config.classes, config.per_class, config.seed)  # --classes ...
    splits = _with_validation(splits, config)
    torch.manual_seed(config.seed)
    channels = splits.train.image_shape[0]
    net = create_model(
        config.model, num_classes=len(splits.classes), in_channels=channels, **config.model_kwargs
    )
    start = network_start(net, splits, config, saved)
    augmenter = build_augmenter(config, splits.train, saved)
    meta = _run_meta(net, splits, config, start, augmenter, data_options)
    if run_dir is not None and saved is None:
        document = {"config": config.to_dict(), "meta": meta.to_dict()}
        atomic_write_json(run_dir / CONFIG_FILE, document)
    # a resumed run continues from its last checkpoint; one killed before it restarts
    last = run_dir / LAST if run_dir is not None else None
    restore = last if saved is not None and last is not None and last.is_file() else None
    inputs = (net, splits, start.preprocessing, config)
    if config.cache_features:  # the head trains on the frozen backbone's cached features
        if restore is not None:
            net.load_state_dict(load_checkpoint(restore).model_state)
        inputs = feature_training(net, splits, start.preprocessing, config, cache_dir, verbose)
    trainer = Trainer(
        *inputs,
        resolve_device(config.device),
        callbacks=[*_builtin_callbacks(run_dir, config), *callbacks],
        checkpoint_path=last,
        meta=meta.to_dict(),
        log=_stderr if verbose else None,
        progress=sys.stderr.isatty() if progress is None else progress,
        augmenter=augmenter,
    )
    if restore is not None:
        trainer.restore(restore)
    if run_dir is not None:
        # stateless and added after restore, so runs saved before it existed resume as well
        trainer.callbacks.append(_curves_callback(run_dir, config))
    return trainer.fit()


def _run_meta(
    net: nn.Module,
    splits: DatasetSplits,
    config: TrainConfig,
    start: NetworkStart,
    augmenter: Augmenter | None,
    data_options: dict[str, Any],
) -> RunMeta:
    """What the run and each of its checkpoints record about its model and data."""
    augment, augment_pca = recorded_augment(augmenter)
    return RunMeta(
        model=ModelSpec.of(net),
        classes=tuple(splits.classes),
        preprocessing=start.preprocessing,
        input_shape=(start.preprocessing.channels, *start.preprocessing.input_size),
        data=config.data,
        channels_last=config.channels_last,
        precision=config.precision,
        data_options=recorded_data_options(data_options, splits),
        selection=_selection(config),
        frozen=start.frozen,
        finetune=start.finetune,
        augment=augment,
        augment_pca=augment_pca,
    )


def _selection(config: TrainConfig) -> ClassSelection | None:
    if config.classes is None and config.per_class is None:
        return None
    classes = None if config.classes is None else tuple(config.classes)
    return ClassSelection(classes, config.per_class)


def _curves_callback(run_dir: Path, config: TrainConfig) -> Callback:
    """The callback drawing ``curves.png`` when training ends (matplotlib loads only here)."""
    from cnnlab.viz.plots import PlotCurves

    return PlotCurves(run_dir / CURVES, config.epochs, title=f"{config.model} on {config.data}")


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
