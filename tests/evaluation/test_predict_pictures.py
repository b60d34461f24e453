"""``cnnlab predict`` sees what a user draws: real MNIST test digits, pasted dark on white into
wide and tall canvases of several sizes (scaled up, off centre), are read as well as the
original 28x28 images (within 1 percentage point), through the real CLI on folders of PNG
files; light backgrounds are inverted automatically and said so; pictures keep their aspect
ratio."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.prepare_picture import PictureOptions, prepare_picture

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("predict-pictures")

DIGITS = 500  # the first test digits of the subset (1 point = 5 digits)
#: (name, canvas height, canvas width, scale of the digit, top-left corner of the digit)
CANVASES = [
    ("wide-small", 40, 120, 1, (6, 80)),
    ("wide-large", 100, 300, 3, (8, 20)),
    ("tall-small", 90, 40, 1, (50, 6)),
    ("tall-large", 400, 150, 4, (250, 30)),
]


def _write_originals(folder, images) -> None:
    folder.mkdir()
    for i, digit in enumerate(images):
        Image.fromarray(digit).save(folder / f"{i:04d}.png")


def _write_canvases(folder, images, height, width, scale, corner) -> None:
    """Each digit scaled up (bilinear) and pasted dark on white paper at ``corner``."""
    folder.mkdir()
    top, left = corner
    side = 28 * scale
    for i, digit in enumerate(images):
        big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR))
        paper = np.full((height, width), 255, dtype=np.uint8)
        paper[top : top + side, left : left + side] = 255 - big
        Image.fromarray(paper).save(folder / f"{i:04d}.png")


def _accuracy(cli, run, folder, truth, *flags) -> tuple[float, list[dict], str]:
    status, out, err = cli("predict", run, folder, "--top-k", "1", "--json", *flags, cache=False)
    assert status == 0, err
    predictions = json.loads(out)
    assert [p["path"] for p in predictions] == sorted(str(p) for p in folder.glob("*.png"))
    hits = sum(p["top_k"][0]["class"] == t for p, t in zip(predictions, truth))
    return hits / len(truth), predictions, err


@pytest.fixture(scope="module")
def digits(subset):
    images = subset.test.images[:DIGITS, 0].numpy()  # (N, 28, 28) uint8, light on dark
    truth = [str(int(v)) for v in subset.test.labels[:DIGITS]]
    return images, truth


def test_digits_on_paper_canvases_read_as_well_as_the_originals(cli, trained_run, digits, tmp_path):
    images, truth = digits
    _write_originals(tmp_path / "originals", images)
    original, predictions, _ = _accuracy(cli, trained_run, tmp_path / "originals", truth)
    assert original > 0.9
    assert not any(p["inverted"] for p in predictions)  # a dark background stays as it is
    for name, height, width, scale, corner in CANVASES:
        folder = tmp_path / name
        _write_canvases(folder, images, height, width, scale, corner)
        accuracy, predictions, err = _accuracy(cli, trained_run, folder, truth)
        assert round(abs(accuracy - original), 9) <= 0.01, (name, accuracy, original)
        assert all(p["inverted"] for p in predictions), name
        assert err.count("note: inverted: light background") == 1  # said once, not per image
        assert "centred as MNIST digits are" in err


def test_auto_inversion_can_be_turned_off_and_forced(cli, trained_run, digits, tmp_path):
    images, truth = digits
    name, height, width, scale, corner = CANVASES[1]
    folder = tmp_path / name
    _write_canvases(folder, images[:50], height, width, scale, corner)
    auto, _, _ = _accuracy(cli, trained_run, folder, truth[:50])
    kept, predictions, err = _accuracy(cli, trained_run, folder, truth[:50], "--no-invert")
    assert not any(p["inverted"] for p in predictions) and "inverted" not in err
    assert kept < auto - 0.5  # dark ink on white, uninverted, is not what the run learned
    forced, predictions, _ = _accuracy(cli, trained_run, folder, truth[:50], "--invert")
    assert forced == auto and all(p["inverted"] for p in predictions)
    status, _, err = cli("predict", trained_run, folder, "--invert", "--no-invert", cache=False)
    assert status == 2 and "--invert and --no-invert" in err and err.count("\n") == 1


def test_a_folder_prints_one_line_per_image_sorted(cli, trained_run, digits, tmp_path):
    images, _ = digits
    _write_originals(tmp_path / "few", images[:3])
    (tmp_path / "few" / "notes.txt").write_text("not an image")  # ignored: not an image
    status, out, _ = cli("predict", trained_run, tmp_path / "few", cache=False)
    lines = out.strip().splitlines()
    assert status == 0 and len(lines) == 3
    assert [line.split(":")[0] for line in lines] == [
        str(tmp_path / "few" / f"{i:04d}.png") for i in range(3)
    ]
    (tmp_path / "empty").mkdir()
    status, _, err = cli("predict", trained_run, tmp_path / "empty", cache=False)
    assert status == 2 and "expected a folder with PNG, JPEG or BMP files" in err


def test_mnist_centring_leaves_real_mnist_digits_as_they_are(subset, tmp_path):
    """MNIST's own digits come out of the centring as they went in (centre of mass at 14, box
    20): on average less than 1 grey level of 255 moves."""
    images = subset.test.images[:200, 0].numpy()
    options = PictureOptions(1, (28, 28), dark_background=True, digits=True)
    out = []
    for i, digit in enumerate(images):
        Image.fromarray(digit).save(tmp_path / f"{i}.png")
        out.append(prepare_picture(tmp_path / f"{i}.png", options).image[0].numpy())
    difference = np.abs(np.stack(out).astype(int) - images.astype(int))
    assert difference.mean() < 1.0


def test_pictures_keep_their_aspect_ratio(tmp_path):
    """A round 0 drawn in a 300x100 picture stays round (padded, then resized), in grey and
    in colour, with the background's own colour as padding."""
    ys, xs = np.indices((100, 300))
    ring = np.abs(np.hypot(ys - 50, xs - 150) - 40) < 6  # a circle of radius 40
    grey = np.where(ring, 255, 0).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "ring.png")
    prepared = prepare_picture(tmp_path / "ring.png", PictureOptions(1, (28, 28)))
    ink = prepared.image[0].numpy() > 64
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert abs(height - width) <= 1 and 9 <= width <= 12  # 80 of 300 pixels -> ~7.5 of 28
    colour = np.zeros((100, 300, 3), dtype=np.uint8)
    colour[:] = (20, 120, 200)
    colour[ring] = (250, 250, 0)
    Image.fromarray(colour).save(tmp_path / "ring-rgb.png")
    prepared = prepare_picture(tmp_path / "ring-rgb.png", PictureOptions(3, (32, 32)))
    assert prepared.image.shape == (3, 32, 32) and not prepared.notes
    assert prepared.image[:, 0, 0].tolist() == [20, 120, 200]  # padding in the background colour


