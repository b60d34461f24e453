"""The per-logit comparison every export must pass (cnnlab.export.verify), on logits built to
sit on either side of the tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.errors import ModelError
from cnnlab.export.verify import compare


def _logits() -> torch.Tensor:
    return torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])


def test_within_tolerance_passes():
    reference = _logits()
    # each logit moved by just under atol + rtol * |x|
    candidate = reference.double().numpy() + 0.99 * (1e-5 + 1e-4 * np.abs(reference.numpy()))
    result = compare(reference, candidate, "test")
    assert result.passed and result.outside == 0 and result.same_class == 2
    assert result.logits == 6 and result.images == 2
    result.check()  # no error


def test_one_logit_outside_is_named():
    reference = _logits()
    candidate = reference.numpy().copy()
    candidate[1, 2] += 1e-3  # |x| = 2: allowed 2.1e-4
    result = compare(reference, candidate, "test")
    assert not result.passed and result.outside == 1 and result.worst == [1, 2]
    assert result.max_abs_diff == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ModelError) as info:
        result.check()
    message = str(info.value)
    assert "\n" not in message and "at logits[1, 2]" in message
    assert "largest difference of 1.000e-03" in message and "1 of 6 logits outside" in message


def test_other_class_fails_unless_tied():
    reference = torch.tensor([[1.0, 0.0], [5.0, 5.0 - 5e-6]])
    swapped = np.array([[0.0, 1.0], [5.0 - 5e-6, 5.0]])  # row 0: a real change of class
    result = compare(reference, swapped, "test", rtol=10.0, atol=10.0)  # values all "close"
    assert result.outside == 0 and result.same_class == 0 and result.ties == 2
    # with a loose tolerance both rows are ties; with the default tolerance only row 1 is
    result = compare(reference, swapped, "test")
    assert result.ties == 1 and not result.passed
    tied_only = np.array([[1.0, 0.0], [5.0 - 5e-6, 5.0]])
    assert compare(reference, tied_only, "test").passed


def test_shape_mismatch():
    with pytest.raises(ModelError, match=r"expected onnxruntime logits of shape \[2, 3\]"):
        compare(_logits(), np.zeros((2, 4)), "test")
