"""Curves drawn in a background thread (what ``cnnlab train`` does so that its result line
does not wait for matplotlib): the picture is complete once waited for, errors come back."""

import threading

import pytest

from cnnlab.training.history import History
from cnnlab.training.run import fit
from cnnlab.viz.plots import PlotCurves, wait_for_curves
from pictures import read_png


class _Trainer:
    def __init__(self, history: History) -> None:
        self.history = history
        self.stop_training = False


def _history() -> History:
    history = History()
    for epoch in (1, 2):
        logs = {"loss": 1 / epoch, "accuracy": 0.5 * epoch, "val_loss": 1.1 / epoch}
        history.append(epoch, {**logs, "val_accuracy": 0.4 * epoch, "lr": 0.1, "seconds": 1.0})
    return history


def test_fit_returns_before_the_curves_and_wait_completes_them(tmp_path, cache_dir):
    run = tmp_path / "run"
    fit(
        "lenet5",
        "mnist-subset",
        out=run,
        cache_dir=cache_dir,
        verbose=False,
        epochs=1,
        per_class=10,
        background_curves=True,
    )
    wait_for_curves()
    assert not any(t.name == "cnnlab-curves" for t in threading.enumerate())
    pixels = read_png(run / "curves.png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300


def test_a_background_drawing_error_is_raised_by_wait(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    curves = PlotCurves(tmp_path / "file" / "curves.png", epochs=2, background=True)
    curves.on_epoch_end(_Trainer(_history()), 2, {})
    with pytest.raises(OSError):
        wait_for_curves()
    wait_for_curves()  # reported once


def test_no_drawing_before_the_last_epoch(tmp_path):
    curves = PlotCurves(tmp_path / "curves.png", epochs=3, background=True)
    curves.on_epoch_end(_Trainer(_history()), 2, {})
    curves.wait()
    assert not (tmp_path / "curves.png").exists()
