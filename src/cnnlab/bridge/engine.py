"""The NumPy training engine behind ``cnnlab train --engine numpy``.

The torch model (built and initialised by the registry from the run seed, so both engines start
from the same weights) is traced into a scratch :class:`~cnnlab.scratch.graph.GraphNet` by the
bridge. Batches arrive preprocessed (and augmented) as torch tensors from the shared pipeline and
are viewed as float32 NumPy arrays; the loss, backward pass, optimizer (``cnnlab.scratch``, with
torch's update rules) and schedule (``cnnlab.scratch.schedules``) are NumPy. Dropout masks come
from one generator seeded with the run seed, saved in checkpoints with the optimizer state, so
resuming is bitwise. The model state is handed out as a torch ``state_dict`` with torch's keys.

Both cores: each batch is cut into two fixed halves (:class:`cnnlab.scratch.parallel.DataParallel`)
computed by as many threads as torch may use (``torch.get_num_threads()``: ``--threads``, or the
count :mod:`cnnlab.threads` chose for a run), the halves' gradients summed in a fixed order, so a
run gives bitwise the same weights on one thread or two. Networks with BatchNorm or dropout in
training run whole (see :func:`cnnlab.scratch.parallel.can_split`).

It implements :class:`cnnlab.training.engine.Engine`; ``build_engine`` looks it up when a run
asks for ``engine="numpy"``, so the training package never imports the scratch engine itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab import scratch
from cnnlab.bridge.convert import to_scratch
from cnnlab.bridge.runtime import (
    engine_blas_threads,
    keep_freed_memory,
    set_blas_threads,
    torch_on_one_thread,
)
from cnnlab.bridge.weights import copy_to_torch, load_from_torch, tree_to_numpy, tree_to_torch
from cnnlab.data.dataset import ImageSplit
from cnnlab.data.preprocess import Preprocessing
from cnnlab.inference import image_batches, inference_batch_size
from cnnlab.models._base import aux_loss_weight
from cnnlab.scratch import schedules
from cnnlab.scratch.functional import cross_entropy, cross_entropy_backward
from cnnlab.scratch.parallel import DataParallel
from cnnlab.training.config import TrainConfig
from cnnlab.training.optim import OptimizerLr, build_optimizer

#: Input values per shard of an inference batch: 256 MNIST digits (32x32), 85 CIFAR-10 images,
#: one ImageNet-sized image (im2col multiplies a layer's input by its window, so the budget is
#: 16x smaller than torch's, :data:`cnnlab.inference.INFERENCE_BATCH_VALUES`). Measured with
#: LeNet-5 on the 10,000 test digits and two shard threads (2026-11-30, 2-core Xeon): shards of
#: 64 digits ran at 12,740 images/s, of 256 at 22,945-23,356, of 512 at 23,674-23,834; small
#: shards spend their time handing over between threads rather than computing.
INFERENCE_SHARD_VALUES = 2**18


def build_schedule(config: TrainConfig, steps_per_epoch: int) -> schedules.Schedule:
    """The schedules of :func:`cnnlab.training.optim.build_scheduler`, as pure functions of the
    step (:mod:`cnnlab.scratch.schedules`, applied with ``apply_schedule``);
    ``tests/bridge`` checks that both give the same learning rate at every step."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        return schedules.StepLR(config.lr, config.step_epochs * steps_per_epoch, config.step_gamma)
    if config.schedule == "multistep":
        milestones = tuple(epoch * steps_per_epoch for epoch in config.milestones or ())
        return schedules.MultiStepLR(config.lr, milestones, config.step_gamma)
    if config.schedule == "cosine":
        return schedules.CosineAnnealingLR(config.lr, total)
    if config.schedule == "onecycle":
        has_momentum = config.optimizer not in ("sgd", "rmsprop")
        return schedules.OneCycleLR(config.lr, total, cycle_momentum=has_momentum)
    return schedules.ConstantLR(config.lr)


def as_numpy(x: torch.Tensor) -> np.ndarray:
    """A torch batch as a C-contiguous float32 array (a view when it already is one)."""
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)


