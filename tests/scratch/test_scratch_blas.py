"""The NumPy engine's BLAS thread count: one unless OPENBLAS_NUM_THREADS asks for more."""

from __future__ import annotations

import pytest

from cnnlab.scratch.blas import engine_blas_threads, get_blas_threads, set_blas_threads


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 1), ("3", 3), ("1", 1), ("0", 1), ("many", 1), ("", 1)]
)
def test_engine_threads_follow_only_a_valid_request(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", value)
    assert engine_blas_threads() == expected


def test_set_blas_threads_changes_openblas_and_returns_the_previous_count() -> None:
    start = get_blas_threads()
    assert start is not None, "NumPy here is built on OpenBLAS: the setter must find it"
    try:
        assert set_blas_threads(1) == start
        assert get_blas_threads() == 1
        assert set_blas_threads(2) == 1
        assert get_blas_threads() == 2
    finally:
        set_blas_threads(start)
