"""Training curves: overfitting detection on synthetic and real histories, and `cnnlab plot`."""

import json
import math
from pathlib import Path

import pytest

from cnnlab.training.history import History
from cnnlab.viz import best_epoch, overfitting_epoch, plot_history, plot_run
from pictures import SERIES, colour_columns, colour_share, read_png

OVERFIT_HISTORY = Path(__file__).parent / "data" / "lenet5-mnist500-history.json"


def history(loss, val_loss):
    h = History()
    for i, (a, b) in enumerate(zip(loss, val_loss), start=1):
        h.append(i, {"loss": a, "accuracy": 1 - a / 3, "val_loss": b, "val_accuracy": 1 - b / 3,
                     "lr": 0.01, "seconds": 1.0})  # fmt: skip
    return h


def test_overfitting_is_the_best_epoch_before_validation_loss_rises_while_training_falls():
    h = history([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [0.9, 0.6, 0.5, 0.55, 0.6, 0.7])
    assert best_epoch(h) == 3
    assert overfitting_epoch(h) == 3


def test_a_noisy_rise_counts_but_a_plateau_does_not():
    noisy = history([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [0.9, 0.5, 0.56, 0.54, 0.6, 0.58])
    assert overfitting_epoch(noisy) == 2
    plateau = history([1.0, 0.6, 0.4, 0.3, 0.2], [0.9, 0.5, 0.501, 0.5005, 0.502])
    assert overfitting_epoch(plateau) is None  # within 2% of the best: no call-out


@pytest.mark.parametrize(
    ("loss", "val_loss"),
    [
        ([1.0, 0.6, 0.4, 0.3], [0.9, 0.6, 0.5, 0.4]),  # both falling
        ([1.0, 0.6, 0.4, 0.3], [0.9, 0.6, 0.5, 0.7]),  # one epoch after the best only
        ([1.0, 0.6, 0.7, 0.8], [0.9, 0.6, 0.7, 0.8]),  # both rising: diverging, not overfitting
        ([1.0, 0.6, 0.4, 0.3], [math.nan] * 4),  # no validation split
    ],
)
def test_no_overfitting(loss, val_loss):
    assert overfitting_epoch(history(loss, val_loss)) is None


def test_real_run_without_overfitting(trained_run):
    data = json.loads((trained_run / "history.json").read_text())
    h = History.from_dict(data)
    val = h.history["val_loss"]
    assert best_epoch(h) == h.epoch[val.index(min(val))]
    assert overfitting_epoch(h) is None  # 3 epochs on 3600 digits: validation loss falls


def test_real_run_that_overfits():
    """A real run (data/make_overfit_history.py): LeNet-5 on 500 MNIST digits for 30 epochs.
    Validation loss is lowest at epoch 8 (0.356) and ends at 0.512 while training loss goes
    from 0.091 to 0.0002."""
    h = History.from_dict(json.loads(OVERFIT_HISTORY.read_text()))
    assert best_epoch(h) == 8
    assert overfitting_epoch(h) == 8


def test_plot_history_marks_overfitting(tmp_path, png):
    h = history([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [0.9, 0.6, 0.5, 0.55, 0.6, 0.7])
    path = plot_history(h, tmp_path / "curves.png", title="synthetic")
    width, height = png(path)
    assert width > 800 and height > 300
    pixels = read_png(path)
    shade = (249, 237, 237)  # firebrick at alpha 0.08 over white: the overfitting span
    assert colour_share(pixels, shade, tolerance=3) > 0.02
    calm = history([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [0.9, 0.6, 0.5, 0.4, 0.3, 0.2])
    calm_pixels = read_png(plot_history(calm, tmp_path / "calm.png"))
    assert colour_share(calm_pixels, shade, tolerance=3) < 0.001


def test_plot_run_and_cli(trained_run, tmp_path, cli, png):
    pixels = read_png(plot_run(trained_run, tmp_path / "api.png"))
    for colour in SERIES:  # the training and the validation series, in both panels
        assert colour_share(pixels, colour) > 0.002, colour
    status, out, _ = cli("plot", trained_run, "--output", tmp_path / "cli.png")
    assert status == 0 and str(tmp_path / "cli.png") in out
    width, height = png(tmp_path / "cli.png")
    assert width > 2 * height > 600


def test_plot_needs_a_run_directory(tmp_path, trained_run, cli, one_line_error):
    (tmp_path / "empty").mkdir()
    status, _, err = cli("plot", tmp_path / "empty", "--output", tmp_path / "x.png")
    one_line_error(status, err, "expected a run directory", "empty")
    status, _, err = cli("plot", tmp_path / "missing", "--output", tmp_path / "x.png")
    one_line_error(status, err, "no such path")
    status, _, err = cli("plot", trained_run / "best.safetensors", "--output", tmp_path / "x.png")
    one_line_error(status, err, "expected a run directory", "best.safetensors")
    assert not (tmp_path / "x.png").exists()


GOLDENROD = (218, 165, 32)  # the star marking the best checkpoint's epoch


def test_curves_mark_the_epoch_monitor_chose(tmp_path):
    # validation accuracy peaks at epoch 2, validation loss bottoms out at epoch 5
    h = History()
    for epoch, (val_loss, val_acc) in enumerate(
        [(0.9, 0.80), (0.7, 0.95), (0.6, 0.90), (0.5, 0.91), (0.45, 0.92)], start=1
    ):
        h.append(epoch, {"loss": 1 / epoch, "accuracy": 1 - 0.1 / epoch, "val_loss": val_loss,
                         "val_accuracy": val_acc, "lr": 0.01, "seconds": 1.0})  # fmt: skip
    by_accuracy = read_png(plot_history(h, tmp_path / "acc.png", monitor="val_accuracy"))
    by_loss = read_png(plot_history(h, tmp_path / "loss.png", monitor="val_loss"))
    width = by_accuracy.shape[1]
    for pixels in (by_accuracy, by_loss):
        assert colour_share(pixels, GOLDENROD, tolerance=12) > 0.0005  # the stars are drawn
    # in the left panel, the star sits at epoch 2 of 1..5 (a quarter across), or at epoch 5
    left_acc = colour_columns(by_accuracy[:, : width // 2], GOLDENROD, 12)
    left_loss = colour_columns(by_loss[:, : width // 2], GOLDENROD, 12)
    assert left_loss.mean() - left_acc.mean() > 0.25 * width / 2
