"""``cnnlab ensemble``: members and their combination on the same split."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.evaluation.ensemble import combine_logits, ensemble
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint


@pytest.mark.parametrize("rule", ["mean-prob", "mean-logit", "vote"])
def test_members_and_ensemble_on_the_same_split(trained_run, second_run, cache_dir, rule):
    report = ensemble([trained_run, second_run], combine=rule, cache_dir=cache_dir)
    singles = [evaluate(r, cache_dir=cache_dir) for r in (trained_run, second_run)]
    assert [m["accuracy"] for m in report.members] == pytest.approx([s.accuracy for s in singles])
    assert report.examples == 1000 and 0.85 < report.accuracy <= 1.0
    assert (report.loss is None) == (rule == "vote")
    assert report.gain == pytest.approx(report.accuracy - max(s.accuracy for s in singles))


def test_combine_rules_by_hand():
    a = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    b = torch.tensor([[0.0, 2.1, 0.0], [0.0, 2.0, 0.0]])
    c = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 9.0]])
    scores, is_log = combine_logits([a, b, c], "vote")
    # example 0: one vote each -> the highest mean probability wins (class 1, 2.1 > 2.0 > 1.0)
    assert not is_log and scores.argmax(1).tolist() == [1, 1]
    scores, is_log = combine_logits([a, b], "mean-prob")
    assert is_log and torch.allclose(scores.exp().sum(1), torch.ones(2))
    expected = ((a.softmax(1) + b.softmax(1)) / 2).log()
    assert torch.allclose(scores, expected)
    scores, _ = combine_logits([a, b], "mean-logit")
    assert torch.allclose(scores, ((a + b) / 2).log_softmax(1))


def test_cli_ensemble_json(cli, trained_run, second_run):
    status, out, _ = cli("ensemble", trained_run, second_run, "--combine", "vote", "--json")
    doc = json.loads(out)
    assert status == 0 and doc["combine"] == "vote" and len(doc["members"]) == 2
    assert {"run", "accuracy"} <= set(doc["members"][0]) and 0.85 < doc["accuracy"] <= 1.0


def _altered_copy(run, tmp_path, **meta):
    ckpt = load_checkpoint(run / "best.safetensors")
    ckpt.meta.update(meta)
    path = tmp_path / "altered.safetensors"
    save_checkpoint(path, ckpt)
    return path


def test_members_must_agree(cli, trained_run, tmp_path, expect_error, cache_dir):
    ckpt = load_checkpoint(trained_run / "best.safetensors")
    classes = _altered_copy(trained_run, tmp_path, classes=list("abcdefghij"))
    status, _, err = cli("ensemble", trained_run, classes)
    expect_error(status, err, "expected ensemble members with the same classes", "'a', 'b'")
    prep = dict(ckpt.meta["preprocessing"], std=[0.5])
    other = _altered_copy(trained_run, tmp_path, preprocessing=prep)
    status, _, err = cli("ensemble", trained_run, other)
    expect_error(status, err, "same preprocessing", "std=(0.5,)")
    status, _, err = cli("ensemble", trained_run)
    expect_error(status, err, "expected at least 2 runs")
    with pytest.raises(ConfigError, match="received combine='median'"):
        ensemble([trained_run, trained_run], combine="median", cache_dir=cache_dir)


def test_the_same_run_twice_is_refused(cli, trained_run, tmp_path, expect_error):
    import shutil

    status, _, err = cli("ensemble", trained_run, trained_run / "best.safetensors")
    expect_error(status, err, "received the same checkpoint twice", str(trained_run))
    shutil.copytree(trained_run, tmp_path / "copy")
    status, _, err = cli("ensemble", trained_run, tmp_path / "copy")
    expect_error(status, err, "identical weights", "a copy of one run")


def test_a_loss_against_the_best_member_is_worded_plainly(trained_run, second_run, cache_dir):
    report = ensemble([trained_run, second_run], cache_dir=cache_dir)
    best = max(m["accuracy"] for m in report.members)
    for accuracy, words in ((best - 0.004, "0.40 points WORSE than the best member"),
                            (best + 0.002, "0.20 points better than the best member"),
                            (best, "the same accuracy as the best member")):  # fmt: skip
        report.accuracy = accuracy
        text = report.render()
        assert words in text, text
        assert "over the best member" not in text
