"""``cnnlab report``: one self-contained HTML page (no network needed)."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import datasets
from cnnlab.report import write_report


def test_report_is_self_contained(cli, trained_run, subset, tmp_path):
    page = tmp_path / "page.html"
    status, out, _ = cli("report", trained_run, "--output", page, "--mistakes", 12)
    assert status == 0 and str(page) in out
    html = page.read_text()
    for section in (
        "Configuration",
        "Network",
        "Training curves",
        "Confusion matrix",
        "Per-class metrics",
        "worst mistakes",
    ):
        assert section in html
    assert "features.0" in html and "Test accuracy" in html
    sources = re.findall(r"src='([^']*)'", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)  # nothing fetched
    pictures = [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in sources]
    assert all(p.format == "PNG" for p in pictures)
    assert len(pictures) == 2 + 12  # curves, confusion matrix, 12 mistakes
    assert pictures[-1].size == (84, 84)  # a 28x28 digit, enlarged 3 times
    # ... and it is one of the test digits, pixel for pixel
    test_digits = subset.test.images[:, 0].numpy()
    shown = np.asarray(pictures[-1].convert("L"))[1::3, 1::3]
    assert (np.abs(test_digits.astype(int) - shown).max(axis=(1, 2)) <= 1).any()


def test_report_of_a_missing_run_is_one_line(cli, tmp_path, expect_error):
    page = tmp_path / "page.html"
    status, _, err = cli("report", tmp_path / "nope", "--output", page)
    expect_error(status, err, "nope")
    assert not page.exists()


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every time the ``mnist-subset`` files are read into splits, by anyone: the real loader of
    the catalogue entry, wrapped to record its folder (the data itself is untouched)."""
    calls: list[str] = []
    info = datasets.DATASETS["mnist-subset"]

    def counted(folder, classes):
        calls.append(str(folder))
        return info.load(folder, classes)

    monkeypatch.setitem(datasets.DATASETS, "mnist-subset", dataclasses.replace(info, load=counted))
    return calls


def test_the_report_loads_the_test_split_once(cli, trained_run, tmp_path, loads, cache_dir):
    page = tmp_path / "page.html"
    status, _, err = cli("report", trained_run, "--output", page, "--mistakes", 5)
    assert status == 0, err
    assert len(loads) == 1  # the evaluation and the gallery share it
    html = page.read_text()
    assert "Test accuracy" in html and html.count("<figure>") == 5
    loads.clear()
    write_report(trained_run, tmp_path / "api.html", cache_dir=cache_dir, mistakes=5)
    assert len(loads) == 1
    loads.clear()
    status, _, err = cli("confusion", trained_run, "--output", tmp_path / "c.png")
    assert status == 0 and len(loads) == 1, err


def test_report_leads_with_results_and_ends_with_a_readable_configuration(
    cli, trained_run, subset, tmp_path
):
    page = tmp_path / "page.html"
    status, _, err = cli("report", trained_run, "--output", page, "--mistakes", 4)
    assert status == 0, err
    html = page.read_text()
    order = ["Test accuracy", "Training curves", "Confusion matrix", "Per-class metrics",
             "worst mistakes", "<h2>Network", "<h2>Configuration"]  # fmt: skip
    positions = [html.index(marker) for marker in order]
    assert positions == sorted(positions), dict(zip(order, positions))
    config = html.split("<h2>Configuration</h2>", 1)[1]
    chosen, defaults = config.split("<details>", 1)
    # the trained_run fixture set the data, epochs and seed... only what differs is up front
    assert "mnist-subset" in chosen and "<td>seed</td>" not in chosen  # seed=0 is the default
    assert "<td>lr</td>" in defaults and "<td>0.01</td>" in defaults
    assert "null" not in config and '""' not in config and "<td>none</td>" in defaults


def test_report_of_a_class_selection_shows_its_mistakes_pictures(trained_run, subset, tmp_path,
                                                                  cache_dir):  # fmt: skip
    from cnnlab.evaluation.inputs import DataSelection

    page = tmp_path / "page.html"
    write_report(trained_run, page, selection=DataSelection(classes="3,5"), mistakes=3,
                 cache_dir=cache_dir)  # fmt: skip
    html = page.read_text()
    indices = [int(i) for i in re.findall(r"<figcaption>#(\d+)<br>", html)]
    assert indices
    sources = re.findall(r"<figure><img alt='#\d+' src='([^']*)'", html)
    for index, source in zip(indices, sources):  # the picture is the image at that index
        picture = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        shown = np.asarray(picture.convert("L"))[1::3, 1::3].astype(int)
        assert np.abs(subset.test.images[index, 0].numpy().astype(int) - shown).max() <= 1
        assert int(subset.test.labels[index]) in (3, 5)
