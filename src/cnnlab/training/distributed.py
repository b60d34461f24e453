"""Training on several processes and machines: the process group torchrun starts, and the
rules that make a W-process run the same run as a 1-process one.

Processes are started by PyTorch's own launcher, ``torchrun`` (``cnnlab train --nproc N``
starts its elastic agent itself: :mod:`cnnlab.training.launch`); each process joins the
process group (:func:`session`: gloo on the CPU, NCCL for CUDA tensors, one GPU per
``LOCAL_RANK``) and trains one replica of the model wrapped in ``DistributedDataParallel``
(:func:`wrap_for_training`). The rules (``docs/distributed.md``):

- ``--batch-size`` is the global batch: rank ``r`` of ``W`` trains on ``batch[r::W]`` of every
  batch of the seeded epoch order (:func:`shard`), so the run sees the same samples per step
  as a 1-process run, and the loss is the mean over the global batch (see
  :class:`~cnnlab.training.engine.TorchEngine`).
- Validation and test are sharded and gathered (:meth:`Distributed.gather_rows`): the metrics
  are computed from the logits of the whole split, as in one process.
- Rank 0 decides (:meth:`Distributed.decide`), writes every file and prints; the others learn
  its decisions by broadcast, so they agree on early stopping and the best checkpoint.
- Augmentation and dropout draw from a per-rank seed (:func:`rank_seed`); every rank's RNG
  state is saved in the checkpoint, so a rerun or a resume with the same world size is
  bitwise the same on the CPU.

Collectives on small values gather every rank's value and add them in rank order, so their
results do not depend on the reduction algorithm: all ranks hold bitwise the same numbers.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from cnnlab.data.dataset import ImageSplit
from cnnlab.errors import CnnlabError, ConfigError, DistributedError, ReportedError
from cnnlab.training.config import TrainConfig
from cnnlab.training.launch import (
    DEFAULT_TIMEOUT,
    cpu_cores,
    follow_launcher,
    launched_by_torchrun,
    oversubscription,
)

T = TypeVar("T")
AGENT_GRACE = 10.0  # seconds a failed process waits for torchrun's agent to stop it
Rows = torch.Tensor | tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (one process: rank 0 of 1).

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: the number of training processes, on all machines.
        local_rank: rank on this machine (the CUDA device this process uses).
        local_world_size: processes on this machine.
        restart_count: how often torchrun has restarted the group (``TORCHELASTIC_RESTART_COUNT``).
        run_id: torchrun's job id (``TORCHELASTIC_RUN_ID``); None outside torchrun.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    restart_count: int = 0
    run_id: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when there are other processes to talk to."""
        return self.world_size > 1

    # ---- decisions made once, by rank 0 -------------------------------------------------------
    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def decide(self, decision: Callable[[], T]) -> T:
        """Run ``decision`` on rank 0 only and hand its result to every rank.

        Raises:
            CnnlabError: on rank 0, what ``decision`` raised; on the other ranks a
                :class:`ReportedError` with the same line (rank 0 prints it, they do not).
        """
        if not self.active:
            return decision()
        result = self._on_main_then_tell(decision)
        return self.broadcast(result if self.is_main else None)

    def main_first(self, work: Callable[[], T]) -> T:
        """Run ``work`` on rank 0, then (once it succeeded) on the other ranks: rank 0 fills
        the caches (downloads, decoded folders, cached features) that the others then read.
        Each rank returns its own result (nothing large is sent).

        Raises:
            CnnlabError: as :meth:`decide`.
        """
        if not self.active:
            return work()
        result = self._on_main_then_tell(work)
        return result if self.is_main else work()

    def _on_main_then_tell(self, work: Callable[[], T]) -> T | None:
        """Run ``work`` on rank 0 and tell every rank whether it succeeded."""
        if self.is_main:
            try:
                result = work()
            except BaseException as exc:
                line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.broadcast(("failed", line))
                raise
            self.broadcast(("ok", None))
            return result
        outcome = self.broadcast(None)
        if outcome[0] == "failed":
            raise ReportedError(f"rank 0 stopped: {outcome[1]}")
        return None

    def check_same(self, what: str, value: dict[str, Any]) -> None:
        """Refuse to go on unless every rank holds the same ``value`` (e.g. the training
        options of each machine's command line).

        Raises:
            ConfigError: naming the first key that differs and the two values.
        """
        if not self.active:
            return
        values = self.all_gather(value)
        for rank, other in enumerate(values):
            for key in sorted(set(value) | set(other)):
                if values[0].get(key) != other.get(key):
                    raise self.shared(
                        ConfigError(
                            f"expected the same {what} on every process, received {key}="
                            f"{values[0].get(key)!r} on rank 0 and {key}={other.get(key)!r} "
                            f"on rank {rank}"
                        )
                    )

    def shared(self, error: CnnlabError) -> CnnlabError:
        """What to raise for ``error`` that every rank met together (``raise
        ctx.shared(error)``): rank 0 raises it (and the CLI prints it), the others a silent
        :class:`ReportedError`, so the line is printed once."""
        return error if self.is_main else ReportedError(str(error))

    # ---- values from every rank ----------------------------------------------------------------
    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (any picklable object), in rank order."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def sum(self, values: list[float]) -> list[float]:
        """The element-wise sum of ``values`` over the ranks, added in rank order in float64
        (bitwise the same on every rank, whatever the all-reduce algorithm)."""
        if not self.active:
            return list(values)
        local = torch.tensor(values, dtype=torch.float64)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        total = gathered[0].clone()
        for part in gathered[1:]:
            total += part
        return total.tolist()

    def gather_rows(self, split: ImageSplit, compute: Callable[[ImageSplit], Rows]) -> Rows:
        """``compute(split)`` with the work shared: rank ``r`` computes the rows of the ``r``-th
        contiguous part of the split (decoding only its images when streamed), the parts are
        gathered (padded to one length for ``all_gather``, the padding dropped) and joined in
        the split's order, so every rank holds all the rows, as one process would.

        Shape:
            ``compute``: ``(k examples) -> (k, ...)`` tensor or tuple of such tensors;
            returns ``(len(split), ...)`` on the CPU.
        """
        n = len(split)
        if not self.active or n == 0:
            return compute(split)
        per = math.ceil(n / self.world_size)
        bounds = [(min(r * per, n), min((r + 1) * per, n)) for r in range(self.world_size)]
        low, high = bounds[self.rank]
        rows = compute(split.subset(torch.arange(low, high)))
        parts = rows if isinstance(rows, tuple) else (rows,)
        # rank 0 always holds rows (n > 0): its shapes and dtypes are the template
        template = self.broadcast([(tuple(p.shape[1:]), p.dtype) for p in parts])
        joined = []
        for part, (shape, dtype) in zip(parts, template):
            padded = torch.zeros((per, *shape), dtype=dtype)  # per x ...
            padded[: high - low] = part.cpu().reshape(high - low, *shape)
            gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
            dist.all_gather(gathered, padded)
            joined.append(torch.cat([g[: b - a] for g, (a, b) in zip(gathered, bounds)]))
        return tuple(joined) if isinstance(rows, tuple) else joined[0]

    def barrier(self) -> None:
        """Wait until every rank got here (e.g. rank 0 finished writing the run's files)."""
        if self.active:
            dist.barrier()

    # ---- devices -------------------------------------------------------------------------------
    def device(self, requested: str) -> torch.device:
        """The device this process trains on: ``auto``/``cuda`` is ``cuda:LOCAL_RANK`` (one GPU
        per process) when CUDA is present, the CPU otherwise; ``cpu`` is the CPU.

        Raises:
            ConfigError: a numbered CUDA device with several processes.
        """
        from cnnlab.inference import resolve_device

        if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        if not self.active:
            return resolve_device(requested)
        resolve_device("cuda")  # refuses CUDA where there is none
        if requested not in ("auto", "cuda"):
            resolve_device(requested)  # a device that does not exist is refused as such
            raise ConfigError(
                f"expected --device auto, cuda or cpu with {self.world_size} processes (each "
                f"uses the GPU of its LOCAL_RANK), received device={requested!r}"
            )
        return torch.device("cuda", self.local_rank)


