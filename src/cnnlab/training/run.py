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

import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnlab.data.augment import Augmenter
from cnnlab.data.dataset import DatasetSplits, split_validation
from cnnlab.data.datasets import load_dataset
from cnnlab.data.selection import select
from cnnlab.errors import ConfigError
from cnnlab.fileio import atomic_create_json, atomic_write_json
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
    ThreadsUsed,
    read_history,
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
from cnnlab.training.divergence import (
    DivergedError,
    clear_diverged,
    has_diverged,
    mark_diverged,
)
from cnnlab.training.features import feature_training
from cnnlab.training.history import History
from cnnlab.training.loop import Trainer, position, writing
from cnnlab.training.network import build_network, check_outputs, model_text
from cnnlab.training.network_start import NetworkStart, network_start
from cnnlab.training.recipes import apply_recipe
from cnnlab.training.resume_options import resumed_config
from cnnlab.training.run_data import (
    build_augmenter,
    folder_options,
    recorded_augment,
    recorded_data_options,
    resolve_data_spec,
)
from cnnlab.training.run_lock import RunOwnership
from cnnlab.training.steps_guard import few_steps_warning

RESTART_WAIT = 60.0  # seconds a torchrun restart waits for the dead group's rank 0 to let go

if TYPE_CHECKING:
    from cnnlab.viz.plots import PlotCurves


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fit(
    model: str | nn.Module | None,
    data: str | DatasetSplits | None,
    *,
    out: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    defer_curves: bool = False,
    threads: int | None = None,
    **options: Any,
) -> History:
    """Train a model; the Python face of ``cnnlab train``.

    Args:
        model: a registered model name, ``"path/to/file.py:callable"`` (a function returning
            an ``nn.Module``; the run records the file's path and SHA-256 and is loaded again
            only while the file is unchanged), or an ``nn.Module`` instance, trained in place
            (its run loads again only with ``cnnlab.load_run(path, model=...)``, given a
            module built like it: see :class:`cnnlab.runs.ModelSpec`).
            None: the recipe's (``recipe=``).
        data: dataset spec (``"mnist"``, an image folder) or loaded :class:`DatasetSplits`
            (in memory or streamed); None: the recipe's.
        out: run directory to create (must not hold a run already); None trains in memory.
        callbacks: extra callbacks, called after the built-in ones.
        verbose: print one line per epoch to stderr.
        progress: progress bar per epoch; default: when stderr is a terminal.
        cache_dir: dataset cache folder.
        defer_curves: return without drawing ``curves.png``;
            :func:`cnnlab.viz.plots.draw_deferred_curves` draws it later (``cnnlab train``
            prints its test result first).
        threads: torch's threads (and the NumPy engine's) during training; default: as many
            as cores other processes leave free (:mod:`cnnlab.threads`), unless
            ``OMP_NUM_THREADS`` is set. The previous count is restored afterwards.
        **options: :class:`TrainConfig` fields (``epochs``, ``lr``, ``optimizer`` ...);
            ``recipe="mnist-fast"`` starts from a named recipe
            (:mod:`cnnlab.training.recipes`) whose values the other arguments override.

    Returns:
        The :class:`History`; ``history.history["val_accuracy"]`` etc. as in Keras.

    Raises:
        ConfigError: no model or data, a bad option, ``out`` holds a run already, or the run
            cannot train on this many processes.

    A torchrun restart of the job that started ``out`` continues that run (torchrun's
    ``--max-restarts``: a lost worker costs the steps since the last checkpoint).

    The process (rank 0 under torchrun) holds the run folder for the whole training
    (:mod:`cnnlab.training.run_lock`): another process training into it is refused, and a
    failure before the run's ``config.json`` was written leaves no folder behind.
    """
    name = model_text(model) if model is not None else None
    return _run_session(
        ("training options", {"model": name, **_same_everywhere(options)}),
        lambda dist, owner: _new_run(name, data, out, options, dist, owner),
        None if isinstance(data, str) else data,
        _RunSettings(callbacks, verbose, progress, cache_dir, defer_curves, threads),
        model if isinstance(model, nn.Module) else None,
    )


