"""The ``--augment`` mini-language: parsing and validating augmentation parameters.

Syntax: comma-separated ``name=value`` items, a bare ``name`` meaning ``name=true``; a range is
``low:high``. Names and meanings follow Keras's ``ImageDataGenerator`` where it has them::

    rotation_range=40,width_shift_range=0.2,zoom_range=0.8:1.2,horizontal_flip,fill_mode=reflect

``zoom_range=z`` means ``1-z:1+z`` as in Keras. Shifts below 1 are fractions of the width or
height, 1 and above are pixels (Keras's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from cnnlab.errors import ConfigError

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
#: Test-time augmentation modes (:mod:`cnnlab.evaluation.tta` computes their views).
TTA_MODES = ("none", "flip", "shift", "5crop", "10crop")
#: The TTA modes that cut crops (they need a crop size smaller than the padded image).
CROP_MODES = ("5crop", "10crop")


@dataclass(frozen=True)
class AugmentSpec:
    """Augmentation parameters (all off by default).

    Attributes:
        rotation_range: degrees; a rotation uniform in ``[-r, r]``.
        width_shift_range: horizontal shift, fraction of the width (< 1) or pixels (>= 1).
        height_shift_range: vertical shift, fraction of the height (< 1) or pixels (>= 1).
        shear_range: shear angle in degrees, uniform in ``[-s, s]``.
        zoom_range: ``(low, high)``; x and y zoom drawn independently. As in Keras a factor
            above 1 samples a larger area, so the content shrinks.
        horizontal_flip: flip half of the images left-right.
        vertical_flip: flip half of the images upside down.
        fill_mode: how points outside the image are filled: ``constant`` (``cval``),
            ``nearest``, ``reflect`` or ``wrap``.
        cval: fill value for ``constant`` (pixel scale 0-255) and for ``cutout``.
        brightness_range: ``(low, high)``; each image's pixels are multiplied by a factor
            drawn from it.
        channel_shift_range: a value uniform in ``[-r, r]`` (pixel scale) added to every
            channel of an image.
        random_crop: pad this many pixels on each side and crop back to the original size at
            a random integer offset (filled per ``fill_mode``).
        random_resized_crop: smallest area fraction of a random crop (aspect ratio 3/4-4/3)
            resized back to the full image; 0 is off.
        color_jitter: brightness, contrast and saturation factors uniform in ``[1-j, 1+j]``.
        pca_lighting: standard deviation of AlexNet's PCA colour noise (the paper uses 0.1).
        random_erasing: probability of erasing a random rectangle (2-33% of the area, aspect
            0.3-3.3) with uniform noise.
        cutout: side in pixels of a square filled with ``cval`` at a random centre.
    """

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: tuple[float, float] = (1.0, 1.0)
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"
    cval: float = 0.0
    brightness_range: tuple[float, float] | None = None
    channel_shift_range: float = 0.0
    random_crop: int = 0
    random_resized_crop: float = 0.0
    color_jitter: float = 0.0
    pca_lighting: float = 0.0
    random_erasing: float = 0.0
    cutout: int = 0

    def __post_init__(self) -> None:
        for name in (
            "rotation_range",
            "width_shift_range",
            "height_shift_range",
            "shear_range",
            "channel_shift_range",
            "color_jitter",
            "pca_lighting",
            "cval",
        ):
            _finite(name, getattr(self, name), minimum=0.0 if name != "cval" else None)
        if self.rotation_range > 180 or self.shear_range >= 90:
            raise ConfigError(
                "expected rotation_range <= 180 and shear_range < 90 degrees, received "
                f"rotation_range={self.rotation_range}, shear_range={self.shear_range}"
            )
        low, high = self.zoom_range
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ConfigError(
                f"expected zoom factors 0 < low <= high, received zoom_range={low}:{high}"
            )
        if self.brightness_range is not None:
            low, high = self.brightness_range
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                raise ConfigError(
                    f"expected brightness factors 0 <= low <= high, received "
                    f"brightness_range={low}:{high}"
                )
        if self.fill_mode not in FILL_MODES:
            raise ConfigError(
                f"expected fill_mode in {', '.join(FILL_MODES)}, received "
                f"fill_mode={self.fill_mode!r}"
            )
        if self.color_jitter >= 1:
            raise ConfigError(
                f"expected color_jitter in [0, 1), received color_jitter={self.color_jitter}"
            )
        if not 0 <= self.random_resized_crop <= 1:
            raise ConfigError(
                "expected random_resized_crop (smallest area fraction) in [0, 1], received "
                f"random_resized_crop={self.random_resized_crop}"
            )
        if not 0 <= self.random_erasing <= 1:
            raise ConfigError(
                f"expected random_erasing (a probability) in [0, 1], received "
                f"random_erasing={self.random_erasing}"
            )
        if self.random_crop < 0 or self.cutout < 0:
            raise ConfigError(
                "expected random_crop and cutout >= 0 pixels, received "
                f"random_crop={self.random_crop}, cutout={self.cutout}"
            )

    # ---- what is on ---------------------------------------------------------------------
    @property
    def geometric(self) -> bool:
        """True when any parameter moves pixels (one ``grid_sample`` call does them all)."""
        return bool(
            self.rotation_range
            or self.width_shift_range
            or self.height_shift_range
            or self.shear_range
            or self.zoom_range != (1.0, 1.0)
            or self.random_crop
            or self.random_resized_crop
        )

    @property
    def enabled(self) -> bool:
        """True when the spec changes images at all."""
        return self != AugmentSpec(fill_mode=self.fill_mode, cval=self.cval)

    def to_string(self) -> str:
        """The canonical ``--augment`` text (only non-default items); parses back to self."""
        items = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if isinstance(value, bool):
                items.append(f.name)
            elif isinstance(value, tuple):
                items.append(f"{f.name}={_num(value[0])}:{_num(value[1])}")
            elif isinstance(value, float):
                items.append(f"{f.name}={_num(value)}")
            else:
                items.append(f"{f.name}={value}")
        return ",".join(items)


_KINDS: dict[str, str] = {f.name: str(f.type) for f in fields(AugmentSpec)}


def parse_augment(text: str | None) -> AugmentSpec:
    """Parse ``--augment`` text into a validated :class:`AugmentSpec` (empty text: none).

    Raises:
        ConfigError: an unknown name, a malformed value or an impossible parameter, in one
            line naming it.
    """
    if not text or not text.strip():
        return AugmentSpec()
    values: dict[str, Any] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, raw = item.partition("=")
        name = name.strip()
        if name not in _KINDS:
            raise ConfigError(
                f"expected augmentation parameters among {', '.join(_KINDS)}, received {name!r}"
            )
        if name in values:
            raise ConfigError(f"expected each augmentation parameter once, received {name!r} twice")
        values[name] = _convert(name, _KINDS[name], raw.strip() if "=" in item else None)
    return AugmentSpec(**values)


def _convert(name: str, kind: str, raw: str | None) -> Any:
    def bad(what: str) -> ConfigError:
        return ConfigError(f"expected {what} for {name}, received {name}={raw!r}")

    if kind == "bool":
        if raw is None or raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise bad("true or false")
    if raw is None or raw == "":
        raise bad("a value")
    if kind == "str":
        return raw
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise bad("a whole number of pixels") from None
    try:
        if "tuple" in kind:
            if ":" in raw:
                low, high = (float(v) for v in raw.split(":"))
                return (low, high)
            if name == "zoom_range":  # Keras: a single z means [1 - z, 1 + z]
                z = float(raw)
                if z < 0:
                    raise bad("a zoom range >= 0 (or low:high factors)")
                return (1.0 - z, 1.0 + z)
            raise bad("a range low:high")
        return float(raw)
    except ValueError:
        raise bad("a number" if "tuple" not in kind else "numbers low:high") from None


def _finite(name: str, value: float, minimum: float | None) -> None:
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ConfigError(f"expected a finite {name}{bound}, received {name}={value}")


def _num(value: float) -> str:
    return f"{value:g}"
