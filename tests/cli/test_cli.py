"""The command line, used as a person would: happy paths and every kind of bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cli_helpers import assert_one_line_error, run_cli
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def test_models_lists_lenet5(capsys):
    status, out, _ = run_cli(capsys, "models")
    assert status == 0 and "lenet5" in out and "1x32x32" in out
    status, out, _ = run_cli(capsys, "models", "--json")
    assert any(m["name"] == "lenet5" for m in json.loads(out))


def test_train_evaluate_predict(capsys, tmp_path, cache_dir, subset):
    out_dir = tmp_path / "run"
    status, out, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        out_dir,
        "--epochs",
        "2",
        "--cache-dir",
        cache_dir,
        "--json",
    )
    assert status == 0, err
    document = json.loads(out)
    assert document["epoch"] == [1, 2] and document["test"]["accuracy"] > 0.85
    assert "epoch 2/2" in err  # per-epoch progress lines go to stderr

    status, out, _ = run_cli(capsys, "evaluate", out_dir, "--cache-dir", cache_dir, "--json")
    report = json.loads(out)
    assert status == 0 and report["accuracy"] == document["test"]["accuracy"]
    assert report["top_k"]["5"] >= report["accuracy"] and len(report["per_class"]) == 10
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 1000 and np.trace(matrix) == round(report["accuracy"] * 1000)

    status, out, _ = run_cli(capsys, "evaluate", out_dir, "--cache-dir", cache_dir)
    assert status == 0 and "confusion matrix" in out and "precision" in out

    # real test digits written as files of other sizes, modes and formats
    paths = []
    for i, (size, mode, suffix) in enumerate(
        [
            ((28, 28), "L", ".png"),
            ((140, 140), "RGB", ".jpg"),
            ((56, 56), "RGBA", ".png"),
            ((33, 47), "L", ".bmp"),
        ]
    ):
        digit = subset.test.images[i, 0].numpy()
        path = tmp_path / f"digit{i}{suffix}"
        Image.fromarray(digit).resize(size, Image.Resampling.BILINEAR).convert(mode).save(path)
        paths.append(path)
    status, out, _ = run_cli(capsys, "predict", out_dir, *paths, "--top-k", "2", "--json")
    predictions = json.loads(out)
    assert status == 0 and len(predictions) == 4 and len(predictions[0]["top_k"]) == 2
    truth = [str(int(v)) for v in subset.test.labels[:4]]
    assert sum(p["top_k"][0]["class"] == t for p, t in zip(predictions, truth)) >= 3
    probs = [p["top_k"][0]["probability"] for p in predictions]
    assert all(0 < p <= 1 for p in probs)

    # a dark digit on white paper, inverted as asked (automatic inversion: test_predict_pictures)
    paper = tmp_path / "paper.png"
    Image.fromarray(255 - subset.test.images[0, 0].numpy()).resize((200, 200)).save(paper)
    status, out, _ = run_cli(capsys, "predict", out_dir, paper, "--invert", "--json")
    assert json.loads(out)[0]["top_k"][0]["class"] == truth[0]


def test_resume_continues_a_finished_constant_run(capsys, tmp_path, cache_dir):
    out_dir = tmp_path / "run"
    common = ["--cache-dir", cache_dir, "--json"]
    run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        out_dir,
        "--epochs",
        "1",
        "--schedule",
        "constant",
        "--lr",
        "1e-3",
        *common,
    )
    status, out, err = run_cli(capsys, "train", "--resume", out_dir, "--epochs", "2", *common)
    assert status == 0, err
    assert json.loads(out)["epoch"] == [1, 2]


# ---- bad input: one line, exit status 2, nothing destroyed ------------------------------
def test_unknown_model(capsys, tmp_path, cache_dir):
    status, _, err = run_cli(
        capsys,
        "train",
        "lenet6",
        "--data",
        "mnist-subset",
        "--out",
        tmp_path / "r",
        "--cache-dir",
        cache_dir,
    )
    assert_one_line_error(status, err, "unknown model 'lenet6'", "did you mean lenet5")


def test_unknown_optimizer(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "train", "lenet5", "--out", tmp_path / "r", "--optimizer", "adagrad"
    )
    assert_one_line_error(status, err, "invalid choice: 'adagrad'")


@pytest.mark.parametrize("lr", ["0", "nan", "-0.1"])
def test_bad_learning_rate(capsys, tmp_path, cache_dir, lr):
    status, _, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        tmp_path / "r",
        "--lr",
        lr,
        "--cache-dir",
        cache_dir,
    )
    assert_one_line_error(status, err, "expected a finite learning rate > 0", f"lr={float(lr)}")
    assert not (tmp_path / "r").exists()


def test_unknown_dataset(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "train", "lenet5", "--data", "imagenet", "--out", tmp_path / "r"
    )
    assert_one_line_error(status, err, "unknown dataset 'imagenet'")


def test_existing_run_is_not_destroyed(capsys, run_copy, cache_dir):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    status, _, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        run_copy,
        "--cache-dir",
        cache_dir,
    )
    assert_one_line_error(status, err, "holds a run", "--resume")
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_not_a_run(capsys, tmp_path, command):
    (tmp_path / "empty").mkdir()
    extra = [tmp_path / "x.png"] if command == "predict" else []
    status, _, err = run_cli(capsys, command, tmp_path / "empty", *extra)
    assert_one_line_error(status, err, "expected a run directory", "empty")
    status, _, err = run_cli(capsys, command, tmp_path / "missing", *extra)
    assert_one_line_error(status, err, "no such path")


def test_checkpoint_that_is_not_safetensors(capsys, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"PK\x03\x04 not a checkpoint")
    status, _, err = run_cli(capsys, "evaluate", tmp_path / "model.safetensors")
    assert_one_line_error(status, err, "expected a cnnlab checkpoint")


def test_checkpoint_from_another_architecture(capsys, run_copy):
    ckpt = load_checkpoint(run_copy / "best.safetensors")
    ckpt.meta["model"] = {**ckpt.meta["model"], "name": "lenet5-paddle"}
    save_checkpoint(run_copy / "other.safetensors", Checkpoint(ckpt.model_state, ckpt.meta))
    status, _, err = run_cli(capsys, "evaluate", run_copy / "other.safetensors")
    assert_one_line_error(status, err, "expected weights for lenet5-paddle", "another architecture")


def test_predict_bad_images(capsys, run_copy, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 30)
    for path, fragment in [
        (tmp_path / "nope.png", "no such file"),
        (tmp_path / "notes.txt", "cannot be decoded"),
        (tmp_path / "broken.png", "cannot be decoded"),
    ]:
        status, _, err = run_cli(capsys, "predict", run_copy, path)
        assert_one_line_error(status, err, str(path), fragment)


def test_corrupt_and_tampered_dataset_files(capsys, tmp_path, cache_dir):
    shutil.copytree(cache_dir / "mnist-subset", tmp_path / "mnist-subset")
    (tmp_path / "mnist-subset" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    status, _, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        tmp_path / "r",
        "--cache-dir",
        tmp_path,
    )
    assert_one_line_error(status, err, "checksum mismatch for train-images-idx3-ubyte")


def test_nan_loss_stops_with_one_line(capsys, tmp_path, cache_dir):
    out_dir = tmp_path / "r"
    status, _, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        out_dir,
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--schedule",
        "constant",
        "--checkpoint-every",
        "1",
        "--cache-dir",
        cache_dir,
        "--no-progress",
    )
    lines = [line for line in err.splitlines() if line.startswith("cnnlab: error")]
    assert status == 2 and len(lines) == 1
    assert "expected a finite loss" in lines[0] and "step" in lines[0]
    assert str(out_dir / "last.safetensors") in lines[0]
    load_checkpoint(out_dir / "last.safetensors")  # the last good one is intact


def test_real_process_exit_status(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "evaluate", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