def resume(
    run_dir: str | Path,
    data: str | DatasetSplits | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    model: str | nn.Module | None = None,
    out: str | Path | None = None,
    defer_curves: bool = False,
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
            from the run's data spec); a data spec is compared with the saved one.
        callbacks: extra callbacks, called after the built-in ones.
        verbose: print one line per epoch to stderr.
        progress: progress bar per epoch; default: when stderr is a terminal.
        cache_dir: dataset cache folder.
        model: the model name given again (must be the run's); or, for a run trained on a
            module passed to :func:`fit`, a module built like the trained one (required
            there).
        out: ``--out`` given again (must be ``run_dir``).
        **options: :class:`TrainConfig` options given again
            (:mod:`cnnlab.training.resume_options`): equal to the saved ones, or ``epochs``
            (not for one-cycle and cosine), ``workers``, ``device``, or ``lr`` to rescue a run
            that diverged.
        defer_curves: as for :func:`fit`.
        threads: as for :func:`fit` (pass the count the run started with for a bitwise
            continuation of a torch run whose count was chosen for the load).

    Returns:
        The whole run's :class:`History` (that of the finished run when nothing is left).

    Raises:
        CheckpointError: not a run directory, or unreadable metadata.
        ConfigError: an option that disagrees with the saved run (one line each), or another
            process holds the run.
    """
    given = {**options, **({"model": model} if isinstance(model, str) else {})}
    if isinstance(data, str):
        given["data"], data = data, None
    return _run_session(
        ("resume options", {"run": str(run_dir), **_same_everywhere(given)}),
        lambda dist, owner: _resumed_run(Path(run_dir), given, dist, owner, out=out),
        data,
        _RunSettings(callbacks, verbose, progress, cache_dir, defer_curves, threads),
        model if isinstance(model, nn.Module) else None,
    )


@dataclass(frozen=True)
class _RunSettings:
    """What :func:`fit` and :func:`resume` take alike besides the run: the extra callbacks,
    what is printed, the dataset cache, deferred curves and the thread count (see
    :func:`fit`'s arguments of the same names)."""

    callbacks: Sequence[Callback]
    verbose: bool
    progress: bool | None
    cache_dir: str | Path | None
    defer_curves: bool
    threads: int | None


_Decision = tuple[Path | None, TrainConfig, RunMeta | None]


def _run_session(
    same: tuple[str, dict[str, Any]],
    decide: Callable[[Distributed, ExitStack], _Decision],
    data: DatasetSplits | None,
    settings: _RunSettings,
    module: nn.Module | None,
) -> History:
    """Train a new or resumed run in every process of a torchrun launch (one process:
    nothing to share), holding the run folder's lock and restoring torch's threads after.

    Args:
        same: what the values are called, and the values every process must have been given
            alike (checked before anything else).
        decide: rank 0's decision, told to the others: the run folder (claimed in the
            :class:`ExitStack` it gets), its config and a resumed run's saved metadata.
        data: splits given in memory (None: load the config's data spec).
        settings: the callbacks, printing and threads the caller asked for.
        module: the ``nn.Module`` given to :func:`fit` or :func:`resume`, if any.
    """
    started = cpu_snapshot()  # other processes' load is measured from here (cnnlab.threads)
    with session() as dist, ExitStack() as owner, _restored_threads():
        dist.check_same(*same)
        run_dir, config, saved = dist.decide(lambda: decide(dist, owner))
        return _train(config, data, run_dir, saved, settings, dist, module, started)


def _new_run(
    model: str | None,
    data: str | DatasetSplits | None,
    out: str | Path | None,
    options: dict[str, Any],
    dist: Distributed,
    owner: ExitStack,
) -> tuple[Path | None, TrainConfig, RunMeta | None]:
    """Rank 0's decision for :func:`fit`: the run folder (claimed in ``owner``) and config
    (and the saved metadata when torchrun restarted the job that started ``out``: the restart
    continues it)."""
    if out is not None and restarted_run(Path(out), dist):
        # the same command line: its saved config
        return _resumed_run(Path(out), {}, dist, owner, wait=RESTART_WAIT)
    model, data, options = apply_recipe(options.get("recipe"), model, data, options)
    if model is None or data is None:
        raise ConfigError("expected a model name and data to train on, received none")
    spec = resolve_data_spec(data if isinstance(data, str) else data.name)
    config = TrainConfig(model=model, data=spec, **options)
    check_training(config, dist.world_size, dist.device(config.device))
    run_dir = Path(out) if out is not None else None
    if run_dir is not None:
        owner.enter_context(RunOwnership(run_dir, config_file=CONFIG_FILE).claim_new())
    return run_dir, config, None


def _resumed_run(
    run_dir: Path,
    given: dict[str, Any],
    dist: Distributed,
    owner: ExitStack,
    *,
    out: str | Path | None = None,
    wait: float = 0.0,
) -> tuple[Path, TrainConfig, RunMeta]:
    """Rank 0's decision for :func:`resume`: the run claimed in ``owner``, its saved config
    (with the options that may change) and metadata, on the world size it was trained on."""
    document = read_run_config(run_dir)  # refuses what is not a run before locking it
    owner.enter_context(RunOwnership(run_dir, config_file=CONFIG_FILE).claim(wait))
    config = resumed_config(run_dir, given, out=out, rescue=has_diverged(run_dir))
    saved = read_run_meta(run_dir)
    read_history(run_dir)  # a damaged history.json: named once, rewritten from last.safetensors
    check_resumed_world(saved.world_size, run_dir, dist.world_size)
    check_training(config, dist.world_size, dist.device(config.device))
    recorded = {name: config.to_dict()[name] for name in ("lr", "epochs")}
    if any(document["config"].get(name) != value for name, value in recorded.items()):
        # the run's record follows a rescue's --lr and a longer --epochs
        with writing(run_dir / CONFIG_FILE, None, None):
            atomic_write_json(
                run_dir / CONFIG_FILE, {**document, "config": {**document["config"], **recorded}}
            )
    clear_diverged(run_dir)
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
    settings: _RunSettings,
    dist: Distributed,
    module: nn.Module | None,
    started: CpuSnapshot,
) -> History:
    """Train the run ``config`` describes into ``run_dir`` (None: in memory), in every
    process of ``dist``.

    Args:
        data: the splits, or None to load ``config.data``.
        saved: a resumed run's metadata (None: a new run, whose ``config.json`` rank 0 writes
            here, before the first epoch).
        settings: callbacks, printing, dataset cache, deferred curves
            (``defer_curves``: return before ``curves.png`` is drawn, see :func:`fit`)
            and torch's threads by hand (None: :func:`_use_threads` chooses).
        module: the ``nn.Module`` given to :func:`fit` (None: build ``config.model``).
        started: when the run started (other processes' load is measured from there).
    """
    speaks = settings.verbose and dist.is_main  # rank 0 alone prints
    data_options = folder_options(config, saved)
    if data is None:  # rank 0 fills the cache, the others read it
        data = dist.main_first(
            lambda: load_dataset(
                config.data, settings.cache_dir, workers=config.workers, **data_options
            )
        )
    splits = select(data, config.classes, config.per_class, config.seed)  # --classes ...
    splits = _with_validation(splits, config)
    if saved is None:  # a new run: enough steps (its config.json records the epochs trained)
        _reach_min_steps(config, len(splits.train), speaks)
    torch.manual_seed(config.seed)
    channels = splits.train.image_shape[0]
    net, spec = build_network(config, len(splits.classes), channels, module, saved)
    net = prepare_model(net, config, dist)  # --sync-bn
    start = network_start(net, splits, config, saved)
    check_outputs(net, spec, (channels, *start.preprocessing.input_size))
    augmenter = build_augmenter(config, splits.train, saved)
    used, note = _use_threads(settings.threads, started, config, dist)  # in the metadata
    meta = _run_meta(spec, splits, config, start, augmenter, data_options, dist, used)
    if dist.is_main:
        warning = few_steps_warning(len(splits.train), config.batch_size, config.epochs)
        if warning is not None:
            warnings.warn(warning, stacklevel=2)
    if run_dir is not None and saved is None and dist.is_main:
        document = {"config": config.to_dict(), "meta": meta.to_dict()}
        with writing(run_dir / CONFIG_FILE, None, None):
            try:
                atomic_create_json(run_dir / CONFIG_FILE, document)  # never another's run
            except FileExistsError:
                raise ConfigError(
                    f"expected a new run folder, received {run_dir}, where another process "
                    "created a run meanwhile"
                ) from None
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
                net, splits, start.preprocessing, config, settings.cache_dir, speaks
            )
        )
    seed_ranks(config.seed, dist)  # several processes: augmentation and dropout differ per rank
    writes = run_dir if dist.is_main else None  # rank 0 alone writes the run's files
    bar = settings.progress
    trainer = Trainer(
        *inputs,
        dist.device(config.device),
        callbacks=[*_builtin_callbacks(writes, config), *settings.callbacks],
        checkpoint_path=last,
        meta=meta.to_dict(),
        log=_stderr if speaks else None,
        progress=(sys.stderr.isatty() if bar is None else bar) and dist.is_main,
        augmenter=augmenter,
        dist=dist,
    )
    if restore is not None:
        trainer.restore(restore)
        trainer.stop_training = _stopped_early(trainer)
    if saved is not None and speaks:
        _stderr(_where_it_continues(run_dir, trainer, config, restore is not None, dist))
    if writes is not None:
        # stateless and added after restore, so runs saved before it existed resume as well
        trainer.callbacks.append(_curves_callback(writes, config, settings.defer_curves))
    if note is not None and speaks:  # once every check has passed
        _stderr(note)
    try:
        history = trainer.fit()
    except DivergedError as exc:
        if run_dir is not None:  # rank 0: --resume RUN --lr X may now rescue the run
            mark_diverged(run_dir, exc.record)
        raise
    dist.barrier()  # the run's files are complete before any process reads them
    return history


