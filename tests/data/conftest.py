"""Image folders made from real MNIST digits (the committed subset), in several file formats
and image modes, for the folder, show and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DIGITS = ("0", "1", "7")  # three classes, easy to tell apart
FORMATS = (("png", "L"), ("jpg", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("png", "P"))


def write_digits(folder: Path, subset, split: str = "train", per_class: int = 30) -> list[Path]:
    """Write ``per_class`` digits of each class in ``DIGITS`` under ``folder/<digit>/``,
    cycling through PNG (grey, RGBA, palette), JPEG and BMP; returns the paths."""
    data = subset.train if split == "train" else subset.test
    paths = []
    for digit in DIGITS:
        (folder / digit).mkdir(parents=True, exist_ok=True)
        indices = (data.labels == int(digit)).nonzero().flatten()[:per_class].tolist()
        for k, i in enumerate(indices):
            suffix, mode = FORMATS[k % len(FORMATS)]
            pixels = data.images[i, 0].numpy()
            image = Image.fromarray(pixels, "L")
            if mode == "RGBA":  # opaque alpha: compositing onto white must not change it
                image = image.convert("RGBA")
            elif mode != "L":
                image = image.convert(mode)
            path = folder / digit / f"{split}-{i:05d}.{suffix}"
            image.save(path, quality=95) if suffix == "jpg" else image.save(path)
            paths.append(path)
    return paths


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory, subset) -> Path:
    """A flat class-per-folder dataset: 0/ 1/ 7/, 30 digits each (shared: do not modify)."""
    root = tmp_path_factory.mktemp("digits") / "flat"
    write_digits(root, subset)
    return root


@pytest.fixture
def split_folder(tmp_path, subset) -> Path:
    """train/ val/ test/ layout made of real digits (private to the test)."""
    root = tmp_path / "splits"
    write_digits(root / "train", subset, per_class=24)
    write_digits(root / "val", subset, split="test", per_class=6)
    for digit in DIGITS:  # test: the next digits of the test set
        (root / "test" / digit).mkdir(parents=True)
    images = subset.test.images
    for digit in DIGITS:
        indices = (subset.test.labels == int(digit)).nonzero().flatten()[6:12].tolist()
        for i in indices:
            Image.fromarray(images[i, 0].numpy(), "L").save(root / "test" / digit / f"{i}.png")
    return root


def noise_png(path: Path, size=(28, 28), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8), "L").save(path)
    return path
