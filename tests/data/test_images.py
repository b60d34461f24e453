import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.images import load_image
from cnnlab.errors import DataError

# every mode each format can store
CASES = [(m, ".png") for m in ("L", "RGB", "RGBA", "P", "1", "I;16", "LA")]
CASES += [(m, ".bmp") for m in ("L", "RGB", "P", "1")] + [(m, ".jpg") for m in ("L", "RGB", "CMYK")]


@pytest.mark.parametrize(("mode", "suffix"), CASES)
def test_any_mode_and_format_becomes_grey_28x28(tmp_path, mode, suffix):
    array = np.zeros((90, 60), np.uint8)
    array[20:70, 25:35] = 255  # a bright bar
    if mode == "I;16":  # a real 16-bit image uses the whole range 0..65535
        image = Image.fromarray(array.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(array).convert(mode)
    path = tmp_path / f"x{suffix}"
    image.save(path)
    x = load_image(path, channels=1, size=(28, 28))
    assert x.shape == (1, 28, 28) and x.dtype == torch.uint8
    assert x[0, 14, 14] > 200 and x[0, 2, 2] < 30  # bar bright, corner dark


def test_rgb_and_inversion(tmp_path):
    Image.new("RGB", (10, 20), (255, 0, 0)).save(tmp_path / "red.png")
    x = load_image(tmp_path / "red.png", channels=3, size=(8, 8))
    assert x.shape == (3, 8, 8) and x[0].min() == 255 and x[1].max() == 0
    inverted = load_image(tmp_path / "red.png", channels=3, size=(8, 8), invert=True)
    assert torch.equal(inverted, 255 - x)


def test_transparency_composites_onto_white(tmp_path):
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png", 1, (5, 5)).min() == 255


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_undecodable_file(tmp_path, content):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(DataError, match=r"bad.png that cannot be decoded"):
        load_image(tmp_path / "bad.png", 1, (28, 28))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "nope.png", 1, (28, 28))
