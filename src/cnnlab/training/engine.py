"""The engine seam: what the training loop asks of whichever engine does the arithmetic.

The :class:`~cnnlab.training.loop.Trainer` owns the loop (batches, epochs, callbacks, history,
checkpoints); an engine owns the model's numbers and the optimizer. Two engines implement
:class:`Engine`: :class:`TorchEngine` (autograd) and :class:`cnnlab.bridge.engine.NumpyEngine`
(the scratch engine via the bridge, looked up only when a run asks for it). Both take a
preprocessed torch batch and keep the model's state as a torch ``state_dict`` with the same
keys, so checkpoints, ``load_run``, ``evaluate``, ``predict`` and viz never see the difference.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.dataset import ImageSplit
from cnnlab.data.preprocess import Preprocessing
from cnnlab.inference import compute_logits, to_model_layout
from cnnlab.models._base import aux_loss_weight
from cnnlab.training.config import TrainConfig
from cnnlab.training.distributed import wrap_for_training
from cnnlab.training.freezing import param_groups, set_train_mode
from cnnlab.training.optim import OptimizerLr, build_optimizer, build_scheduler
from cnnlab.training.precision import Precision


class Engine(Protocol):
    """One training engine.

    Attributes:
        model: the torch model (for the NumPy engine, a twin whose weights
            :meth:`model_state` brings up to date).
        device: where batches must be for :meth:`forward_loss`.
    """

    model: nn.Module
    device: torch.device

    def train(self) -> None:
        """Switch the model to training mode."""

    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """Forward a preprocessed batch; returns the loss (auxiliary heads included) and the
        number of correct predictions. Shape: x ``(N, C, H, W)`` float, y ``(N,)``."""

    def step(self) -> None:
        """Backpropagate the last :meth:`forward_loss`, update the weights, advance the
        schedule."""

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""

    def logits(
        self, images: torch.Tensor | ImageSplit, preprocessing: Preprocessing
    ) -> torch.Tensor:
        """Eval-mode logits of uint8 images (a tensor, or a split in memory or streamed).
        Shape: ``(N, C, H, W) -> (N, classes)``."""

    def model_state(self) -> dict[str, torch.Tensor]:
        """The model's ``state_dict`` (torch tensors, torch keys)."""

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a ``state_dict`` written by :meth:`model_state` (by either engine)."""

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, schedule, loss scaler and engine RNG state (checkpointable: tensors and
        JSON)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (extra keys are ignored)."""

    def rescale_lr(self, ratio: float) -> None:
        """Multiply every learning rate of the restored optimizer and schedule by ``ratio``
        (a rescue: ``--resume RUN --lr X`` after a divergence)."""


class TorchEngine(OptimizerLr):
    """Autograd and ``torch.optim``, in the configured precision (autocast, and loss scaling for
    fp16: :mod:`cnnlab.training.precision`), with channels-last memory on the CPU and on CUDA
    when configured."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        device: torch.device,
        steps_per_epoch: int,
        world_size: int = 1,
    ) -> None:
        self.device = device
        self.precision = Precision(config.precision, device)  # refuses what the device cannot do
        if device.type == "cuda":  # fastest convolution kernels per shape (docs/distributed.md)
            torch.backends.cudnn.benchmark = True
        self.channels_last = config.channels_last and device.type in ("cpu", "cuda")
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.to(device=device, memory_format=memory_format)
        # several processes: the training forward goes through DistributedDataParallel, whose
        # backward averages the gradients over them; self.model stays the plain module (its
        # state, train mode and evaluation are those of one process)
        self.world_size = world_size
        self.replica = wrap_for_training(self.model, device) if world_size > 1 else self.model
        groups = param_groups(self.model, config.lr, config.lr_backbone)  # trainable only
        self.optimizer = build_optimizer(groups, config)
        self.scheduler = build_scheduler(self.optimizer, config, steps_per_epoch)
        self.label_smoothing = config.label_smoothing
        self._loss: torch.Tensor | None = None

    def train(self) -> None:
        set_train_mode(self.model)  # frozen BatchNorm layers stay in eval mode

    def forward_loss(
        self, x: torch.Tensor, y: torch.Tensor, global_batch: int | None = None
    ) -> tuple[float, int]:
        """See :class:`Engine`; with several processes, ``global_batch`` is the number of
        examples of the global batch this process's ``x`` is a share of, and the returned
        loss is this process's term of the global mean times the world size."""
        with self.precision.autocast():  # fp32: no-op; bf16/fp16: the forward pass and the loss
            logits = self.replica(to_model_layout(x, self.channels_last))
            loss = self._loss_of(logits, y, global_batch)
            for aux in getattr(self.model, "aux_outputs", ()):  # GoogLeNet's side classifiers
                loss = loss + aux_loss_weight(self.model) * self._loss_of(aux, y, global_batch)
        self._loss = loss
        return loss.item(), int((logits.argmax(1) == y).sum())

    def _loss_of(
        self, logits: torch.Tensor, y: torch.Tensor, global_batch: int | None
    ) -> torch.Tensor:
        if global_batch is None:  # one process: the mean over the batch
            return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        # The loss of a global batch of B examples shared by W processes is the mean of its B
        # per-example losses. DDP's backward averages the W processes' gradients (sums them,
        # divides by W), so each process's loss is the SUM of its own examples' losses times
        # W / B: the averaged gradient is then the gradient of (sum over all B examples) / B,
        # the 1-process gradient, whatever each process's share (uneven last batches, or an
        # empty share, included). Only float rounding differs from one process.
        total = F.cross_entropy(logits, y, reduction="sum", label_smoothing=self.label_smoothing)
        return total * (self.world_size / global_batch)

    def step(self) -> None:
        assert self._loss is not None, "step() needs a forward_loss() first"
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(self._loss)  # fp16: scaled
        self.precision.step(self.optimizer, self.scheduler)  # fp16: skipped on inf/NaN gradients
        self._loss = None

    def logits(
        self, images: torch.Tensor | ImageSplit, preprocessing: Preprocessing
    ) -> torch.Tensor:
        return compute_logits(self.model, images, preprocessing, channels_last=self.channels_last)

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **self.precision.state_dict(),  # fp16: the loss scaler ("grad_scaler")
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state)

    def rescale_lr(self, ratio: float) -> None:
        # every schedule computes its next rate from these (one-cycle: max_lr, initial_lr,
        # min_lr; cosine: base_lrs and lr; step and constant: lr)
        for group in self.optimizer.param_groups:
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= ratio
        self.scheduler.base_lrs = [lr * ratio for lr in self.scheduler.base_lrs]
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def build_engine(
    model: nn.Module,
    config: TrainConfig,
    device: torch.device,
    steps_per_epoch: int,
    world_size: int = 1,
) -> Engine:
    """The engine ``config.engine`` names (``"torch"`` or ``"numpy"``; the NumPy engine runs
    in one process: :func:`cnnlab.training.distributed.check_training` refuses more)."""
    if config.engine == "numpy":
        from cnnlab.bridge.engine import NumpyEngine

        return NumpyEngine(model, config, steps_per_epoch)
    return TorchEngine(model, config, device, steps_per_epoch, world_size)
