"""Streaming through the CLI: --stream and --workers on train and evaluate, recorded in the
run; evaluate, predict, report and --resume of a streamed run; bad input is one line, exit 2."""

import json
import shutil

import pytest
from PIL import Image

from cli_helpers import assert_one_line_error, run_cli
from cnnlab.cli import main
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.inputs import DataSelection

from .conftest import DIGITS

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("stream-cli")


@pytest.fixture(scope="module")
def streamed_run(tmp_path_factory, digit_folder):
    """lenet5 trained through the CLI on the digit folder, streamed by two worker processes."""
    root = tmp_path_factory.mktemp("streamed-run")
    argv = ["train", "lenet5", "--data", digit_folder, "--out", root / "run", "--stream"]
    argv += ["--workers", "2", "--epochs", "2", "--schedule", "constant", "--lr", "0.003"]
    argv += ["--batch-size", "16", "--augment", "rotation_range=10", "--no-progress"]
    assert main([str(a) for a in [*argv, "--cache-dir", root / "cache"]]) == 0
    return root


def test_train_records_that_the_run_streams(streamed_run):
    saved = json.loads((streamed_run / "run" / "config.json").read_text())
    assert saved["config"]["stream"] is True and saved["config"]["workers"] == 2
    assert saved["meta"]["data_options"] == {
        "image_size": [32, 32],
        "channels": 1,
        "strict": False,
        "stream": True,
    }


def test_evaluate_predict_and_report_a_streamed_run(streamed_run, digit_folder, capsys, tmp_path):
    run, cache = streamed_run / "run", streamed_run / "cache"
    status, out, err = run_cli(capsys, "evaluate", run, "--cache-dir", cache, "--json")
    assert status == 0, err
    streamed = json.loads(out)
    assert streamed["examples"] == 9 and streamed["classes"] == list(DIGITS)
    # the same numbers as the test split held in memory
    in_memory = DataSelection(stream=False)
    held = evaluate(run, selection=in_memory, cache_dir=cache).to_dict()
    assert streamed == held
    status, out, err = run_cli(
        capsys, "evaluate", run, "--tta", "flip", "--workers", "0", "--cache-dir", cache, "--json"
    )
    assert status == 0, err
    flipped = evaluate(run, selection=in_memory, cache_dir=cache, tta="flip")
    assert json.loads(out) == flipped.to_dict()
    digit = sorted((digit_folder / "7").glob("*.png"))[0]
    status, out, err = run_cli(capsys, "predict", run, digit, "--json")
    assert status == 0, err
    assert json.loads(out)[0]["top_k"][0]["class"] in DIGITS
    page = tmp_path / "report.html"
    status, _, err = run_cli(
        capsys, "report", run, "--output", page, "--mistakes", "9", "--cache-dir", cache
    )
    assert status == 0, err
    mistakes = len(streamed["mistakes"])
    assert page.read_text().count("<figure>") == mistakes  # the pictures of the mistakes


def test_resume_a_streamed_run_with_other_workers(streamed_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(streamed_run / "run", run)
    status, _, err = run_cli(
        capsys,
        "train",
        "--resume",
        run,
        "--epochs",
        "3",
        "--workers",
        "0",
        "--cache-dir",
        streamed_run / "cache",
    )
    assert status == 0, err
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]


def test_strict_streamed_training_lists_every_bad_file(digit_folder, tmp_path, capsys):
    folder = tmp_path / "digits"
    shutil.copytree(digit_folder, folder)
    (folder / "1" / "broken.png").write_bytes(b"junk")
    Image.new("L", (4, 4)).save(folder / "0" / "fine.png")
    (folder / "7" / "notes.txt").write_text("not an image")
    argv = ["train", "lenet5", "--data", folder, "--out", tmp_path / "run", "--stream"]
    status, _, err = run_cli(capsys, *argv, "--strict", "--cache-dir", tmp_path / "cache")
    line = assert_one_line_error(status, err, "--strict", "2 bad file(s)")
    assert str(folder / "1" / "broken.png") in line and str(folder / "7" / "notes.txt") in line
    assert "fine.png" not in line


def test_bad_stream_options_are_one_line_and_exit_2(streamed_run, tmp_path, capsys, cache_dir):
    cases = [
        (["train", "lenet5", "--data", "mnist-subset", "--stream"], "only with an image folder"),
        (["train", "lenet5", "--data", "mnist-subset", "--workers", "2"], "only with an image"),
        (["train", "lenet5", "--data", streamed_run / "run", "--workers", "-1"], "workers=-1"),
        (["train", "--resume", streamed_run / "run", "--strict"], "received --strict on"),
        (["evaluate", streamed_run / "run", "--data", "mnist-subset", "--stream"], "image folder"),
    ]
    for i, (argv, fragment) in enumerate(cases):
        if argv[0] == "train" and "--resume" not in argv:
            argv = [*argv, "--out", tmp_path / f"run{i}"]
        status, _, err = run_cli(capsys, *argv, "--cache-dir", cache_dir)
        assert_one_line_error(status, err, fragment)
