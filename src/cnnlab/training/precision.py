"""Mixed precision: the number format of the forward pass and the loss, and loss scaling.

``--precision`` picks one of three:

- ``fp32``: everything in float32 (the default; the only choice of the NumPy engine).
- ``bf16``: the forward pass and the loss run under :func:`torch.autocast` with bfloat16, on
  CUDA (Ampere or newer) and on the CPU. bfloat16 keeps float32's exponent range, so gradients
  neither underflow nor overflow and no loss scaling is needed.
- ``fp16``: autocast with float16 and a :class:`torch.amp.GradScaler`: the loss is multiplied by
  a large scale before the backward pass so small gradients survive float16, the gradients are
  divided by it before the update, and a step whose gradients overflowed is skipped and the
  scale halved (it doubles again after 2000 clean steps). The scaler's state is part of the
  resumable checkpoint, so a resumed run continues with the same scale.

In all three the weights, their gradients and the optimizer state stay float32 (autocast casts
a copy of each weight per operation), so checkpoints are the same float32 ``state_dict`` and
evaluation, prediction and export never see the difference. Evaluation during training runs in
float32, like ``cnnlab evaluate`` later on the same weights. On the CPU autocast is
deterministic, so a bf16 or fp16 run that is killed and resumed ends bitwise equal to one that
never stopped, as an fp32 run does.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import torch

from cnnlab.errors import ConfigError
from cnnlab.training.config import PRECISIONS

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and (for fp16) loss scaling of one training run.

    Args:
        name: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: where the model trains.

    Raises:
        ConfigError: a precision this torch cannot run on ``device`` (see :func:`check_precision`).
    """

    def __init__(self, name: str, device: torch.device) -> None:
        check_precision(name, device)
        self.name = name
        self.device_type = device.type
        self.dtype = _DTYPES.get(name)
        self.scaler = _grad_scaler(device.type) if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the forward pass and the loss run in (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled first for fp16)."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Update the weights, then advance the learning-rate schedule.

        For fp16 the gradients are unscaled and the update is skipped when they hold an inf or
        a NaN; the schedule advances either way (torch's AMP recipe), so a skipped step does
        not shift the schedule. torch warns when the very first update is skipped that way
        ("lr_scheduler.step() before optimizer.step()"); that warning is silenced here.
        """
        if self.scaler is None:
            optimizer.step()
            scheduler.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state (``{}`` without one): JSON numbers, saved in checkpoints."""
        return {} if self.scaler is None else {"grad_scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the scaler's, when this run has one)."""
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])


def check_precision(name: str, device: torch.device) -> None:
    """Refuse, in one line, a precision this torch build cannot run on ``device``.

    A small matrix product is run under autocast on ``device``: torch warns and falls back to
    float32 for a dtype it cannot autocast there (and raises for bfloat16 on CUDA GPUs older
    than Ampere), so the product's dtype says whether autocast really runs. fp16 also needs a
    gradient scaler for the device type.

    Raises:
        ConfigError: an unknown name, or a precision the device cannot run.
    """
    if name not in PRECISIONS:
        raise ConfigError(
            f"expected precision in {', '.join(PRECISIONS)}, received precision={name!r}"
        )
    if name == "fp32":
        return
    if not _autocast_runs(str(device), name):
        raise ConfigError(
            f"expected precision fp32 on {device} (torch {torch.__version__} cannot autocast to "
            f"{name} there), received precision={name!r}"
        )
    if name == "fp16" and _grad_scaler(device.type) is None:
        raise ConfigError(
            f"expected precision fp32 or bf16 on {device} (torch {torch.__version__} has no fp16 "
            f"gradient scaler for {device.type}), received precision='fp16'"
        )


@functools.cache
def _autocast_runs(device: str, name: str) -> bool:
    """True when a matrix product under autocast on ``device`` comes out in ``name``'s dtype."""
    dtype = _DTYPES[name]
    device_type = torch.device(device).type
    try:
        a = torch.ones(8, 8, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "target dtype is not supported. Disabling autocast"
            with torch.autocast(device_type, dtype=dtype):
                return (a @ a).dtype == dtype
    except (RuntimeError, ValueError):  # no autocast for this device type, or no bf16 on it
        return False


def _grad_scaler(device_type: str) -> Any:
    """A fresh, enabled gradient scaler for ``device_type``, or None if torch has none."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3: every device type
        make = functools.partial(torch.amp.GradScaler, device_type)
    elif device_type == "cuda":  # torch 2.1-2.2: CUDA only
        make = torch.cuda.amp.GradScaler
    else:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "... not available. Disabling" (checked below)
        try:
            scaler = make()
        except (RuntimeError, ValueError):
            return None
    return scaler if scaler.is_enabled() else None
