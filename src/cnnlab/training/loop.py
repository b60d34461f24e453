"""The training loop.

:class:`Trainer` runs epochs of mini-batch training over uint8 images (held in memory, or
streamed from their files by worker processes: the same batches either way), evaluates on the
validation split, calls the callbacks and writes resumable checkpoints. Everything random is
derived from the seed (initial weights, the order of each epoch, the global torch RNG that
dropout and augmentation draw from) and saved in the checkpoint, so on the CPU a run that is
killed and resumed ends with bitwise the same weights and history as one that never stopped.

On several processes (torchrun, :mod:`cnnlab.training.distributed`) every process runs this
loop on its share of each global batch; the epoch totals, validation metrics, early stopping
and checkpoints are those of the whole batch, and only rank 0 writes and logs.
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.augment import Augmenter
from cnnlab.data.dataset import DatasetSplits, ImageSplit
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import CheckpointError, CnnlabError, TrainingError
from cnnlab.inference import to_model_layout
from cnnlab.training.callbacks import Callback
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import Distributed, local_batches, settle_buckets
from cnnlab.training.divergence import (
    DivergedError,
    LossWatch,
    first_non_finite,
    where_to_go_on,
)
from cnnlab.training.engine import build_engine
from cnnlab.training.history import History
from cnnlab.training.progress import EpochProgress

Logger = Callable[[str], None]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of ``epoch`` (0-based): a function of seed and epoch only,
    so a resumed run replays exactly the batches an uninterrupted run sees."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


@dataclass
class EpochTotals:
    """What the current epoch has added up so far, over the whole global batches.

    Attributes:
        loss_sum: the loss summed over the examples seen (batch mean x batch size).
        correct: correct predictions.
        seen: examples trained on.
        seconds: time spent on the epoch (carried over a resume).
    """

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def add(self, mean_loss: float, correct: int, examples: int) -> None:
        """Count one global batch of ``examples`` with mean loss ``mean_loss``."""
        self.loss_sum += mean_loss * examples
        self.correct += correct
        self.seen += examples

    @property
    def loss(self) -> float:
        return self.loss_sum / self.seen

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen

    def to_dict(self) -> dict[str, float]:
        """The checkpoint's ``partial`` entry."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochTotals:
        return cls(
            float(data["loss_sum"]), int(data["correct"]), int(data["seen"]), float(data["seconds"])
        )