def _stopped_early(trainer: Trainer) -> bool:
    """True when the restored run had stopped early (``--early-stopping``): it is finished."""
    return any(getattr(cb, "stopped_epoch", None) is not None for cb in trainer.callbacks)


def _where_it_continues(
    run_dir: Path | None, trainer: Trainer, config: TrainConfig, restored: bool, dist: Distributed
) -> str:
    """The line a resume prints: where training continues, or that the run is finished."""
    done, total = trainer.epoch, config.epochs
    if trainer.stop_training:
        return f"{run_dir} is finished: it stopped early after epoch {done} (--early-stopping)"
    if restored and done >= total and trainer.batches_done == 0:
        return (
            f"{run_dir} is finished: {done} of {total} epochs trained, nothing to resume "
            "(a longer run needs --epochs with a step or constant schedule)"
        )
    saved_at = position(done, trainer.batches_done)
    at = (
        f"epoch {done + 1} step {trainer.batches_done + 1} of {trainer.steps_per_epoch} "
        f"(global step {trainer.global_step + 1} of {total * trainer.steps_per_epoch})"
    )
    if dist.restart_count:  # torchrun restarted the group after a process died
        restart = f"restart {dist.restart_count} of the {dist.world_size} processes"
        if not restored:
            return f"{restart}: continuing {run_dir} from the beginning (no checkpoint yet)"
        return f"{restart}: continuing {run_dir} from its checkpoint at {saved_at}, at {at}"
    if not restored:
        return f"resuming {run_dir}: no checkpoint yet, training starts from the beginning"
    return f"resuming {run_dir} from its checkpoint at {saved_at}: continuing at {at}"


