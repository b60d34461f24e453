"""Parameter counting (Keras's convention) and the parameter arithmetic of ``--explain``.

Trainable parameters are parameters with ``requires_grad``; non-trainable ones are frozen
parameters plus floating-point buffers (BatchNorm's running mean and variance; the integer
``num_batches_tracked`` counter is not a weight). That is Keras's split, so seed 003's table is
reproduced: BatchNorm over 6 channels has 24 parameters, 12 of them non-trainable.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamCount:
    """Trainable and non-trainable weights of one module (its own, not its children's)."""

    trainable: int = 0
    non_trainable: int = 0
    nbytes: int = 0
    buffers: int = 0  # the part of non_trainable in float buffers (BatchNorm running mean/var)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(
            self.trainable + other.trainable,
            self.non_trainable + other.non_trainable,
            self.nbytes + other.nbytes,
            self.buffers + other.buffers,
        )


def own_params(module: nn.Module, seen: set[int] | None = None) -> ParamCount:
    """Count the module's own parameters and float buffers (not those of its children).

    Args:
        module: the module.
        seen: ids of tensors already counted; shared tensors are counted once. Updated.
    """
    seen = set() if seen is None else seen
    trainable = frozen = nbytes = buffers = 0
    for p in module.parameters(recurse=False):
        if id(p) not in seen:
            seen.add(id(p))
            nbytes += p.numel() * p.element_size()
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
    for b in module.buffers(recurse=False):
        if id(b) not in seen and b.is_floating_point():
            seen.add(id(b))
            frozen += b.numel()
            buffers += b.numel()
            nbytes += b.numel() * b.element_size()
    return ParamCount(trainable, frozen, nbytes, buffers)


def param_arithmetic(module: nn.Module) -> str | None:
    """The parameter count written as the seeds do, e.g. ``5x5x1x6 + 6 = 156``, or None."""
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        kernel = "x".join(str(k) for k in module.kernel_size)
        c_in = module.in_channels // module.groups
        weights = module.weight.numel()
        bias = f" + {module.out_channels}" if module.bias is not None else ""
        total = weights + (module.out_channels if module.bias is not None else 0)
        return f"{kernel}x{c_in}x{module.out_channels}{bias} = {total}"
    if isinstance(module, nn.Linear):
        bias = f" + {module.out_features}" if module.bias is not None else ""
        total = module.weight.numel() + (module.out_features if module.bias is not None else 0)
        return f"{module.in_features}x{module.out_features}{bias} = {total}"
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm):
        count = own_params(module)
        per_channel = count.total // module.num_features
        return (
            f"{per_channel}x{module.num_features} = {count.total} "
            f"({count.non_trainable} non-trainable running statistics)"
        )
    return None