def current() -> Distributed:
    """This process's :class:`Distributed` (rank 0 of 1 outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Distributed()
    env = os.environ
    world = dist.get_world_size()
    return Distributed(
        rank=dist.get_rank(),
        world_size=world,
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)),
        restart_count=int(env.get("TORCHELASTIC_RESTART_COUNT", 0)),
        run_id=env.get("TORCHELASTIC_RUN_ID"),
    )


@contextmanager
def session(timeout: float | None = None) -> Iterator[Distributed]:
    """Join the process group of a torchrun launch for the ``with`` block (nothing to join
    outside torchrun; a group that is already initialised is used as it is and left open).

    The backend is gloo, plus NCCL for CUDA tensors when CUDA is present (each process then
    uses the GPU of its ``LOCAL_RANK``). Every collective, and the wait for the other
    processes to join, gives up after ``timeout`` seconds, so a dead peer never leaves the
    others hanging.

    Raises:
        DistributedError: the processes did not all join within ``timeout`` (one line).
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        yield current()
        return
    follow_launcher()  # a worker of ``--nproc`` ends with the shortcut
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    _join(timeout)
    ctx = current()
    try:
        warning = oversubscription(ctx.local_world_size, cpu_cores())
        if ctx.is_main and not ctx.restart_count and warning and not torch.cuda.is_available():
            warnings.warn(warning, stacklevel=3)
        yield ctx
    except CnnlabError:
        raise
    except BaseException:
        if ctx.active and "TORCHELASTIC_RUN_ID" in os.environ:
            # most often a peer died and the exchange with it failed: torchrun's agent stops
            # this process in a moment and reports the peer (and restarts the group, if it
            # may); only if it does not is this process's error worth showing
            time.sleep(AGENT_GRACE)
        raise
    finally:
        dist.destroy_process_group()


