"""The training loop.

:class:`Trainer` runs epochs of mini-batch training over uint8 images (held in memory, or
streamed from their files by worker processes: the same batches either way), evaluates on the
validation split, calls the callbacks and writes resumable checkpoints. Everything random is
derived from the seed (initial weights, the order of each epoch, the global torch RNG that
dropout and augmentation draw from) and saved in the checkpoint, so on the CPU a run that is
killed and resumed ends with bitwise the same weights and history as one that never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.augment import Augmenter
from cnnlab.data.dataset import DatasetSplits, ImageSplit
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import CheckpointError, TrainingError
from cnnlab.training.callbacks import Callback
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import build_engine
from cnnlab.training.history import History
from cnnlab.training.progress import EpochProgress

Logger = Callable[[str], None]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of ``epoch`` (0-based): a function of seed and epoch only,
    so a resumed run replays exactly the batches an uninterrupted run sees."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class Trainer:
    """Trains ``model`` on ``data.train``, validating on ``data.val`` (if any).

    Args:
        model: a model built by :func:`cnnlab.create_model` (it carries ``cnnlab_spec``).
        data: splits of uint8 images, in memory or streamed; ``val`` may be None.
        preprocessing: how batches become model input.
        config: the run's :class:`TrainConfig`.
        device: where training happens.
        callbacks: called after every epoch, in order.
        checkpoint_path: where resumable checkpoints go (None: none are written).
        meta: extra checkpoint metadata (classes, input shape, ...).
        log: receives one human-readable line per epoch.
        progress: show a progress bar per epoch.
        augmenter: random augmentation of training batches (never used for evaluation).
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
    ) -> None:
        self.config = config
        self.device = device
        self.data = data
        self.preprocessing = preprocessing
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        # the engine does the arithmetic (torch autograd or the NumPy engine); the loop is shared
        self.engine = build_engine(model, config, device, self.steps_per_epoch)
        self.model = self.engine.model
        self.device = self.engine.device
        self.train = data.train.to(self.device)  # in memory: on the device; streamed: pinned
        self.train_labels = data.train.labels.to(self.device)
        self.callbacks = list(callbacks)
        self.checkpoint_path = checkpoint_path
        self.meta = dict(meta or {})
        self.log = log or (lambda line: None)
        self.show_progress = progress
        self.augmenter = augmenter
        self.history = History()
        self.stop_training = False
        # position: the next step to run, and what the current epoch has accumulated so far
        self.epoch, self.step = 0, 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self) -> History:
        """Train until ``config.epochs`` (or early stopping); returns the history."""
        cfg = self.config
        while self.epoch < cfg.epochs and not self.stop_training:
            started = time.perf_counter() - self.partial["seconds"]
            # the batches still to run this epoch (all of them, unless resumed mid-epoch)
            order = epoch_order(len(self.train_labels), cfg.seed, self.epoch)
            remaining = order[self.step * cfg.batch_size :]
            batches = zip(
                remaining.split(cfg.batch_size), self.train.batches(cfg.batch_size, remaining)
            )
            self.engine.train()
            with EpochProgress(
                self.steps_per_epoch,
                self.step,
                self.epoch + 1,
                cfg.epochs,
                enabled=self.show_progress,
            ) as bar:
                for batch, images in batches:
                    loss = self._train_step(batch, images)
                    self.step += 1
                    bar.update(loss)
                    if cfg.checkpoint_every and self._global_step() % cfg.checkpoint_every == 0:
                        self.partial["seconds"] = time.perf_counter() - started
                        if self.step < self.steps_per_epoch:
                            self.save_state()
            logs = self._end_epoch(time.perf_counter() - started)
            self.log(format_epoch(self.epoch, cfg.epochs, logs))
        return self.history

    def _train_step(self, batch: torch.Tensor, images: torch.Tensor) -> float:
        """One optimisation step on the examples ``batch`` (indices into the training split)
        whose stored images are ``images`` (N x C x H x W, uint8)."""
        images = images.to(self.device, non_blocking=True)  # streamed batches come from the CPU
        if self.augmenter is not None:
            # on the stored size, before padding: shifts are fractions of the stored image and
            # fills are the image's own (draws from the global RNG, saved in checkpoints)
            images = self.augmenter(images)  # N x C x H x W, float, 0-255
        x = self.preprocessing(images)  # N x C x H' x W', float, padded and normalised
        y = self.train_labels[batch]
        value, correct = self.engine.forward_loss(x, y)
        if not math.isfinite(value):
            kept = (
                f"; the last good checkpoint is {self.checkpoint_path}"
                if self.checkpoint_path
                else ""
            )
            raise TrainingError(
                f"expected a finite loss, received loss={value} at epoch {self.epoch + 1} step "
                f"{self.step + 1} (global step {self._global_step() + 1}); training stopped{kept}"
            )
        self.engine.step()
        self.partial["loss_sum"] += value * len(batch)
        self.partial["correct"] += correct
        self.partial["seen"] += len(batch)
        return value

    def _end_epoch(self, seconds: float) -> dict[str, float]:
        seen = self.partial["seen"]
        logs = {
            "loss": self.partial["loss_sum"] / seen,
            "accuracy": self.partial["correct"] / seen,
            "val_loss": math.nan,
            "val_accuracy": math.nan,
            "lr": self.engine.lr,
        }
        if self.data.val is not None:
            logs["val_loss"], logs["val_accuracy"] = self.evaluate_split(self.data.val)
        logs["seconds"] = seconds
        self.epoch, self.step = self.epoch + 1, 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.history.append(self.epoch, logs)
        for callback in self.callbacks:
            callback.on_epoch_end(self, self.epoch, logs)
        self.save_state()
        return logs

    def evaluate_split(self, split: ImageSplit) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the current model on a split."""
        logits = self.engine.logits(split, self.preprocessing)
        loss = F.cross_entropy(logits, split.labels).item()
        return loss, (logits.argmax(1) == split.labels).float().mean().item()

    def _global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    # ---- checkpoints ------------------------------------------------------------------------
    def save_weights(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """A weights-only checkpoint (no training state)."""
        state = self.engine.model_state()
        save_checkpoint(path, Checkpoint(state, {**self.meta, **(extra or {})}))

    def save_state(self) -> None:
        """A resumable checkpoint of everything, at ``checkpoint_path`` (if set)."""
        if self.checkpoint_path is None:
            return
        training = {
            "epoch": self.epoch,
            "step": self.step,
            "partial": dict(self.partial),
            **self.engine.state_dict(),  # optimizer, scheduler (and the NumPy engine's RNG)
            "callbacks": {cb.key: cb.state_dict() for cb in self.callbacks},
            "history": self.history.to_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }
        if torch.cuda.is_available():
            training["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        meta = {**self.meta, "epoch": self.epoch, "step": self.step}
        state = self.engine.model_state()
        save_checkpoint(self.checkpoint_path, Checkpoint(state, meta, training))

    def restore(self, path: Path) -> None:
        """Continue from a resumable checkpoint written by :meth:`save_state`."""
        ckpt = load_checkpoint(path)
        if not ckpt.training:
            raise CheckpointError(f"expected a resumable checkpoint, received weights-only {path}")
        state = ckpt.training
        self.engine.load_model_state(ckpt.model_state)
        self.engine.load_state_dict(state)
        for callback in self.callbacks:
            callback.load_state_dict(state["callbacks"][callback.key])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step, self.partial = state["epoch"], state["step"], dict(state["partial"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """One human line per epoch."""
    val = ""
    if not math.isnan(logs["val_loss"]):
        val = f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
    return (
        f"epoch {epoch}/{epochs}  loss {logs['loss']:.4f}  accuracy {logs['accuracy']:.4f}"
        f"{val}  lr {logs['lr']:.3g}  {logs['seconds']:.1f}s"
    )
