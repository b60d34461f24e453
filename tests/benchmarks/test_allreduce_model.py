"""benchmarks/allreduce_model.py: the scaling table of docs/distributed.md is computed from
the real models' parameter counts and the ring all-reduce formula, and reproducible."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("allreduce-model")

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "allreduce_model.py"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(_run("--format", "json"))  # measures LeNet-5 here


def test_gradient_bytes_come_from_the_models(report) -> None:
    by_model = {c["model"]: c["gradient_bytes"] for c in report["cases"]}
    assert by_model == {
        "lenet5": 61_706 * 4,
        "resnet18": 11_689_512 * 4,
        "resnet50": 25_557_032 * 4,
    }
    lenet = report["cases"][0]
    assert lenet["source"] == "measured" and lenet["ms_per_image"] > 0
    assert {c["source"] for c in report["cases"][1:]} == {"published"}
    assert all(c["citation"] for c in report["cases"])


def test_rows_follow_the_ring_formula(report) -> None:
    a100 = next(c for c in report["cases"] if c["device"] == "NVIDIA A100 80GB")
    one_step = a100["ms_per_image"] * a100["global_batch"]  # ms on one GPU
    for row in a100["rows"]:
        w, link = row["gpus"], row["link_gbit"]
        if w == 1:
            assert row["allreduce_ms"] == 0 and row["strong"]["speedup_no_overlap"] == 1
            continue
        gbit, hop = (2400, 5e-6) if w <= 8 else (link, 10e-6)
        buckets = math.ceil(a100["gradient_bytes"] / (25 * 2**20))
        expected = 2 * (w - 1) / w * a100["gradient_bytes"] / (gbit * 1e9 / 8) * 1000
        expected += 2 * (w - 1) * hop * buckets * 1000
        assert row["allreduce_ms"] == pytest.approx(expected, rel=1e-12)
        step = one_step / w + expected
        assert row["strong"]["speedup_no_overlap"] == pytest.approx(one_step / step, rel=1e-12)
        assert row["machines"] == max(1, w // 8)
    # crossing machines on a 25 Gb/s link: ResNet-50 on A100s is faster on one machine
    best = a100["where_it_stops"]["25"]
    assert (best["best_strong_gpus"], round(best["strong_ceiling"], 2)) == (8, 1.58)


def test_markdown_is_reproducible_with_a_given_lenet_time() -> None:
    first = _run("--format", "markdown", "--lenet-ms", "0.0587")
    assert first == _run("--format", "markdown", "--lenet-ms", "0.0587")
    assert first.count("| 64 (8) |") == 4 and "0.0587 ms/image" in first