def _reach_min_steps(config: TrainConfig, examples: int, verbose: bool) -> None:
    """Raise ``config.epochs`` until training takes ``config.min_steps`` optimiser steps
    (small data: a one-cycle schedule of a dozen steps leaves the network half trained), and
    say so in one line."""
    per_epoch = math.ceil(examples / config.batch_size)  # as the Trainer counts its steps
    if config.min_steps <= per_epoch * config.epochs:
        return
    epochs = math.ceil(config.min_steps / per_epoch)
    if verbose:
        _stderr(
            f"{config.epochs} epochs of {per_epoch} steps ({examples} training images, batch "
            f"{config.batch_size}) are {per_epoch * config.epochs} optimiser steps, fewer than "
            f"min_steps={config.min_steps}: training {epochs} epochs ({epochs * per_epoch} "
            f"steps) instead (--epochs or --min-steps to choose)"
        )
    config.epochs = epochs


def _use_threads(
    threads: int | None,
    started: CpuSnapshot | None,
    config: TrainConfig,
    dist: Distributed,
) -> tuple[ThreadsUsed, str | None]:
    """Set torch's thread count for training: ``threads`` when given; else, for one process on
    the CPU without ``OMP_NUM_THREADS``, the cores other processes leave free.

    Returns:
        The count and how it was chosen (the run records it), and the line to log when the
        choice leaves busy cores alone (None otherwise).
    """
    if threads is not None:
        torch.set_num_threads(check_threads(threads))
        return ThreadsUsed(threads, "by hand"), None
    if dist.active:  # several processes share the cores as the launcher said
        return ThreadsUsed(torch.get_num_threads(), "launcher"), None
    if requested_threads() is not None:  # --threads N or OMP_NUM_THREADS: the user chose
        return ThreadsUsed(torch.get_num_threads(), "by hand"), None
    if dist.device(config.device).type != "cpu":
        return ThreadsUsed(torch.get_num_threads(), "device default"), None
    choice = choose_threads(started)
    torch.set_num_threads(choice.threads)
    note = choice.describe() if choice.threads < choice.cores else None  # cores left alone
    return ThreadsUsed(choice.threads, "automatic"), note


