"""What the page sends as an image, read from JSON and checked: a drawing, pixels (an upload
already decoded), or a test example; and the shift / rotate / scale probe applied to it.

Every value is checked here and a bad one refused with one line ("expected ..., received ...").
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.augment import affine_grid
from cnnlab.data.images import load_image
from cnnlab.data.prepare_picture import PictureOptions, prepare_picture
from cnnlab.errors import ConfigError, DataError
from cnnlab.explore.encoding import decode_b64

#: Largest side of a drawing, in canvas pixels.
MAX_DRAWING_SIDE = 2048
#: Largest side of pixels sent back after an upload.
MAX_PIXELS_SIDE = 4096
SHIFT_LIMIT = 1.0  # shifts up to this share of the image side
ROTATE_LIMIT = 180.0  # degrees
SCALE_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class Drawing:
    """Strokes drawn on the page.

    Shape:
        ``ink``: ``(H, W)`` uint8, 0 = background, 255 = full ink.
    """

    ink: np.ndarray


@dataclass(frozen=True)
class Pixels:
    """An image already at the stored size of the run's data (e.g. an upload, decoded).

    Shape:
        ``image``: ``(C, H, W)`` uint8.
    """

    image: torch.Tensor


@dataclass(frozen=True)
class Example:
    """Example ``index`` of the run's test split."""

    index: int


InputSpec = Drawing | Pixels | Example


@dataclass(frozen=True)
class Transform:
    """A probe of invariance, applied to the stored-size image before padding.

    Attributes:
        shift_x: pixels to the right (negative: left).
        shift_y: pixels down (negative: up).
        rotate: degrees counter-clockwise, about the image centre.
        scale: size factor about the centre (2 = twice as large).
    """

    shift_x: float = 0.0
    shift_y: float = 0.0
    rotate: float = 0.0
    scale: float = 1.0

    @property
    def identity(self) -> bool:
        return (self.shift_x, self.shift_y, self.rotate, self.scale) == (0.0, 0.0, 0.0, 1.0)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """Resample the image bilinearly; what comes in from outside is 0 (background).

        Shape:
            ``(C, H, W) float -> (C, H, W) float``.
        """
        if self.identity:
            return image
        _, h, w = image.shape
        c, s = math.cos(math.radians(self.rotate)), math.sin(math.radians(self.rotate))
        k, tx, ty = 1.0 / self.scale, self.shift_x, self.shift_y
        # output pixel p (about the centre, y down) samples input (R^-1 (p - t)) / scale, with R
        # the visually counter-clockwise rotation; written in align_corners=False coordinates
        theta = torch.tensor(
            [
                [c * k, -s * k * h / w, (-c * tx + s * ty) * 2 * k / w],
                [s * k * w / h, c * k, (-s * tx - c * ty) * 2 * k / h],
            ],
            dtype=torch.float32,
        )
        grid = affine_grid(theta[None], h, w)  # 1 x H x W x 2
        moved = F.grid_sample(image[None].float(), grid, "bilinear", "zeros", align_corners=False)
        return moved[0]


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refused(f"a number for {key}", **{key: value})
    if not low <= value <= high:
        raise refused(f"{key} between {low:g} and {high:g}", **{key: value})
    return float(value)


def whole(body: dict[str, Any], key: str, low: int, high: int | None = None) -> int:
    """A whole number ``body[key]`` in ``[low, high]``.

    Raises:
        ConfigError: missing, not a whole number, or out of range.
    """
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise refused(f"a whole number for {key}", **{key: value})
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise refused(f"{key} {span}", **{key: value})
    return value


def shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in an error line, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def refused(what: str, **received: Any) -> ConfigError:
    """The error refusing a request value: ``expected WHAT, received name=value`` (values cut
    short, so one line stays short whatever was sent)."""
    return ConfigError(
        f"expected {what}, received " + ", ".join(f"{k}={shown(v)}" for k, v in received.items())
    )