class NumpyEngine(OptimizerLr):
    """Trains a scratch twin of ``model`` on the CPU; see the module docstring.

    Args:
        model: the torch model (its initial weights are copied).
        config: the run's configuration (optimizer, schedule, label smoothing, seed).
        steps_per_epoch: optimisation steps per epoch (for the schedule's length).
        threads: shards computed at the same time (default: ``torch.get_num_threads()``);
            the results do not depend on it.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        steps_per_epoch: int,
        threads: int | None = None,
    ) -> None:
        self.device = torch.device("cpu")
        set_blas_threads(engine_blas_threads())  # one, unless asked: see cnnlab.bridge.runtime
        keep_freed_memory()  # no fresh pages every step: see cnnlab.bridge.runtime
        self.model = model.to(self.device)
        self.rng = np.random.default_rng(config.seed)  # every dropout layer draws from it
        self.net = to_scratch(self.model, np.float32, self.rng)
        threads = torch.get_num_threads() if threads is None else threads
        self.parallel = DataParallel(self.net, threads)  # fixed halves of every batch
        self.optimizer = build_optimizer(self.net.parameters(), config, optim=scratch)
        self.schedule = build_schedule(config, steps_per_epoch)
        self.steps = 0
        scratch.apply_schedule(self.optimizer.param_groups, self.schedule, self.steps)
        self.label_smoothing = config.label_smoothing
        self.aux_weight = aux_loss_weight(model)
        self._caches: tuple[Any, list[Any]] | None = None

    def train(self) -> None:
        self.parallel.train()

    @torch_on_one_thread()
    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        target = y.cpu().numpy()
        logits = self.parallel.forward(as_numpy(x))  # N x classes
        loss, cache = cross_entropy(logits, target, self.label_smoothing)
        aux_caches = []
        for aux in self.parallel.aux_outputs:  # GoogLeNet's side classifiers
            aux_loss, aux_cache = cross_entropy(aux, target, self.label_smoothing)
            loss += self.aux_weight * aux_loss
            aux_caches.append(aux_cache)
        self._caches = (cache, aux_caches)
        return loss, int((logits.argmax(1) == target).sum())

    @torch_on_one_thread()
    def step(self) -> None:
        assert self._caches is not None, "step() needs a forward_loss() first"
        cache, aux_caches = self._caches
        self._caches = None
        self.optimizer.zero_grad()
        self.parallel.backward(
            cross_entropy_backward(cache),
            needs_input_grad=False,
            aux_grads=[cross_entropy_backward(c, self.aux_weight) for c in aux_caches],
        )
        self.optimizer.step()
        self.steps += 1
        scratch.apply_schedule(self.optimizer.param_groups, self.schedule, self.steps)

    @torch_on_one_thread()
    def logits(
        self, images: torch.Tensor | ImageSplit, preprocessing: Preprocessing
    ) -> torch.Tensor:
        was_training = self.net.training
        shards = len(self.parallel.replicas)
        batch_size = inference_batch_size(preprocessing, INFERENCE_SHARD_VALUES * shards)
        self.parallel.eval()
        try:
            chunks = [
                torch.from_numpy(
                    self.parallel.forward(as_numpy(preprocessing(batch)), keep_cache=False)
                )
                for batch in image_batches(images, batch_size)
            ]
        finally:
            self.parallel.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0, 0)

    def model_state(self) -> dict[str, torch.Tensor]:
        copy_to_torch(self.net, self.model)
        return self.model.state_dict()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
        load_from_torch(self.net, self.model)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": tree_to_torch(self.optimizer.state_dict()),
            "scheduler": {"step": self.steps},
            "numpy_rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(tree_to_numpy(state["optimizer"]))
        self.steps = int(state["scheduler"]["step"])
        scratch.apply_schedule(self.optimizer.param_groups, self.schedule, self.steps)
        self.rng.bit_generator.state = state["numpy_rng"]  # the dropout layers share this object

    def rescale_lr(self, ratio: float) -> None:
        """Nothing to do: the schedule is a function of the step and the run's (new) lr,
        applied by :meth:`load_state_dict`."""
