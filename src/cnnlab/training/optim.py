"""Optimizers and learning-rate schedules by name (the choices of :class:`TrainConfig`).

The NumPy engine's schedules (the same, as pure functions of the step) are
:func:`cnnlab.bridge.engine.build_schedule`.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import torch

from cnnlab.training.config import TrainConfig


def build_optimizer(
    params: Iterable[Any], config: TrainConfig, optim: ModuleType = torch.optim
) -> Any:
    """The optimizer named by ``config.optimizer``.

    ``sgd`` is plain SGD, ``momentum`` SGD with momentum, ``nesterov`` SGD with Nesterov
    momentum; ``adam``, ``adamw`` and ``rmsprop`` are torch's with their default betas/alpha.

    Args:
        params: the parameters to optimise.
        config: the run's configuration.
        optim: where the optimizer classes come from: ``torch.optim``, or ``cnnlab.scratch``
            for the NumPy engine (same class names, signatures and update rules).
    """
    lr, wd, name = config.lr, config.weight_decay, config.optimizer
    if name == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=wd)
    if name in ("momentum", "nesterov"):
        return optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=name == "nesterov", weight_decay=wd
        )
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    return optim.RMSprop(params, lr=lr, weight_decay=wd)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule named by ``config.schedule``, stepped once per optimisation step.

    - ``constant``: ``lr`` throughout.
    - ``step``: multiply by ``step_gamma`` every ``step_epochs`` epochs.
    - ``multistep``: multiply by ``step_gamma`` at the start of each epoch of ``milestones``
      (ResNet's "divide by 10 at 32k and 48k iterations").
    - ``cosine``: cosine decay from ``lr`` to 0 over the run.
    - ``onecycle``: warm up to ``lr`` over 30% of the run, then cosine-anneal to ``lr / 25e4``
      (Smith's one-cycle policy; momentum / beta1 cycles between 0.85 and 0.95 when the
      optimizer has one).
    """
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_epochs * steps_per_epoch, gamma=config.step_gamma
        )
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer,
            milestones=[epoch * steps_per_epoch for epoch in config.milestones or ()],
            gamma=config.step_gamma,
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "onecycle":
        has_momentum = config.optimizer not in ("sgd", "rmsprop")
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],  # --lr-backbone: 2 groups
            total_steps=total,
            cycle_momentum=has_momentum,
        )
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class OptimizerLr:
    """The engines' ``lr`` (:class:`cnnlab.training.engine.Engine`): the learning rate of the
    first parameter group of ``self.optimizer``, a ``torch.optim`` or ``cnnlab.scratch``
    optimizer alike (both keep PyTorch's ``param_groups``)."""

    optimizer: Any

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.optimizer.param_groups[0]["lr"]
