"""Training runs: starting one (:func:`fit`) and continuing one (:func:`resume`).

This is the write side of a run directory; its layout, its metadata and loading a trained
model are :mod:`cnnlab.runs`. Both functions train through one internal function; they differ
only in where the configuration comes from (the arguments, or the run's ``config.json``) and
in what training continues from (nothing, or the run's ``last`` checkpoint).

Under torchrun every process calls the same function with the same arguments and they train
one run together (:mod:`cnnlab.training.distributed`, ``docs/distributed.md``): rank 0 decides
(creates or reads the run folder) and tells the others, rank 0 alone writes the run's files,
and every process returns the same history.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from cnnlab.threads import (
    CpuSnapshot,
    check_threads,
    choose_threads,
    cpu_snapshot,
    requested_threads,
)
from cnnlab.training.callbacks import Callback, CSVLogger, EarlyStopping, JSONLogger, SaveBest
from cnnlab.training.checkpoint import load_checkpoint
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
    threads: int | None = None,
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
        threads: torch's threads (and the NumPy engine's) during training; default: as many
            as cores other processes leave free (:mod:`cnnlab.threads`), unless
            ``OMP_NUM_THREADS`` is set. The previous count is restored afterwards.
        **options: :class:`TrainConfig` fields (``epochs``, ``lr``, ``optimizer`` ...).

    Returns:
        The :class:`History`; ``history.history["val_accuracy"]`` etc. as in Keras.

    Raises:
        ConfigError: no model or data, a bad option, ``out`` holds a run already, or the run
            cannot train on this many processes.

    A torchrun restart of the job that started ``out`` continues that run (torchrun's
    ``--max-restarts``: a lost worker costs the steps since the last checkpoint).
    """
    started = cpu_snapshot()  # other processes' load is measured from here (cnnlab.threads)
    with session() as dist, _restored_threads():  # a torchrun launch's group (one process: none)
        dist.check_same("training options", {"model": model, **_same_everywhere(options)})
        # rank 0 decides (creates the run folder, or finds a restarted run) and tells the others
        run_dir, config, saved = dist.decide(lambda: _new_run(model, data, out, options, dist))
        splits = None if isinstance(data, str) else data
        train = (config, splits, run_dir, saved, callbacks, verbose, progress, cache_dir, dist)
        return _train(*train, threads=threads, started=started)