def mapping(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object.

    Raises:
        ConfigError: anything else.
    """
    if not isinstance(value, dict):
        raise ConfigError(f"expected {what} as a JSON object, received {what}={shown(value)}")
    return value


def parse_transform(value: Any) -> Transform:
    """``{"shift_x", "shift_y", "rotate", "scale"}`` (each optional) -> :class:`Transform`.

    Shifts are limited to the image side (checked against the image later), rotations to
    +-180 degrees, scales to 0.25..4.

    Raises:
        ConfigError: unknown keys, or values of the wrong kind or out of range.
    """
    if value is None:
        return Transform()
    body = mapping(value, "transform")
    unknown = sorted(set(body) - {"shift_x", "shift_y", "rotate", "scale"})
    if unknown:
        raise refused("transform keys shift_x, shift_y, rotate, scale", key=unknown[0])
    side = float(MAX_PIXELS_SIDE)
    return Transform(
        shift_x=_number(body, "shift_x", 0.0, -side, side),
        shift_y=_number(body, "shift_y", 0.0, -side, side),
        rotate=_number(body, "rotate", 0.0, -ROTATE_LIMIT, ROTATE_LIMIT),
        scale=_number(body, "scale", 1.0, *SCALE_RANGE),
    )


def parse_input(value: Any) -> InputSpec:
    """One of::

        {"kind": "drawing", "width": W, "height": H, "data": base64 of H*W uint8 ink}
        {"kind": "pixels", "shape": [C, H, W], "data": base64 of C*H*W uint8}
        {"kind": "example", "index": I}

    Raises:
        ConfigError: another kind, missing or malformed fields.
    """
    body = mapping(value, "input")
    kind = body.get("kind")
    if kind == "drawing":
        width = whole(body, "width", 1, MAX_DRAWING_SIDE)
        height = whole(body, "height", 1, MAX_DRAWING_SIDE)
        data = decode_b64(body.get("data"), width * height, "input.data")
        return Drawing(np.frombuffer(data, dtype=np.uint8).reshape(height, width))
    if kind == "pixels":
        shape = body.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
            or shape[0] not in (1, 3)
            or not all(1 <= v <= MAX_PIXELS_SIDE for v in shape[1:])
        ):
            raise refused("input.shape as [C, H, W] with C 1 or 3", shape=shape)
        data = decode_b64(body.get("data"), math.prod(shape), "input.data")
        array = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        return Pixels(torch.from_numpy(array.copy()))
    if kind == "example":
        return Example(whole(body, "index", 0))
    raise refused("input.kind drawing, pixels or example", kind=kind)


def prepare_upload(data: bytes, options: PictureOptions) -> torch.Tensor:
    """Prepare an uploaded image file exactly as ``cnnlab predict`` prepares a picture
    (:func:`cnnlab.data.prepare_picture.prepare_picture`: aspect kept, MNIST centring for
    digit runs).

    Shape:
        ``bytes -> (channels, H, W)`` uint8, ``(H, W) = options.size``.

    Raises:
        DataError: not a PNG, JPEG or BMP image, or one that cannot be decoded.
    """
    return _from_upload(data, lambda name: prepare_picture(name, options).image)


def decode_upload(
    data: bytes, channels: int, size: tuple[int, int], invert: bool = False
) -> torch.Tensor:
    """Decode an uploaded image file with the guarded loader of ``cnnlab predict``
    (:func:`cnnlab.data.images.load_image`): any mode, transparency on white, resized.

    Shape:
        ``bytes -> (channels, H, W)`` uint8, ``(H, W) = size``.

    Raises:
        DataError: not a PNG, JPEG or BMP image, or one that cannot be decoded.
    """
    return _from_upload(data, lambda name: load_image(name, channels, size, invert))


def _from_upload(data: bytes, decode: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """``decode`` applied to ``data`` saved as a temporary file (the guarded decoder reads
    files), whose errors name the upload, not the temporary file."""
    handle, name = tempfile.mkstemp(prefix="cnnlab-upload-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return decode(name)
    except DataError as exc:
        raise DataError(str(exc).replace(name, "the uploaded file")) from None
    finally:
        os.unlink(name)
