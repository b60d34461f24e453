"""``--classes`` and ``--per-class``: selecting classes and examples from a dataset."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.data.selection import parse_classes, select
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run, read_run_config


def test_select_keeps_names_relabels_and_filters_the_test_split(subset):
    chosen = select(subset, ["7", "5", "9"], per_class=20, seed=3)
    assert chosen.classes == ("5", "7", "9")  # dataset order, original names
    assert torch.bincount(chosen.train.labels).tolist() == [20, 20, 20]
    original = subset.train.labels[torch.isin(subset.train.labels, torch.tensor([5, 7, 9]))]
    assert len(original) > 60
    expected_test = int(torch.isin(subset.test.labels, torch.tensor([5, 7, 9])).sum())
    assert len(chosen.test) == expected_test  # every test image of the kept classes
    sevens = subset.test.images[subset.test.labels == 7]
    assert torch.equal(chosen.test.images[chosen.test.labels == 1], sevens)


def test_per_class_is_seeded(subset):
    a = select(subset, per_class=10, seed=0).train.images
    b = select(subset, per_class=10, seed=0).train.images
    c = select(subset, per_class=10, seed=1).train.images
    assert torch.equal(a, b) and not torch.equal(a, c) and len(a) == 100


def test_bad_selections(subset):
    with pytest.raises(ConfigError, match=r"received classes=\['1', '11'\] \(11 not in the data\)"):
        select(subset, ["1", "11"])
    with pytest.raises(ConfigError, match="expected per_class from 1 to"):
        select(subset, ["0"], per_class=100_000)
    with pytest.raises(ConfigError, match="distinct, comma-separated"):
        parse_classes("1,,2")
    assert parse_classes("0, 1") == ["0", "1"] and parse_classes(None) is None


def test_cli_train_on_a_selection_then_resume_and_evaluate(cli, tmp_path, subset):
    out = tmp_path / "run"
    status, _, _ = cli(
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        out,
        "--classes",
        "1,0",
        "--per-class",
        40,
        "--epochs",
        1,
        "--schedule",
        "constant",
        "--no-progress",
    )
    assert status == 0
    config = read_run_config(out)["config"]
    assert config["classes"] == ["1", "0"] and config["per_class"] == 40
    run = load_run(out)
    assert run.classes == ("0", "1")
    status, _, _ = cli("train", "--resume", out, "--epochs", 2, "--no-progress")
    assert status == 0 and len(json.loads((out / "history.json").read_text())["epoch"]) == 2
    status, text, _ = cli("evaluate", out, "--json")
    doc = json.loads(text)
    assert doc["classes"] == ["0", "1"]
    assert doc["examples"] == int((subset.test.labels <= 1).sum())  # the run's classes only


def test_cli_unknown_class_is_one_line(cli, tmp_path, expect_error):
    out = tmp_path / "run"
    status, _, err = cli(
        "train", "lenet5", "--data", "mnist-subset", "--out", out, "--classes", "0,cat"
    )
    expect_error(status, err, "cat not in the data", "expected classes among")
    assert not (out / "config.json").exists()