def resume(
    run_dir: str | Path,
    data: DatasetSplits | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
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
        threads: as for :func:`fit` (pass the count the run started with for a bitwise
            continuation of a torch run whose count was chosen for the load).
        **options: only ``epochs`` (raised, for the ``constant`` and ``step`` schedules) and
            ``workers``.

    Returns:
        The whole run's :class:`History`.

    Raises:
        CheckpointError: not a run directory, or unreadable metadata.
        ConfigError: another option, or other epochs for a schedule of fixed length.
    """
    started = cpu_snapshot()
    with session() as dist, _restored_threads():
        dist.check_same("resume options", {"run": str(run_dir), **_same_everywhere(options)})
        run_dir, config, saved = dist.decide(lambda: _resumed_run(Path(run_dir), options, dist))
        train = (config, data, run_dir, saved, callbacks, verbose, progress, cache_dir, dist)
        return _train(*train, threads=threads, started=started)


def _new_run(
    model: str,
    data: str | DatasetSplits,
    out: str | Path | None,
    options: dict[str, Any],
    dist: Distributed,
) -> tuple[Path | None, TrainConfig, RunMeta | None]:
    """Rank 0's decision for :func:`fit`: the run folder and config (and the saved metadata
    when torchrun restarted the job that started ``out``: the restart continues it)."""
    if out is not None and restarted_run(Path(out), dist):
        return _resumed_run(Path(out), {}, dist)  # the same command line: its saved config
    if model is None or data is None:
        raise ConfigError("expected a model name and data to train on, received none")
    spec = resolve_data_spec(data if isinstance(data, str) else data.name)
    config = TrainConfig(model=model, data=spec, **options)
    check_training(config, dist.world_size, dist.device(config.device))
    run_dir = Path(out) if out is not None else None
    if run_dir is not None:
        ensure_new_run_dir(run_dir)
    return run_dir, config, None


def _resumed_run(
    run_dir: Path, options: dict[str, Any], dist: Distributed
) -> tuple[Path, TrainConfig, RunMeta]:
    """Rank 0's decision for :func:`resume`: the saved config (with the options that may
    change) and metadata, on the world size the run was trained on."""
    config = _resumed_config(run_dir, options)
    saved = read_run_meta(run_dir)
    check_resumed_world(saved.world_size, run_dir, dist.world_size)
    check_training(config, dist.world_size, dist.device(config.device))
    return run_dir, config, saved


def restarted_run(out: Path, dist: Distributed) -> bool:
    """True when torchrun restarted the processes of the job that started the run at
    ``out`` (the run records the job's id): the restarted processes continue it."""
    if not dist.restart_count or dist.run_id is None or not (out / CONFIG_FILE).is_file():
        return False
    return read_run_meta(out).launch_id == dist.run_id


def _same_everywhere(options: dict[str, Any]) -> dict[str, Any]:
    """The options every process of a run must share (decoding workers may differ)."""
    return {name: value for name, value in options.items() if name != "workers"}


def _train(
    config: TrainConfig,
    data: DatasetSplits | None,
    run_dir: Path | None,
    saved: RunMeta | None,
    callbacks: Sequence[Callback],
    verbose: bool,
    progress: bool | None,
    cache_dir: str | Path | None,
    dist: Distributed,
    threads: int | None = None,
    started: CpuSnapshot | None = None,
) -> History:
    """Train the run ``config`` describes into ``run_dir`` (None: in memory), in every
    process of ``dist``.

    Args:
        data: the splits, or None to load ``config.data``.
        saved: a resumed run's metadata (None: a new run, whose ``config.json`` rank 0 writes
            here, before the first epoch).
        threads: torch's threads by hand (None: :func:`_use_threads` chooses).
        started: when the run started (other processes' load is measured from there).
    """
    data_options = folder_options(config, saved)
    if data is None:  # rank 0 fills the cache, the others read it
        data = dist.main_first(
            lambda: load_dataset(config.data, cache_dir, workers=config.workers, **data_options)
        )
    splits = select(data, config.classes, config.per_class, config.seed)  # --classes ...
    splits = _with_validation(splits, config)
    torch.manual_seed(config.seed)
    channels = splits.train.image_shape[0]
    net = create_model(
        config.model, num_classes=len(splits.classes), in_channels=channels, **config.model_kwargs
    )
    net = prepare_model(net, config, dist)  # --sync-bn
    start = network_start(net, splits, config, saved)
    augmenter = build_augmenter(config, splits.train, saved)
    meta = _run_meta(net, splits, config, start, augmenter, data_options, dist)
    if run_dir is not None and saved is None and dist.is_main:
        document = {"config": config.to_dict(), "meta": meta.to_dict()}
        atomic_write_json(run_dir / CONFIG_FILE, document)
    # a resumed run continues from its last checkpoint; one killed before it restarts
    last = run_dir / LAST if run_dir is not None else None
    found = saved is not None and last is not None and dist.broadcast(last.is_file())
    restore = last if found else None
    inputs = (net, splits, start.preprocessing, config)
    if config.cache_features:  # the head trains on the frozen backbone's cached features
        if restore is not None:
            net.load_state_dict(load_checkpoint(restore).model_state)
        inputs = dist.main_first(  # rank 0 fills the feature cache, the others read it
            lambda: feature_training(
                net, splits, start.preprocessing, config, cache_dir, verbose and dist.is_main
            )
        )
    seed_ranks(config.seed, dist)  # several processes: augmentation and dropout differ per rank
    _use_threads(threads, started, config, dist, verbose)  # before the engine is built
    writes = run_dir if dist.is_main else None  # rank 0 alone writes the run's files
    trainer = Trainer(
        *inputs,
        dist.device(config.device),
        callbacks=[*_builtin_callbacks(writes, config), *callbacks],
        checkpoint_path=last,
        meta=meta.to_dict(),
        log=_stderr if verbose and dist.is_main else None,
        progress=(sys.stderr.isatty() if progress is None else progress) and dist.is_main,
        augmenter=augmenter,
        dist=dist,
    )
    if restore is not None:
        trainer.restore(restore)
        if dist.restart_count and verbose and dist.is_main:
            _stderr(
                f"restart {dist.restart_count} of the {dist.world_size} processes: continuing "
                f"{run_dir} from epoch {trainer.epoch + 1}, batch {trainer.batches_done + 1}"
            )
    if writes is not None:
        # stateless and added after restore, so runs saved before it existed resume as well
        trainer.callbacks.append(_curves_callback(writes, config))
    history = trainer.fit()
    dist.barrier()  # the run's files are complete before any process reads them
    return history


def _use_threads(
    threads: int | None,
    started: CpuSnapshot | None,
    config: TrainConfig,
    dist: Distributed,
    verbose: bool,
) -> None:
    """Set torch's thread count for training: ``threads`` when given; else, for one process on
    the CPU without ``OMP_NUM_THREADS``, the cores other processes leave free (logged)."""
    if threads is not None:
        torch.set_num_threads(check_threads(threads))
        return
    if dist.active or requested_threads() is not None or dist.device(config.device).type != "cpu":
        return  # several processes share the cores as the launcher said; the user chose
    choice = choose_threads(started)
    torch.set_num_threads(choice.threads)
    if verbose:
        _stderr(choice.describe())


@contextmanager
def _restored_threads() -> Iterator[None]:
    """Give torch back its thread count when training ends (fit may change it)."""
    previous = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_meta(
    net: nn.Module,
    splits: DatasetSplits,
    config: TrainConfig,
    start: NetworkStart,
    augmenter: Augmenter | None,
    data_options: dict[str, Any],
    dist: Distributed,
) -> RunMeta:
    """What the run and each of its checkpoints record about its model, data and processes."""
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
        **launch_meta(dist),
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
