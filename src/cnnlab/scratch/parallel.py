"""Data parallelism on one machine: each batch in fixed shards, the shards in threads.

NumPy releases the GIL in BLAS products and in most array operations (copies, element-wise
passes, reductions on float arrays), so two Python threads, each running a whole forward or
backward pass on half the batch, keep two cores busy where one pass on the whole batch keeps
one (the engine's products are too small for BLAS's own threads to gain: see
:mod:`cnnlab.bridge.runtime`).

:class:`DataParallel` (PyTorch's name, as every scratch layer) holds the network and one
*replica* per further shard. A replica has its own layer objects (a layer keeps its cache
between ``forward`` and ``backward``, so two threads cannot share one) and its own
``Parameter`` objects, whose ``data`` is the very same array as the network's: the optimizer
updates the network's parameters in place and every replica sees the new weights. Gradients are
separate; after the shards' backward passes each replica's gradient is added into the
network's in shard order, and the replica's is dropped.

Reproducibility: a batch is always cut into the same shards (:func:`shard_bounds`), whatever
the thread count, and each shard's arithmetic does not depend on the thread it runs on. The
result is therefore bitwise the same with one thread (shards in turn) and with two, run after
run; it differs from a whole-batch pass only by the order of the gradient sums (float
tolerance).

What is not split: graphs whose training pass couples the examples of a batch or draws random
numbers (BatchNorm's batch statistics and running averages, dropout masks): one shard's
statistics are not the batch's, and two threads drawing from one generator would draw in a
varying order. :func:`can_split` says which; such networks run whole (``shards=1``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from cnnlab.scratch.graph import GraphNet
from cnnlab.scratch.nn.dropout import Dropout
from cnnlab.scratch.nn.normalization import _BatchNorm

#: Shards per batch: the benchmark machines have two cores (``docs/numpy-engine.md``).
SHARDS = 2
#: Batches smaller than this run whole: halves of a few examples gain nothing.
MIN_SHARD = 8

T = TypeVar("T")


def can_split(net: GraphNet) -> bool:
    """Whether a training pass of ``net`` may be cut into shards: no layer that couples the
    examples of a batch (BatchNorm) or draws random numbers (dropout with ``p > 0``)."""
    for layer in net.modules():
        if isinstance(layer, _BatchNorm) or (isinstance(layer, Dropout) and layer.p > 0):
            return False
    return True


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of ``shards`` nearly equal shards of ``n`` rows (the first
    ones one row longer when ``n`` does not divide); one range when ``n`` is small."""
    if shards < 2 or n < shards * MIN_SHARD:
        return [(0, n)]
    size, extra = divmod(n, shards)
    bounds, start = [], 0
    for i in range(shards):
        stop = start + size + (i < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def share_parameters(source: GraphNet, replica: GraphNet) -> None:
    """Point every parameter (and buffer) of ``replica`` at ``source``'s arrays; gradients stay
    the replica's own."""
    params = dict(source.named_parameters())
    for name, p in replica.named_parameters():
        p.data = params[name].data
        p.grad = None
    buffers = dict(source.named_buffers())
    for name, module in replica.named_modules():
        for key in list(module._buffers):
            full = f"{name}.{key}" if name else key
            if module._buffers[key] is not None:
                module._buffers[key] = buffers[full]


class DataParallel:
    """A :class:`GraphNet` run on fixed shards of each batch, ``threads`` of them at a time.

    Args:
        net: the network (its parameters are the ones to optimise).
        threads: shards computed at the same time (1: in turn, in the calling thread).
        shards: shards per batch (1: never split; :func:`can_split` decides for a network).

    Shape:
        ``(N, C, H, W) -> (N, num_classes)``, as ``net``; ``aux_outputs`` as ``net``'s.
    """

    def __init__(self, net: GraphNet, threads: int = 1, shards: int = SHARDS) -> None:
        self.net = net
        self.shards = max(1, shards) if can_split(net) else 1
        self.replicas = [net]
        for _ in range(self.shards - 1):
            replica = copy.deepcopy(net)
            share_parameters(net, replica)
            self.replicas.append(replica)
        self.threads = 1
        self._pool: ThreadPoolExecutor | None = None
        self._bounds: list[tuple[int, int]] = []
        self.aux_outputs: tuple[np.ndarray, ...] = ()
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Compute up to ``threads`` shards at a time (does not change any result)."""
        self.threads = max(1, min(int(threads), self.shards))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="cnnlab-shard")

    def close(self) -> None:
        """Stop the worker threads (the object still works, in one thread)."""
        self.set_threads(1)

    def train(self, mode: bool = True) -> DataParallel:
        for replica in self.replicas:
            replica.train(mode)
        return self

    def eval(self) -> DataParallel:
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.net.training

    def forward(self, x: np.ndarray, keep_cache: bool | None = None) -> np.ndarray:
        """The logits of ``x``: each shard through its replica, rows in order.

        Shape:
            ``(N, C, H, W) -> (N, num_classes)``.
        """
        self._bounds = shard_bounds(len(x), len(self.replicas))
        jobs = [
            (lambda r=replica, a=a, b=b: r.forward(x[a:b], keep_cache=keep_cache))
            for replica, (a, b) in zip(self.replicas, self._bounds)
        ]
        outputs = self._run(jobs)
        if len(outputs) == 1:
            self.aux_outputs = self.net.aux_outputs
            return outputs[0]
        used = self.replicas[: len(outputs)]
        self.aux_outputs = tuple(
            np.concatenate(parts) for parts in zip(*(r.aux_outputs for r in used))
        )
        return np.concatenate(outputs)  # N x classes

    def backward(
        self,
        grad_out: np.ndarray,
        needs_input_grad: bool = False,
        aux_grads: Sequence[np.ndarray | None] = (),
    ) -> None:
        """Backpropagate the last :meth:`forward` shard by shard; the parameters of ``net``
        receive the sum of the shards' gradients (added in shard order).

        Args:
            grad_out: gradient of the loss with respect to the whole batch's logits.
            needs_input_grad: must be ``False`` (the input gradient is not assembled).
            aux_grads: gradients with respect to ``aux_outputs`` (``None`` for none).

        Shape:
            grad_out ``(N, num_classes)``.
        """
        if needs_input_grad:
            raise ValueError("expected needs_input_grad=False, received True (not assembled)")
        jobs = [
            (
                lambda r=replica, a=a, b=b: r.backward(
                    grad_out[a:b],
                    needs_input_grad=False,
                    aux_grads=[None if g is None else g[a:b] for g in aux_grads],
                )
            )
            for replica, (a, b) in zip(self.replicas, self._bounds)
        ]
        self._run(jobs)
        self._sum_grads(len(jobs))

    def _sum_grads(self, used: int) -> None:
        """Add the replicas' gradients into the network's, in shard order."""
        if used < 2:
            return
        totals = list(self.net.parameters())
        for replica in self.replicas[1:used]:
            for total, p in zip(totals, replica.parameters()):
                if p.grad is None:
                    continue
                if total.grad is None:
                    total.grad = p.grad
                else:
                    total.grad += p.grad
                p.grad = None

    def _run(self, jobs: list[Callable[[], T]]) -> list[T]:
        """Run the jobs, the first in this thread and the others on the pool (if any); the
        results in job order. Which thread runs a job never changes its result."""
        if self._pool is None or len(jobs) == 1:
            return [job() for job in jobs]
        futures: list[Future[T]] = [self._pool.submit(job) for job in jobs[1:]]
        try:
            first = jobs[0]()
        finally:
            rest = [f.result() for f in futures]  # waits even when the first job failed
        return [first, *rest]
