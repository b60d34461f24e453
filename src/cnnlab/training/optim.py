"""Optimizers and learning-rate schedules by name (the choices of :class:`TrainConfig`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnlab.training.config import TrainConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer``.

    ``sgd`` is plain SGD, ``momentum`` SGD with momentum, ``nesterov`` SGD with Nesterov
    momentum; ``adam``, ``adamw`` and ``rmsprop`` are torch's with their default betas/alpha.
    """
    lr, wd, name = config.lr, config.weight_decay, config.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=name == "nesterov", weight_decay=wd
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule named by ``config.schedule``, stepped once per optimisation step.

    - ``constant``: ``lr`` throughout.
    - ``step``: multiply by ``step_gamma`` every ``step_epochs`` epochs.
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
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "onecycle":
        has_momentum = config.optimizer not in ("sgd", "rmsprop")
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total, cycle_momentum=has_momentum
        )
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
