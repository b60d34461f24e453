"""The confusion matrix as a heat map: shares per true class and `cnnlab confusion`."""

import numpy as np

from cnnlab.evaluation.evaluate import evaluate
from cnnlab.viz import plot_confusion
from cnnlab.viz.confusion import confusion_rates
from pictures import colourmap_share, read_png


def test_rates_are_shares_of_each_true_class():
    counts = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    rates = confusion_rates(counts)
    np.testing.assert_allclose(rates, [[0.8, 0.2, 0], [0, 0, 0], [0.25, 0.25, 0.5]])


def test_plot_from_a_report(trained_run, cache_dir, tmp_path, png):
    report = evaluate(trained_run, cache_dir=cache_dir)
    path = plot_confusion(report, tmp_path / "c.png", normalize=True)
    width, height = png(path)
    assert 600 < width < 1400 and 500 < height < 1200
    pixels = read_png(path)
    # a 95% model: ten dark diagonal cells (and the colour bar), light cells everywhere else
    assert colourmap_share(pixels, "Blues", 0.7, 1.0) > 0.02
    assert colourmap_share(pixels, "Blues", 0.0, 0.1) > 0.3


def test_cli_confusion(trained_run, cache_dir, tmp_path, cli, png, one_line_error):
    for extra, out in [((), "counts.png"), (("--normalize",), "rates.png")]:
        status, stdout, _ = cli(
            "confusion", trained_run, *extra, "--cache-dir", cache_dir, "--output", tmp_path / out
        )
        assert status == 0 and out in stdout
        png(tmp_path / out)
        assert colourmap_share(read_png(tmp_path / out), "Blues", 0.7, 1.0) > 0.02
    status, _, err = cli("confusion", trained_run, "--data", "nodata", "--output", tmp_path / "x")
    one_line_error(status, err, "nodata")
    status, _, err = cli("confusion", tmp_path, "--output", tmp_path / "x")
    one_line_error(status, err, "expected a run directory")
