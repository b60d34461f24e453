"""What `cnnlab train` and `cnnlab finetune` print at the end, computed by the API."""

import json
import re

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
