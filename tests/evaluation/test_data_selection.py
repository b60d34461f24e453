"""One ``DataSelection`` for evaluate, ensemble, confusion and report; keyword-only arguments."""

from __future__ import annotations

import json

import pytest

from cnnlab.errors import ConfigError
from cnnlab.evaluation.ensemble import ensemble
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.inputs import DataSelection, load_split
from cnnlab.report import write_report
from cnnlab.runs import load_run


def test_evaluate_ensemble_and_report_reject_positional_extras(trained_run, cache_dir, tmp_path):
    """What follows the run (data, split, top_k, ...) must be named: a positional data spec or
    split would silently land in another parameter."""
    with pytest.raises(TypeError, match="positional"):
        evaluate(trained_run, "mnist-subset")
    with pytest.raises(TypeError, match="positional"):
        evaluate(trained_run, DataSelection(), 5)
    with pytest.raises(TypeError, match="positional"):
        ensemble([trained_run, trained_run], DataSelection())
    with pytest.raises(TypeError, match="positional"):
        write_report(trained_run, tmp_path / "r.html", DataSelection())
    with pytest.raises(TypeError, match="positional"):
        DataSelection("mnist-subset", "train")
    assert not (tmp_path / "r.html").exists()


def test_a_selection_is_checked_when_made():
    with pytest.raises(ConfigError, match="expected split test or train, received split='val'"):
        DataSelection(split="val")
    with pytest.raises(ConfigError, match="distinct, comma-separated class names"):
        DataSelection(classes="1,,2")
    assert DataSelection(classes="0, 1").classes == ("0", "1")
    assert DataSelection(classes=["3", "5"]) == DataSelection(classes="3,5")
    assert DataSelection().classes is None and DataSelection(classes="").classes is None


def test_every_evaluation_reads_the_same_selection(trained_run, second_run, cache_dir, subset):
    """The split and classes of a selection reach evaluate, ensemble and load_split alike."""
    train_of_0_and_1 = DataSelection(data="mnist-subset", split="train", classes="0,1")
    expected = int((subset.train.labels <= 1).sum())
    run = load_run(trained_run)
    spec, dataset = load_split(run, train_of_0_and_1, cache_dir)
    assert spec == "mnist-subset" and len(dataset) == expected
    assert dataset.classes == run.classes  # a run of all classes keeps its labels
    report = evaluate(run, selection=train_of_0_and_1, cache_dir=cache_dir, mistakes=3)
    assert (report.split, report.examples) == ("train", expected)
    supports = {row["class"]: row["support"] for row in report.per_class}
    assert set(supports) == {"0", "1"} and supports["0"] + supports["1"] == expected
    assert report.confusion_matrix[2] == [0] * 10  # the matrix stays the run's (10 x 10)
    members = ensemble([run, second_run], selection=train_of_0_and_1, cache_dir=cache_dir)
    assert (members.split, members.examples) == ("train", expected)
    assert members.members[0]["accuracy"] == pytest.approx(report.accuracy)


def test_evaluate_classes_shows_those_classes_and_indices_of_the_whole_split(
    cli, trained_run, subset
):
    status, out, err = cli(
        "evaluate", trained_run, "--classes", "3,5", "--json", "--mistakes", "50"
    )
    assert status == 0, err
    doc = json.loads(out)
    assert [row["class"] for row in doc["per_class"]] == ["3", "5"]
    assert doc["selected_classes"] == ["3", "5"]
    labels = subset.test.labels
    assert doc["examples"] == int(((labels == 3) | (labels == 5)).sum())
    assert doc["mistakes"], "a 3-epoch LeNet-5 on 4000 digits makes some mistakes on 3 and 5"
    for mistake in doc["mistakes"]:  # indices of the whole test split: the true class agrees
        assert str(int(labels[mistake["index"]])) == mistake["true"]
    status, text, _ = cli("evaluate", trained_run, "--classes", "3,5")
    rows = text.split("confusion matrix")[1].splitlines()
    assert rows[1].split() == ["3", "5", "other"] and len(rows[2].split()) == 4
    assert "    7 " not in text.split("confusion matrix")[0]  # no per-class row of class 7


def test_top_k_of_all_classes_is_left_out(trained_run, cache_dir):
    from cnnlab.evaluation.evaluate import evaluate

    assert list(evaluate(trained_run, top_k=10, cache_dir=cache_dir).top_k) == [1]
    assert list(evaluate(trained_run, top_k=3, cache_dir=cache_dir).top_k) == [1, 3]
