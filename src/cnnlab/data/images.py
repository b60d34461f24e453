"""Decoding image files into uint8 tensors, the same way for datasets and for prediction.

:func:`open_image` is the one guarded decoder of cnnlab: every image file a command reads
(image folders in memory or streamed, the explorer's uploads, picture inputs through
:func:`load_image`; ``predict``'s pictures through :func:`load_image_capped`) goes through
it, and so through the same checks:

- the path must be a readable regular file (a directory, FIFO, socket, dangling link or link
  loop is named as what it is; a FIFO is never opened, so nothing blocks on it);
- only the formats of :data:`IMAGE_FORMATS` are decoded, recognised by their content, never by
  their name: an EPS or PostScript file renamed ``.png`` is refused before Pillow could hand it
  to Ghostscript;
- a pixel budget: JPEGs are decoded at a reduced scale (``draft``) when the target is smaller,
  and an image that would still decode to more than ``max_megapixels`` million pixels is
  refused before its pixels are decoded (decompression bombs: a 69-byte PNG can declare
  50000x50000 pixels);
- every decoding failure, including Pillow's ``DecompressionBombError`` (not an ``OSError``),
  becomes one :class:`cnnlab.errors.DataError` line; a file name holding a newline or other
  control character is quoted, so the message stays one line.

16-bit images are scaled to 8 bits (``value / 257``, rounded), never clipped.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from cnnlab.errors import DataError, describe_path, shown_path

#: The formats decoded, as Pillow names them (recognised by content, never by file name).
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: The default pixel budget of one decoded image, in millions of pixels (``--max-megapixels``).
DEFAULT_MAX_MEGAPIXELS = 40.0
RESAMPLE = Image.Resampling.BILINEAR
_PILLOW_LIMIT = threading.Lock()  # held while Pillow's process-wide pixel limit is off
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(
    path: str | Path,
    channels: int,
    size: tuple[int, int],
    invert: bool = False,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> torch.Tensor:
    """Decode an image file and convert it to what a model was trained on.

    Any mode is accepted: 16-bit values are scaled to 8 bits, transparency is composited onto
    white (what a viewer shows), then the image becomes grey-scale (ITU-R 601-2 luma) or RGB,
    is resized to ``size`` with bilinear filtering (antialiased when shrinking), and optionally
    inverted (``255 - x``, to turn dark-on-light digits into MNIST's light-on-dark). An
    animated image gives its first frame.

    Args:
        channels: 1 (grey-scale) or 3 (RGB).
        size: ``(H, W)`` of the result.
        max_megapixels: the most pixels (in millions) decoded; a JPEG counts at the reduced
            scale it is decoded at.

    Shape:
        ``file -> (channels, H, W)`` uint8.

    Raises:
        DataError: not a regular readable file, not a PNG/JPEG/BMP image, more pixels than the
            budget, or an image that cannot be decoded.
    """
    path = Path(path)
    with open_image(path, max_megapixels, (size[1], size[0])) as image:
        array = _converted(image, channels, size)  # decoding errors: see open_image
    tensor = _channels_first(array, channels)
    return 255 - tensor if invert else tensor


def load_image_capped(
    path: str | Path,
    channels: int,
    longest_side: int,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> torch.Tensor:
    """Decode an image file at its own shape as it is shown (EXIF orientation applied), its
    longest side capped at ``longest_side`` (aspect ratio kept, never enlarged), converted as
    :func:`load_image` converts. The file is opened once; a JPEG is decoded at the smallest
    reduced scale still at least the capped size, and the budget counts that scale.

    Shape:
        ``file -> (channels, h, w)`` uint8, ``max(h, w) <= longest_side``.

    Raises:
        DataError: as :func:`load_image`.
    """
    with open_image(Path(path), max_megapixels, longest_side=longest_side) as image:
        height, width = _shown_size(image)
        scale = min(1.0, longest_side / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        array = _converted(image, channels, size)
    return _channels_first(array, channels)


def _channels_first(array: np.ndarray, channels: int) -> torch.Tensor:
    """Shape: ``(H, W)`` or ``(H, W, 3)`` uint8 -> ``(channels, H, W)``."""
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1).contiguous()


def image_size(
    path: str | Path,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    target: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """``(H, W)`` of an image file as it is shown (EXIF orientation applied), from its header;
    with ``target`` (``(W, H)``, see :func:`open_image`), the size a JPEG decodes at for it.

    Raises:
        DataError: as :func:`load_image`.
    """
    with open_image(Path(path), max_megapixels, target) as image:
        return _shown_size(image)


def _shown_size(image: Image.Image) -> tuple[int, int]:
    """``(H, W)`` of an opened image as it is shown (EXIF orientation applied)."""
    width, height = image.size
    orientation = image.getexif().get(0x0112, 1)  # 5 to 8: rotated by 90 or 270 degrees
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


@contextlib.contextmanager
def open_image(
    path: Path,
    max_megapixels: float,
    target: tuple[int, int] | None = None,
    *,
    longest_side: int | None = None,
) -> Iterator[Image.Image]:
    """The image at ``path`` opened (header read, pixels not decoded yet) within the budget;
    a decoding error inside the ``with`` block becomes the same one-line :class:`DataError`.

    Args:
        target: ``(W, H)`` the image will be resized to: a JPEG is then decoded at the
            smallest scale (1/2, 1/4, 1/8) still at least that large.
        longest_side: instead of ``target``, the image will be shrunk (if larger) so that its
            longest side is this: the target is the image's own size so capped.

    Raises:
        DataError: see :func:`load_image`.
    """
    check_image_path(path)
    limit = int(max_megapixels * 1_000_000)
    try:
        with _opened(path, target, longest_side) as image:
            width, height = image.size
            if width * height > limit:
                raise DataError(
                    f"expected an image of at most {max_megapixels:g} megapixels "
                    f"(--max-megapixels), received {shown_path(path)} of {width}x{height} "
                    f"pixels ({width * height / 1e6:.1f} megapixels)"
                )
            yield image
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(
            f"expected a PNG, JPEG or BMP image, received {shown_path(path)} that cannot be "
            f"decoded (its content is another format, or is damaged)"
        ) from None
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        MemoryError,
        Image.DecompressionBombError,
    ) as exc:
        raise _undecodable(path, exc) from None


def check_image_path(path: Path) -> None:
    """Refuse a path that is not a readable regular file, saying what it is instead.

    Raises:
        DataError: a missing path, directory, FIFO, socket, device, dangling link, link loop
            or unreadable file.
    """
    what = describe_path(path)
    if what is not None:
        raise DataError(f"expected an image file, received {shown_path(path)} ({what})")


def _opened(
    path: Path, target: tuple[int, int] | None, longest_side: int | None = None
) -> Image.Image:
    """``Image.open`` limited to :data:`IMAGE_FORMATS` (and a JPEG set to decode at the
    smallest scale still at least ``target``, or its own size with the longest side capped at
    ``longest_side``), with Pillow's own decompression-bomb check off:
    it is a process-wide limit, applied when a file is opened, before a JPEG can be reduced;
    :func:`open_image`'s budget replaces it. A lock keeps threads from seeing it off."""
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(path, formats=IMAGE_FORMATS)
            try:
                if longest_side is not None:
                    width, height = image.size  # as stored: capping is rotation-free
                    scale = min(1.0, longest_side / max(width, height))
                    target = (max(1, round(width * scale)), max(1, round(height * scale)))
                if target is not None and image.format == "JPEG":
                    image.draft(image.mode, target)
            except BaseException:
                image.close()
                raise
            return image
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _converted(image: Image.Image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """The opened ``image`` decoded and converted (see :func:`load_image`).

    Shape:
        ``-> (H, W)`` uint8 for ``channels == 1``, ``(H, W, 3)`` uint8 otherwise.
    """
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT:
        image = _eight_bit(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image.alpha_composite(rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), RESAMPLE, reducing_gap=None)
    return np.asarray(image, dtype=np.uint8)


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) grey image scaled to 8 bits: ``round(value / 257)``, so
    0..65535 maps onto 0..255 (Pillow's own conversion clips at 255 instead). A transparent
    grey value (PNG ``tRNS``) becomes an alpha channel.

    Shape:
        ``(H, W)`` of 16-bit values -> ``(H, W)`` ``L`` or ``LA`` image.
    """
    values = np.asarray(image).astype(np.int64)  # H x W
    grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)
    transparent = image.info.get("transparency")
    if not isinstance(transparent, int):
        return Image.fromarray(grey, "L")
    alpha = np.where(values == transparent, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey, alpha], axis=-1), "LA")  # H x W x 2


def _undecodable(path: Path, exc: BaseException) -> DataError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return DataError(
        f"expected a PNG, JPEG or BMP image, received {shown_path(path)} that cannot be decoded "
        f"({reason})"
    )
