"""Checking an exported graph against torch before it is kept.

onnxruntime runs the exported bytes on a batch of images and on its first image alone (a
batch of one catches graphs that fixed the batch size); torch runs the same images through
cnnlab's own inference path (uint8 pixels, the run's :class:`Preprocessing`, the network in
eval mode). Every logit must agree within ``atol + rtol * |torch|`` and every image must get
the same class, except where torch's two best logits are themselves within that tolerance (a
tie that rounding may break either way).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from cnnlab.errors import ModelError

RTOL = 1e-4
ATOL = 1e-5


@dataclass(frozen=True)
class Verification:
    """How closely onnxruntime reproduced torch.

    Attributes:
        inputs: where the images came from (``"test split of mnist"``, ``"random"``).
        images: how many images were compared.
        rtol: relative tolerance per logit.
        atol: absolute tolerance per logit.
        max_abs_diff: the largest ``|onnxruntime - torch|`` over all logits.
        max_rel_diff: the largest ``|onnxruntime - torch| / |torch|`` (torch != 0).
        worst: ``[image, class]`` of the logit with the largest excess over its tolerance.
        worst_torch: torch's value there.
        worst_onnx: onnxruntime's value there.
        outside: logits outside the tolerance.
        logits: logits compared.
        same_class: images with the same predicted class.
        ties: images whose best two torch logits are within the tolerance (not counted as
            disagreements when the class differs).
        passed: every logit within tolerance and every (non-tied) class the same.
    """

    inputs: str
    images: int
    rtol: float
    atol: float
    max_abs_diff: float
    max_rel_diff: float
    worst: list[int]
    worst_torch: float
    worst_onnx: float
    outside: int
    logits: int
    same_class: int
    ties: int
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line of numbers, e.g. for the CLI."""
        i, j = self.worst
        return (
            f"onnxruntime vs torch on {self.images} images ({self.inputs}): max |diff| "
            f"{self.max_abs_diff:.2e} (relative {self.max_rel_diff:.2e}) at logits[{i}, {j}], "
            f"{self.outside} of {self.logits} logits outside rtol={self.rtol:g}, "
            f"atol={self.atol:g}; same class for {self.same_class} of {self.images}"
        )

    def check(self) -> None:
        """Raise the one-line mismatch error unless :attr:`passed`.

        Raises:
            ModelError: onnxruntime's logits or classes differ from torch's.
        """
        if self.passed:
            return
        i, j = self.worst
        raise ModelError(
            f"expected onnxruntime to reproduce torch within rtol={self.rtol:g}, "
            f"atol={self.atol:g} per logit, received a largest difference of "
            f"{abs(self.worst_onnx - self.worst_torch):.3e} at logits[{i}, {j}] (torch "
            f"{self.worst_torch:.9g}, onnxruntime {self.worst_onnx:.9g}); {self.outside} of "
            f"{self.logits} logits outside, same class for {self.same_class} of {self.images} "
            "images; nothing was written"
        )


def compare(
    reference: torch.Tensor,
    candidate: np.ndarray,
    inputs: str,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Verification:
    """Compare onnxruntime's logits with torch's, per element.

    Shape:
        ``reference (N, K)``, ``candidate (N, K)``.

    Raises:
        ModelError: the shapes differ (the graph computes something else).
    """
    ref = reference.detach().double().numpy()
    got = np.asarray(candidate, dtype=np.float64)
    if ref.shape != got.shape:
        raise ModelError(
            f"expected onnxruntime logits of shape {list(ref.shape)} like torch's, received "
            f"{list(got.shape)}; nothing was written"
        )
    diff = np.abs(got - ref)
    allowed = atol + rtol * np.abs(ref)
    excess = diff - allowed
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    nonzero = np.abs(ref) > 0
    tied = _tied(ref, rtol, atol)
    same = ref.argmax(1) == got.argmax(1)
    outside = int((excess > 0).sum())
    return Verification(
        inputs=inputs,
        images=int(ref.shape[0]),
        rtol=rtol,
        atol=atol,
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=float((diff[nonzero] / np.abs(ref[nonzero])).max(initial=0.0)),
        worst=[int(worst[0]), int(worst[1])],
        worst_torch=float(ref[worst]),
        worst_onnx=float(got[worst]),
        outside=outside,
        logits=int(ref.size),
        same_class=int(same.sum()),
        ties=int(tied.sum()),
        passed=outside == 0 and bool((same | tied).all()),
    )


def _tied(logits: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Rows whose best two logits are within the tolerance of each other.

    Shape:
        ``(N, K) -> (N,)`` bool (all False for K = 1).
    """
    if logits.shape[1] < 2:
        return np.zeros(logits.shape[0], dtype=bool)
    second, best = np.sort(logits, axis=1)[:, -2:].T  # each (N,)
    return (best - second) <= atol + rtol * np.abs(best)
