"""What `cnnlab train` and `cnnlab finetune` print at the end, computed by the API."""

import json
import re

from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.training_result import training_result
from cnnlab.training.history import History


def _history(run_dir):
    return History.from_dict(json.loads((run_dir / "history.json").read_text()))


def test_result_of_a_trained_run(trained_run, cache_dir):
    result = training_result(trained_run, _history(trained_run), cache_dir=cache_dir)
    assert result.checkpoint_name == "best" and result.test.examples == 1000
    assert result.test.accuracy > 0.85 and result.test.split == "test"
    line = result.format()
    assert re.fullmatch(
        r"test accuracy \d+\.\d\d% \(loss \d\.\d{4}\) on 1000 test images with the best "
        r"checkpoint; run in .+",
        line,
    ), line
    assert f"{result.test.accuracy:.2%}" in line and line.endswith(f"run in {trained_run}")
    document = result.to_dict()
    assert document["run"] == str(trained_run) and document["epoch"] == [1, 2, 3]
    assert set(document["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert document["test"]["accuracy"] == result.test.accuracy
    assert document["test"]["checkpoint"].endswith("best.safetensors")
    json.dumps(document)  # one JSON document, as `--json` prints it


def test_a_run_without_best_checkpoint_is_evaluated_with_its_last(run_copy, cache_dir):
    (run_copy / "best.safetensors").unlink()
    result = training_result(run_copy, _history(run_copy), cache_dir=cache_dir)
    assert result.checkpoint_name == "last"
    assert "with the last checkpoint" in result.format()
    assert result.to_dict()["test"]["checkpoint"].endswith("last.safetensors")


def test_the_result_evaluates_with_the_runs_test_tta(run_copy, cache_dir):
    config_file = run_copy / "config.json"
    saved = json.loads(config_file.read_text())
    saved["config"]["test_tta"] = "shift"
    config_file.write_text(json.dumps(saved))
    result = training_result(run_copy, _history(run_copy), cache_dir=cache_dir)
    single = evaluate(run_copy, cache_dir=cache_dir)
    shifted = evaluate(run_copy, tta="shift", cache_dir=cache_dir)
    tta = result.test.tta
    assert tta["mode"] == "shift" and tta["views"] == 5
    assert tta["single_view"]["accuracy"] == single.accuracy
    assert result.test.accuracy == shifted.accuracy and result.test.loss == shifted.loss
    assert result.test.loss != single.loss  # five views averaged: not the single view's
    line = result.format()
    assert line.startswith(
        f"test accuracy {shifted.accuracy:.2%} with shift TTA, 5 views (single view "
        f"{single.accuracy:.2%}) (loss {shifted.loss:.4f}) on 1000 test images"
    ), line
    assert result.to_dict()["test"]["tta"]["single_view"]["accuracy"] == single.accuracy


def test_train_test_tta_on_the_command_line(cli, tmp_path, expect_error):
    out = tmp_path / "run"
    argv = ("train", "lenet5", "--data", "mnist-subset", "--epochs", "1", "--out", out)
    status, stdout, _ = cli(*argv, "--test-tta", "shift", "--json")
    assert status == 0
    document = json.loads(stdout)
    assert document["test"]["tta"]["mode"] == "shift"
    assert json.loads((out / "config.json").read_text())["config"]["test_tta"] == "shift"
    status, _, err = cli(*argv[:-1], tmp_path / "other", "--test-tta", "10crop")
    expect_error(status, err, "--test-tta", "10crop", "'none', 'flip', 'shift'")
    assert not (tmp_path / "other").exists()
