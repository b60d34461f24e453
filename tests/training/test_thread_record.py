"""A run records the torch thread count each training session computed with, and how it was
chosen (automatically, or by hand: ``--threads N`` / ``fit(threads=N)`` / ``OMP_NUM_THREADS``),
in ``config.json`` and in every checkpoint; ``train --json`` and ``cnnlab report`` show it."""

from __future__ import annotations

import json

import torch

from cnnlab.runs import ThreadsUsed, load_run, read_run_meta
from cnnlab.threads import cpu_cores
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import resume
from run_helpers import trained_subset_run

QUICK = {"epochs": 1, "schedule": "constant", "per_class": 30, "batch_size": 16}


def _recorded(run_dir) -> dict[str, object]:
    """The ``threads`` entry of ``config.json`` and of each checkpoint's metadata."""
    saved = {"config.json": json.loads((run_dir / "config.json").read_text())["meta"]}
    for name in ("best.safetensors", "last.safetensors"):
        saved[name] = load_checkpoint(run_dir / name).meta
    return {name: meta.get("threads") for name, meta in saved.items()}


def test_an_automatic_choice_is_recorded_and_a_resume_by_hand_records_its_own(
    tmp_path_factory, cache_dir, monkeypatch
):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # nothing asks for a count
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    run = trained_subset_run(tmp_path_factory, cache_dir, name="automatic", seed=0, **QUICK)
    assert torch.get_num_threads() == before  # fit gives torch its count back
    recorded = _recorded(run)
    first = recorded["config.json"]
    assert first["chosen"] == "automatic" and 1 <= first["count"] <= cpu_cores()
    assert recorded == dict.fromkeys(recorded, first)  # every file, the same session
    assert read_run_meta(run).threads == ThreadsUsed(first["count"], "automatic")

    resume(run, epochs=2, threads=1, cache_dir=cache_dir, verbose=False)
    recorded = _recorded(run)
    assert recorded["config.json"] == first  # the run's first session
    assert recorded["last.safetensors"] == {"count": 1, "chosen": "by hand"}  # this session's
    assert load_run(run, "last").meta.threads == ThreadsUsed(1, "by hand")


def test_fit_threads_is_recorded_as_chosen_by_hand(tmp_path_factory, cache_dir):
    run = trained_subset_run(tmp_path_factory, cache_dir, name="by-hand", threads=1, **QUICK)
    assert set(map(str, _recorded(run).values())) == {str({"count": 1, "chosen": "by hand"})}


def test_train_json_and_report_show_the_threads(cli, tmp_path):
    out = tmp_path / "run"
    status, stdout, err = cli(
        "train", "lenet5", "--data", "mnist-subset", "--epochs", "1", "--per-class", "30",
        "--schedule", "constant", "--batch-size", "16", "--threads", "1", "--out", out, "--json",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(stdout)["threads"] == {"count": 1, "chosen": "by hand"}
    page = tmp_path / "report.html"
    status, _, err = cli("report", out, "--output", page)
    assert status == 0, err
    html = page.read_text()
    configuration = html[html.index("<h2>Configuration</h2>") :]
    assert "Trained with 1 thread, set by hand (--threads, threads= or OMP_NUM_THREADS)." in (
        configuration
    )
