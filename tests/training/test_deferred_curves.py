"""Curves drawn after training (what ``cnnlab train`` does so that its result line does not
wait for matplotlib): nothing is drawn until asked, the picture is complete once drawn, errors
come back to the caller once."""

import pytest

from cnnlab.training.history import History
from cnnlab.training.run import fit
from cnnlab.viz.plots import PlotCurves, draw_deferred_curves
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


def test_fit_returns_before_the_curves_and_drawing_completes_them(tmp_path, cache_dir):
    run = tmp_path / "run"
    fit(
        "lenet5",
        "mnist-subset",
        out=run,
        cache_dir=cache_dir,
        verbose=False,
        epochs=1,
        per_class=10,
        defer_curves=True,
    )
    assert (run / "history.json").is_file() and not (run / "curves.png").exists()
    draw_deferred_curves()
    pixels = read_png(run / "curves.png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    (run / "curves.png").unlink()
    draw_deferred_curves()  # drawn once
    assert not (run / "curves.png").exists()


def test_a_deferred_drawing_error_is_raised_once(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    curves = PlotCurves(tmp_path / "file" / "curves.png", epochs=2, deferred=True)
    curves.on_epoch_end(_Trainer(_history()), 2, {})
    with pytest.raises(OSError):
        draw_deferred_curves()
    draw_deferred_curves()  # reported once


def test_the_history_is_the_one_at_the_end_of_training(tmp_path):
    curves = PlotCurves(tmp_path / "curves.png", epochs=2, deferred=True)
    history = _history()
    curves.on_epoch_end(_Trainer(history), 2, {})
    history.append(3, {"loss": 9.0, "accuracy": 0.1, "val_loss": 9.0, "val_accuracy": 0.1,
                       "lr": 0.1, "seconds": 1.0})  # fmt: skip
    curves.draw()
    assert read_png(tmp_path / "curves.png").shape[1] > 300
    assert curves._pending is None


def test_no_drawing_before_the_last_epoch(tmp_path):
    curves = PlotCurves(tmp_path / "curves.png", epochs=3, deferred=True)
    curves.on_epoch_end(_Trainer(_history()), 2, {})
    curves.draw()
    draw_deferred_curves()
    assert not (tmp_path / "curves.png").exists()
