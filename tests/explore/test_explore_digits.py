"""MNIST's preprocessing of a drawn digit: box, 20x20, centre of mass in 28x28."""

from __future__ import annotations

import numpy as np

from cnnlab.data.digits import centre_digit


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    mass = image.astype(float) / image.sum()
    return (
        float((mass.sum(axis=1) * np.arange(image.shape[0])).sum()),
        float((mass.sum(axis=0) * np.arange(image.shape[1])).sum()),
    )


def test_a_wide_digit_fills_20_pixels_across_centred():
    ink = np.zeros((300, 300), dtype=np.uint8)
    ink[100:160, 20:280] = 255  # a wide bar: 260 x 60
    out = centre_digit(ink)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    cols = np.flatnonzero(out.max(axis=0) > 0)
    rows = np.flatnonzero(out.max(axis=1) > 0)
    assert cols[-1] - cols[0] + 1 == 20  # the longer side fills the box
    assert 4 <= rows[-1] - rows[0] + 1 <= 6  # the aspect ratio is kept (60 / 260 * 20)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # MNIST: at (14, 14) in 0-based rows


def test_where_a_digit_is_drawn_does_not_matter():
    ink = np.zeros((280, 280), dtype=np.uint8)
    ink[50:200, 60:80] = 255
    ink[50:70, 60:150] = 255  # a "7"-like stroke
    moved = np.roll(ink, (60, 110), axis=(0, 1))
    assert np.array_equal(centre_digit(ink), centre_digit(moved))


def test_an_empty_drawing_gives_an_empty_image():
    assert not centre_digit(np.zeros((50, 40), dtype=np.uint8)).any()


def test_other_field_sizes_scale_the_box():
    ink = np.zeros((100, 100), dtype=np.uint8)
    ink[10:90, 45:55] = 200
    out = centre_digit(ink, (56, 56))  # twice MNIST's size: a 40-pixel box
    rows = np.flatnonzero(out.max(axis=1) > 0)
    assert out.shape == (56, 56) and rows[-1] - rows[0] + 1 == 40