def _ring_jpeg(path, height: int, width: int, orientation: int = 1) -> None:
    """A light ring (radius a quarter of the height) on a dark ground, as a JPEG stored so
    that a viewer applying EXIF ``orientation`` (1 upright, 6 rotated) shows it ``height`` x
    ``width``."""
    ys, xs = np.indices((height, width))
    ring = np.abs(np.hypot(ys - height / 2, xs - width / 2) - height / 4) < height / 15
    image = Image.fromarray(np.where(ring, 255, 0).astype(np.uint8))
    exif = Image.Exif()
    if orientation == 6:  # shown after a 270-degree turn: stored turned by 90
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    image.save(path, quality=95, exif=exif)


def test_a_picture_file_is_opened_once(tmp_path, monkeypatch):
    """Decoding a picture opens its file once (the guarded decoder reads the header, the
    aspect ratio and the pixels from one open), for a PNG and a large JPEG."""
    _ring_jpeg(tmp_path / "ring.jpg", 1000, 3000)
    Image.open(tmp_path / "ring.jpg").save(tmp_path / "ring.png")
    opened: list[str] = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    for name in ("ring.png", "ring.jpg"):
        prepare_picture(tmp_path / name, PictureOptions(1, (28, 28)))
    assert opened == [str(tmp_path / "ring.png"), str(tmp_path / "ring.jpg")]


def test_a_large_jpeg_is_decoded_reduced_within_the_budget_and_upright(tmp_path):
    """A 3000x1000 JPEG (3 megapixels) is read at a reduced scale, so a budget of 0.5
    megapixels admits it; its ring stays round; stored rotated with an EXIF orientation, it
    is prepared as shown, like the upright file."""
    _ring_jpeg(tmp_path / "upright.jpg", 1000, 3000)
    _ring_jpeg(tmp_path / "rotated.jpg", 1000, 3000, orientation=6)
    assert Image.open(tmp_path / "rotated.jpg").size == (1000, 3000)  # stored tall
    options = PictureOptions(1, (28, 28), max_megapixels=0.5)
    upright = prepare_picture(tmp_path / "upright.jpg", options).image[0].numpy()
    rotated = prepare_picture(tmp_path / "rotated.jpg", options).image[0].numpy()
    ink = upright > 64
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert abs(height - width) <= 1 and 5 <= width <= 7  # 633 of 3000 pixels -> ~5.9 of 28
    assert np.abs(upright.astype(int) - rotated.astype(int)).max() <= 8