class Trainer:
    """Trains ``model`` on ``data.train``, validating on ``data.val`` (if any).

    Args:
        model: a model built by :func:`cnnlab.create_model` (it carries ``cnnlab_spec``).
        data: splits of uint8 images, in memory or streamed; ``val`` may be None.
        preprocessing: how batches become model input.
        config: the run's :class:`TrainConfig`.
        device: where training happens.
        callbacks: called after every epoch, in order, on every process (the run's file
            writers are given to rank 0 only).
        checkpoint_path: where resumable checkpoints go (None: none are written).
        meta: extra checkpoint metadata (classes, input shape, ...).
        log: receives one human-readable line per epoch.
        progress: show a progress bar per epoch.
        augmenter: random augmentation of training batches (never used for evaluation).
        dist: this process's place among the training processes (default: the only one).

    Attributes:
        train_split: the training images (on the device when in memory).
        epoch: epochs completed.
        batches_done: global batches of the current epoch completed (the position to resume
            from; ``engine.step()`` is the optimisation step itself).
        totals: the current epoch's :class:`EpochTotals`.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DatasetSplits,
        preprocessing: Preprocessing,
        config: TrainConfig,
        device: torch.device,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: Path | None = None,
        meta: dict[str, Any] | None = None,
        log: Logger | None = None,
        progress: bool = False,
        augmenter: Augmenter | None = None,
        dist: Distributed | None = None,
    ) -> None:
        self.config = config
        self.dist = dist or Distributed()
        self.data = data
        self.preprocessing = preprocessing
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        # the engine does the arithmetic (torch autograd or the NumPy engine); the loop is shared
        self.engine = build_engine(
            model, config, device, self.steps_per_epoch, self.dist.world_size
        )
        self.model = self.engine.model
        self.device = self.engine.device
        self.train_split = data.train.to(self.device)  # in memory: on the device; streamed: pinned
        self.train_labels = data.train.labels.to(self.device)
        self.callbacks = list(callbacks)
        self.checkpoint_path = checkpoint_path
        self.meta = dict(meta or {})
        self.log = log or (lambda line: None)
        self.show_progress = progress
        self.augmenter = augmenter
        self.history = History()
        self.stop_training = False
        self.epoch, self.batches_done = 0, 0
        self.totals = EpochTotals()
        self.watch = LossWatch(_num_classes(data, self.meta))  # a loss exploding while finite
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of the last checkpoint
        self._settled = False

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self) -> History:
        """Train until ``config.epochs`` (or early stopping); returns the history."""
        cfg = self.config
        while self.epoch < cfg.epochs and not self.stop_training:
            started = time.perf_counter() - self.totals.seconds
            self.engine.train()
            with EpochProgress(
                self.steps_per_epoch,
                self.batches_done,
                self.epoch + 1,
                cfg.epochs,
                enabled=self.show_progress,
            ) as bar:
                for batch, images, global_size in self._batches():
                    loss = self._train_step(batch, images, global_size)
                    self.batches_done += 1
                    bar.update(loss)
                    if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                        self.totals.seconds = time.perf_counter() - started
                        if self.batches_done < self.steps_per_epoch:
                            self.save_state()
            logs = self._end_epoch(time.perf_counter() - started)
            self.log(format_epoch(self.epoch, cfg.epochs, logs))
        return self.history

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """The rest of the current epoch: for every global batch of the seeded order, this
        process's share of it (indices into the training split), their stored images and the
        size of the global batch. One process's share is the whole batch; rank ``r`` of ``W``
        takes ``batch[r::W]`` and decodes (when streamed) only those images.

        Shape:
            ``(k,)`` int64, ``(k, C, H, W)`` uint8; ``k`` may be 0 for an uneven last batch.
        """
        size = self.config.batch_size
        order = epoch_order(len(self.train_labels), self.config.seed, self.epoch)
        shares, share_size = local_batches(order[self.batches_done * size :], size, self.dist)
        if not shares:
            return
        images = self.train_split.batches(share_size, torch.cat([s for s, _ in shares]))
        for share, global_size in shares:
            yield share, next(images) if len(share) else self._no_images(), global_size

    def _no_images(self) -> torch.Tensor:
        """A batch of no images (this rank's share of a last batch smaller than the world).
        Shape: ``(0, C, H, W)`` uint8 (``(0, ...)`` for cached features)."""
        split = self.train_split
        if split.streamed:  # nothing to decode
            return torch.empty((0, *split.image_shape), dtype=torch.uint8)
        return split.take(torch.zeros(0, dtype=torch.int64))

    def _train_step(self, batch: torch.Tensor, images: torch.Tensor, global_size: int) -> float:
        """One optimisation step on the examples ``batch`` (indices into the training split,
        this process's share of a global batch of ``global_size``) whose stored images are
        ``images`` (N x C x H x W, uint8); returns the global batch's mean loss."""
        images = images.to(self.device, non_blocking=True)  # streamed batches come from the CPU
        if self.augmenter is not None and len(batch):
            # on the stored size, before padding: shifts are fractions of the stored image and
            # fills are the image's own (draws from the global RNG, saved in checkpoints)
            images = self.augmenter(images)  # N x C x H x W, float, 0-255
        x = self.preprocessing(images)  # N x C x H' x W', float, padded and normalised
        y = self.train_labels[batch]
        if self.dist.active:
            if not self._settled:  # the same gradient buckets for every step: bitwise resumes
                settle_buckets(self.engine.replica, to_model_layout(x, self.engine.channels_last))
                self._settled = True
            value, correct = self.engine.forward_loss(x, y, global_batch=global_size)
            # each value is the process's loss term times W: their mean is the batch's loss
            total, correct = self.dist.sum([value, correct])
            value, correct = total / self.dist.world_size, int(correct)
        else:
            value, correct = self.engine.forward_loss(x, y)
        # the same value on every process: all stop together
        if not math.isfinite(value):
            raise self._diverged(f"a finite loss, received loss={value}", value)
        self.watch.add(value)
        if self.watch.exploded:
            raise self._diverged(self.watch.describe(), value)
        self.engine.step()
        self.totals.add(value, correct, global_size)
        return value

    def _end_epoch(self, seconds: float) -> dict[str, float]:
        logs = {
            "loss": self.totals.loss,
            "accuracy": self.totals.accuracy,
            "val_loss": math.nan,
            "val_accuracy": math.nan,
            "lr": self.engine.lr,
        }
        if self.data.val is not None:
            logs["val_loss"], logs["val_accuracy"] = self.evaluate_split(self.data.val)
        logs["seconds"] = seconds
        logs = self.dist.broadcast(logs)  # rank 0's numbers (and seconds) on every process
        self.epoch, self.batches_done = self.epoch + 1, 0
        self.totals = EpochTotals()
        self.history.append(self.epoch, logs)
        self._check_weights()  # before any callback writes them (best.safetensors)
        for callback in self.callbacks:
            with writing(getattr(callback, "path", None), self.checkpoint_path, self.saved_at):
                callback.on_epoch_end(self, self.epoch, logs)
        self.stop_training = self.dist.broadcast(self.stop_training)  # rank 0 decides
        self.save_state()
        return logs

    def evaluate_split(self, split: ImageSplit) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the current model on a split (its logits
        computed in parts by the processes and gathered: the 1-process numbers)."""
        logits = self.dist.gather_rows(
            split, lambda part: self.engine.logits(part, self.preprocessing)
        )
        loss = F.cross_entropy(logits, split.labels).item()
        return loss, (logits.argmax(1) == split.labels).float().mean().item()

    @property
    def global_step(self) -> int:
        """Global batches trained on since the start of the run."""
        return self.epoch * self.steps_per_epoch + self.batches_done

    # ---- checkpoints ------------------------------------------------------------------------
    def save_weights(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """A weights-only checkpoint (no training state), written by this process."""
        state = self.engine.model_state()
        with writing(path, self.checkpoint_path, self.saved_at):
            save_checkpoint(path, Checkpoint(state, {**self.meta, **(extra or {})}))

    def save_state(self) -> None:
        """A resumable checkpoint of everything, at ``checkpoint_path`` (if set); on several
        processes every rank's RNG state is gathered and rank 0 writes."""
        if self.checkpoint_path is None:
            return
        self._check_weights()  # every rank holds the same weights: all stop together
        rng = self.dist.all_gather(_rng_state())
        if not self.dist.is_main:
            return
        training = {
            "epoch": self.epoch,
            "step": self.batches_done,
            "partial": self.totals.to_dict(),
            **self.engine.state_dict(),  # optimizer, scheduler (and the NumPy engine's RNG)
            "callbacks": {cb.key: cb.state_dict() for cb in self.callbacks},
            "history": self.history.to_dict(),
            "loss_watch": self.watch.state_dict(),
            "lr": self.config.lr,  # the base rate these optimizer and schedule states are for
        }
        if self.dist.active:  # each rank's random stream, in rank order
            training["rng_by_rank"] = rng
        else:
            training["rng"] = rng[0]
        meta = {**self.meta, "epoch": self.epoch, "step": self.batches_done}
        state = self.engine.model_state()
        with writing(self.checkpoint_path, self.checkpoint_path, self.saved_at):
            save_checkpoint(self.checkpoint_path, Checkpoint(state, meta, training))
        self.saved_at = (self.epoch, self.batches_done)

    def restore(self, path: Path) -> None:
        """Continue from a resumable checkpoint written by :meth:`save_state` (every process
        reads it and takes its own RNG state).

        Raises:
            CheckpointError: weights-only, or a training state with a part missing, mistyped
                or of another shape than this run's (one line naming the file).
        """
        ckpt = load_checkpoint(path)
        if not ckpt.training:
            raise CheckpointError(f"expected a resumable checkpoint, received weights-only {path}")
        state = ckpt.training
        for key in ("epoch", "step"):
            value = state.get(key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise CheckpointError(
                    f"expected training state {key!r} to be a whole number >= 0, received "
                    f"{key}={value!r} in {path}; resume from another copy or start a new run"
                )
        try:
            self._restore_state(ckpt.model_state, state)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            part = f"missing {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            reason = " ".join(part.split())[:160]
            raise CheckpointError(
                f"expected a complete training state in the resumable checkpoint, received "
                f"{path} whose state does not fit this run ({type(exc).__name__}: {reason}); "
                f"resume from another copy or start a new run"
            ) from None

    def _restore_state(self, model_state: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        self.engine.load_model_state(model_state)
        self.engine.load_state_dict(state)
        saved_lr = float(state.get("lr", self.config.lr))
        if saved_lr != self.config.lr:  # a rescue: --resume RUN --lr X after a divergence
            self.engine.rescale_lr(self.config.lr / saved_lr)
        self.watch.load_state_dict(state.get("loss_watch"))
        for callback in self.callbacks:
            callback.load_state_dict(state["callbacks"][callback.key])
        self.history = History.from_dict(state["history"])
        self.epoch, self.batches_done = state["epoch"], state["step"]
        self.totals = EpochTotals.from_dict(state["partial"])
        self.saved_at = (self.epoch, self.batches_done)
        rng = state["rng_by_rank"][self.dist.rank] if self.dist.active else state["rng"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    # ---- stopping -----------------------------------------------------------------------------
    def _check_weights(self) -> None:
        """Stop (:class:`DivergedError`) when a weight or buffer is NaN or infinite."""
        name = first_non_finite(self.engine.model_state())
        if name is not None:
            raise self._diverged(f"finite weights, received NaN or inf in {name}", math.nan)

    def _diverged(self, what: str, loss: float) -> CnnlabError:
        """The error that stops a diverged run (rank 0's; a silent one on the others)."""
        run_dir = self.checkpoint_path.parent if self.checkpoint_path is not None else None
        saved = "" if self.saved_at is None else position(*self.saved_at)
        where = where_to_go_on(run_dir, self.checkpoint_path, self.config.lr, saved)
        at = (
            f"epoch {self.epoch + 1} step {self.batches_done + 1} "
            f"(global step {self.global_step + 1})"
        )
        record = {
            "epoch": self.epoch + 1,
            "step": self.batches_done + 1,
            "loss": loss if math.isfinite(loss) else str(loss),
            "lr": self.config.lr,
        }
        message = f"expected {what} at {at}: training diverged and stopped; {where}"
        return self.dist.shared(DivergedError(message, record))


def _num_classes(data: Any, meta: dict[str, Any]) -> int:
    """The classifier's classes: the splits' (cached features have none: the run's)."""
    classes = getattr(data, "classes", None) or meta.get("classes")
    if classes:
        return len(classes)
    return int(data.train.labels.max()) + 1 if len(data.train.labels) else 2


def position(epoch: int, step: int) -> str:
    """Words for a checkpoint's place: ``epochs completed``, ``steps into the next``."""
    if step == 0:
        return f"end of epoch {epoch}" if epoch else "start of training"
    return f"epoch {epoch + 1} step {step}"


@contextmanager
def writing(
    path: Path | None, checkpoint: Path | None, saved_at: tuple[int, int] | None
) -> Iterator[None]:
    """Turn a failed write of a run file (a full disk, a lost folder) into one line naming
    the file, the error and the checkpoint that stays intact."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        code = f" [{errno.errorcode.get(exc.errno, exc.errno)}]" if exc.errno else ""
        target = path if path is not None else exc.filename
        if checkpoint is not None and checkpoint.is_file():
            when = f" ({position(*saved_at)})" if saved_at is not None else ""
            kept = f"the previous checkpoint {checkpoint}{when} is intact"
            then = f"; free space, then continue with cnnlab train --resume {checkpoint.parent}"
        else:
            kept, then = "no checkpoint had been written yet", ""
        raise TrainingError(
            f"expected to write {target}, received {reason}{code}; training stopped, {kept}{then}"
        ) from None


def _rng_state() -> dict[str, Any]:
    """This process's torch RNG states (CPU, and every CUDA device)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """One human line per epoch."""
    val = ""
    if not math.isnan(logs["val_loss"]):
        val = f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
    return (
        f"epoch {epoch}/{epochs}  loss {logs['loss']:.4f}  accuracy {logs['accuracy']:.4f}"
        f"{val}  lr {logs['lr']:.3g}  {logs['seconds']:.1f}s"
    )