def _join(timeout: float) -> None:
    env = os.environ
    world, where = int(env["WORLD_SIZE"]), f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    if timeout <= 0:
        raise ConfigError(f"expected a timeout > 0 seconds, received dist_timeout={timeout}")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(env.get("LOCAL_RANK", 0)))
    try:
        wait = timedelta(seconds=timeout)
        store, rank, world = next(dist.rendezvous("env://", timeout=wait))
        # torchrun's agent keeps its store when it restarts the processes: a prefix per
        # restart keeps the new processes from reading the old ones' keys (their addresses)
        restart = env.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"cnnlab/restart-{restart}/", store)
        dist.init_process_group(
            "cpu:gloo,cuda:nccl" if cuda else "gloo",
            store=store,
            rank=rank,
            world_size=world,
            timeout=wait,
        )
    except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError is a RuntimeError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"expected {world} processes to join the process group at {where} within "
            f"{timeout:g} s, received: {reason}"
        ) from None


# ---- the training rules ------------------------------------------------------------------------
def shard(batch: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    """This rank's share of a global batch: ``batch[rank::world_size]``.

    Shape:
        ``(B,) -> (ceil((B - rank) / W),)``; empty when ``B <= rank`` (an uneven last batch).
    """
    return batch[ctx.rank :: ctx.world_size]


def local_batches(
    order: torch.Tensor, batch_size: int, ctx: Distributed
) -> tuple[list[tuple[torch.Tensor, int]], int]:
    """This rank's share of every global batch of ``order`` (the examples still to train on
    this epoch, in the seeded order).

    Every full global batch gives the rank the same number of examples, the last one as many
    or fewer, so the shares laid end to end split back into the shares by that number: a
    split's ``batches(share_size, torch.cat(shares))`` yields exactly the non-empty shares.

    Returns:
        ``([(share, size of its global batch), ...], share size of a full batch)``.

    Shape:
        ``order``: ``(n,)`` int64; each share ``(k,)`` with ``k <= share size`` (0 when the
        last batch has fewer examples than ``rank + 1``).
    """
    shares = [(shard(batch, ctx), len(batch)) for batch in order.split(batch_size)]
    return shares, len(range(ctx.rank, batch_size, ctx.world_size))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random draws (augmentation, dropout): a function of the run
    seed and the rank, different for every rank."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0])


def seed_ranks(seed: int, ctx: Distributed) -> None:
    """Give each rank its own random stream once the (identical) initial weights are drawn;
    one process keeps the stream it has, so a 1-process run is unchanged."""
    if ctx.active:
        torch.manual_seed(rank_seed(seed, ctx.rank))


def check_training(config: TrainConfig, world_size: int, device: torch.device) -> None:
    """Refuse what cannot run on ``world_size`` processes, one line each.

    Raises:
        ConfigError: the NumPy engine on several processes, ``--sync-bn`` off CUDA, a global
            batch smaller than the number of processes.
    """
    if config.engine == "numpy" and world_size > 1:
        raise ConfigError(
            f"expected --engine torch with several processes (the NumPy engine runs in one), "
            f"received --engine numpy with {world_size} processes"
        )
    if config.sync_bn and device.type != "cuda":
        raise ConfigError(
            f"expected --sync-bn only on CUDA devices (torch has no SyncBatchNorm on the CPU), "
            f"received --sync-bn with device {device.type}"
        )
    if config.batch_size < world_size:
        raise ConfigError(
            f"expected a global --batch-size of at least the {world_size} processes, received "
            f"batch_size={config.batch_size}"
        )


def check_resumed_world(saved: int, run: object, world_size: int) -> None:
    """Refuse to resume a run on another number of processes than it was trained on (its
    batches would be split differently and its RNG states do not fit).

    Raises:
        ConfigError: naming both world sizes.
    """
    if saved != world_size:
        raise ConfigError(
            f"expected world size {saved} to resume {run} (it was trained on {saved} "
            f"process{'es' if saved != 1 else ''}), received world size {world_size}"
        )


def prepare_model(model: nn.Module, config: TrainConfig, ctx: Distributed) -> nn.Module:
    """The model to train: BatchNorm layers become SyncBatchNorm with ``--sync-bn`` on
    several CUDA processes (otherwise DDP keeps rank 0's BatchNorm buffers)."""
    if config.sync_bn and ctx.active:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap_for_training(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel``: its forward broadcasts rank 0's buffers and
    its backward averages the gradients over the processes (all-reduce in buckets, overlapped
    with the backward pass). Parameters and buffers stay those of ``model``."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def settle_buckets(replica: nn.Module, x: torch.Tensor) -> None:
    """One forward and backward of a zero loss through a fresh DDP ``replica``, leaving every
    weight, buffer, gradient and random state as it was.

    DDP all-reduces its first backward's gradients in one bucket, then regroups them into
    buckets in the order they became ready. With 3 or more processes the summation order of
    an element depends on where it lies in its bucket, so a run resumed mid-way (whose first
    step would use the first grouping) would round differently from the run it continues.
    After this call every training step, fresh or resumed, uses the regrouped buckets: the
    same sums, bitwise.

    Shape:
        ``x``: a model input batch ``(N, C, H, W)`` (its values do not matter).
    """
    module = replica.module
    buffers = [b.clone() for b in module.buffers()]
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    outputs = [replica(x), *getattr(module, "aux_outputs", ())]  # GoogLeNet's side heads
    sum(o.sum() for o in outputs).mul(0.0).backward()
    for param in module.parameters():
        param.grad = None
    with torch.no_grad():
        for buffer, saved in zip(module.buffers(), buffers):
            buffer.copy_(saved)
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)


def launch_meta(ctx: Distributed) -> dict[str, Any]:
    """What a run records about its processes: the world size (a resume needs the same) and
    torchrun's job id (a restart of that job continues the run instead of refusing it)."""
    return {"world_size": ctx.world_size, "launch_id": ctx.run_id}
