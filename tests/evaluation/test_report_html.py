"""``cnnlab report``: one self-contained HTML page (no network needed)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image


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
