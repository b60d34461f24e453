"""Test-time augmentation and the worst mistakes in ``evaluate``, on the real MNIST subset."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import ConfigError
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.tta import TTAWarning, crop_size_for, label_warning, tta_views

MNIST_PREP = Preprocessing((0.13,), (0.31,), (28, 28), (32, 32), 1)


def _digits() -> torch.Tensor:
    return torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)


def test_crops_come_from_the_padded_image_and_the_centre_crop_is_the_stored_image():
    images = _digits()
    crop = crop_size_for("10crop", MNIST_PREP, (32, 32), 28)
    views = tta_views("10crop", MNIST_PREP, crop)
    assert len(views) == 10 and crop == (28, 28)
    centre, top_left = views[0](images), views[1](images)
    assert torch.equal(centre, images.float())  # 2-pixel border of the 32x32 canvas cut off
    canvas = torch.nn.functional.pad(images.float(), (2, 2, 2, 2))
    assert torch.equal(top_left, canvas[..., :28, :28])  # the digit moved 2 pixels down-right
    assert torch.equal(views[5](images), images.float().flip(-1))  # mirrored centre crop
    assert MNIST_PREP(top_left).shape == (3, 1, 32, 32)  # re-padded to the network input


def test_flip_and_shift_views():
    images = _digits()
    flip = tta_views("flip", MNIST_PREP, None)
    assert len(flip) == 2 and torch.equal(flip[1](flip[1](images)), images)
    shift = tta_views("shift", MNIST_PREP, None)
    assert len(shift) == 5
    down = shift[2](images)  # content moved 2 pixels down, top rows replicate the edge
    assert torch.equal(down[..., 2:, :], images.float()[..., :-2, :])


@pytest.mark.parametrize(
    ("mode", "crop", "fragment"),
    [
        ("10crop", None, "expected images larger than the crop for 10crop TTA"),
        ("5crop", 32, "crop_size=32x32"),
        ("5crop", 0, "--crop-size from 1 to 31"),
        ("flip", 28, "expected --crop-size only with 5crop or 10crop"),
        ("mirror", None, "expected tta in none, flip, shift, 5crop, 10crop"),
    ],
)
def test_tta_modes_that_do_not_fit_are_refused(mode, crop, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        crop_size_for(mode, MNIST_PREP, (32, 32), crop)


def test_tta_report_gives_single_view_and_tta_side_by_side(trained_run, cache_dir):
    plain = evaluate(trained_run, cache_dir=cache_dir)
    for mode, crop, views in (("shift", None, 5), ("10crop", 28, 10)):
        report = evaluate(trained_run, cache_dir=cache_dir, tta=mode, crop_size=crop)
        tta = report.tta
        assert tta["views"] == views and tta["mode"] == mode
        assert tta["single_view"]["accuracy"] == pytest.approx(plain.accuracy)
        assert tta["single_view"]["loss"] == pytest.approx(plain.loss, rel=1e-5)
        assert report.accuracy == tta["accuracy"] and 0.8 < report.accuracy <= 1.0
        assert sum(map(sum, report.confusion_matrix)) == report.examples == 1000
        assert "single view: accuracy" in report.render() and f"{mode} TTA" in report.render()


def test_worst_mistakes_are_misclassified_and_sorted_by_loss(trained_run, cache_dir, subset):
    report = evaluate(trained_run, cache_dir=cache_dir, mistakes=15)
    wrong = round((1 - report.accuracy) * report.examples)
    assert len(report.mistakes) == min(15, wrong) > 0
    losses = [m["loss"] for m in report.mistakes]
    assert losses == sorted(losses, reverse=True)
    for m in report.mistakes:
        assert m["true"] != m["predicted"]
        assert m["true"] == subset.test.classes[int(subset.test.labels[m["index"]])]
        assert m["loss"] == pytest.approx(-math.log(m["true_probability"]), rel=1e-4)
        assert m["probability"] > m["true_probability"]


def test_cli_evaluate_tta_json_and_errors(cli, trained_run, expect_error):
    status, out, _ = cli("evaluate", trained_run, "--tta", "5crop", "--crop-size", 28, "--json")
    doc = json.loads(out)
    assert status == 0 and doc["tta"]["views"] == 5 and doc["accuracy"] == doc["tta"]["accuracy"]
    assert {"accuracy", "loss", "mistakes"} <= set(doc)
    assert doc["tta"]["single_view"]["accuracy"] > 0.8
    status, _, err = cli("evaluate", trained_run, "--tta", "10crop")
    expect_error(status, err, "28x28, padded to the 32x32 network input", "--crop-size")
    status, _, err = cli("evaluate", trained_run, "--tta", "rotate")
    expect_error(status, err, "received tta='rotate'")


def test_evaluate_on_some_classes_of_a_run(cli, trained_run, subset, expect_error):
    status, out, _ = cli("evaluate", trained_run, "--classes", "0,1", "--json")
    doc = json.loads(out)
    assert status == 0 and len(doc["classes"]) == 10
    assert doc["examples"] == int((subset.test.labels <= 1).sum())
    assert sum(row["support"] for row in doc["per_class"][2:]) == 0
    status, _, err = cli("evaluate", trained_run, "--classes", "0,ten")
    expect_error(status, err, "ten not in the data")


def test_mirror_tta_on_digits_warns_and_recommends_shift(cli, trained_run, cache_dir):
    """Mirrored digits are other digits: flip and 10crop warn on a digit run, shift does not,
    and on the real digits shift is the better TTA of the two."""
    status, out, err = cli("evaluate", trained_run, "--tta", "flip", "--json")
    flip = json.loads(out)
    assert status == 0 and err.count("cnnlab: warning: tta=flip averages mirrored views") == 1
    assert "use --tta shift" in err
    status, out, err = cli("evaluate", trained_run, "--tta", "shift", "--json")
    shift = json.loads(out)
    assert status == 0 and "warning" not in err
    assert shift["accuracy"] > flip["accuracy"]
    with pytest.warns(TTAWarning, match="tta=10crop averages mirrored views"):
        evaluate(trained_run, tta="10crop", crop_size=28, cache_dir=cache_dir)


def test_label_warning_only_for_mirrors_on_digits():
    digits = tuple("0123456789")
    assert label_warning("flip", digits, 1) and label_warning("10crop", ("3", "8"), 1)
    assert label_warning("shift", digits, 1) is None and label_warning("5crop", digits, 1) is None
    assert label_warning("flip", ("cat", "dog"), 3) is None  # mirrored pets are still pets
    assert label_warning("flip", ("T-shirt", "Sneaker"), 1) is None  # nor clothes