@contextmanager
def _restored_threads() -> Iterator[None]:
    """Give torch back its thread count when training ends (fit may change it)."""
    previous = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_meta(
    spec: ModelSpec,
    splits: DatasetSplits,
    config: TrainConfig,
    start: NetworkStart,
    augmenter: Augmenter | None,
    data_options: dict[str, Any],
    dist: Distributed,
    threads: ThreadsUsed,
) -> RunMeta:
    """What the run and each of its checkpoints record about its model, data, processes and
    threads."""
    augment, augment_pca = recorded_augment(augmenter)
    return RunMeta(
        model=spec,
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
        threads=threads,
        **launch_meta(dist),
    )


def _selection(config: TrainConfig) -> ClassSelection | None:
    if config.classes is None and config.per_class is None:
        return None
    classes = None if config.classes is None else tuple(config.classes)
    return ClassSelection(classes, config.per_class)


def _curves_callback(run_dir: Path, config: TrainConfig, deferred: bool) -> PlotCurves:
    """The callback drawing ``curves.png`` when training ends (matplotlib loads only then)."""
    from cnnlab.viz.plots import PlotCurves

    title = f"{config.model} on {config.data}"
    return PlotCurves(
        run_dir / CURVES,
        config.epochs,
        title=title,
        monitor=config.monitor,
        deferred=deferred,
    )


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
