"""Test-time augmentation (TTA): several views of each test image, probabilities averaged.

Modes:

- ``none``: the image as stored (1 view);
- ``flip``: the image and its mirror image (2 views);
- ``shift``: the image and four copies shifted up, down, left and right by 1/14 of its size
  (2 pixels on 28x28 MNIST), edges replicated (5 views);
- ``5crop``: the centre and four corner crops (seed 002's multi-crop testing);
- ``10crop``: the five crops of the image and of its mirror image (10 views).

A view helps only if it keeps the label. Mirroring does for photos of objects, not for digits
(a mirrored 2, 3 or 7 is no digit; on MNIST ``flip`` lowers LeNet-5's accuracy):
:func:`label_warning` says so for ``flip`` and ``10crop`` on digit runs and recommends
``shift``, which keeps every digit's label.

Where crops come from. Crops are cut from the *canvas*: the image as the network sees it before
normalisation, i.e. the stored image zero-padded to the network input by the run's
:class:`~cnnlab.data.preprocess.Preprocessing` (stored 256x256 for a 224 network stays 256x256;
MNIST's 28x28 becomes LeNet-5's 32x32). Each ``crop_size`` crop then goes through the same
preprocessing, which pads it back to the input size, centred, so the network sees every view at
the scale it was trained at. The default crop is the network's default input. Crops need a
canvas larger than the crop; otherwise every crop would be the whole image and TTA would
silently be single-view, so that is an error. For MNIST on LeNet-5 (canvas 32 = network input),
``--crop-size 28`` gives crops of the padded 32x32 image: the centre crop is the stored digit
itself, the corner crops are the digit moved 2 pixels diagonally (cut by at most the 2-pixel
border it is padded with), each re-padded to 32x32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.augment_spec import CROP_MODES, TTA_MODES
from cnnlab.data.dataset import ImageSplit
from cnnlab.data.digits import is_digit_run
from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import ConfigError
from cnnlab.inference import compute_logits, image_batches, inference_batch_size

#: Modes with mirrored views.
MIRROR_MODES = ("flip", "10crop")

View = Callable[[torch.Tensor], torch.Tensor]


class TTAWarning(UserWarning):
    """A TTA mode whose views may change the label of this data (e.g. mirrored digits)."""


def _pad_centred(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad to ``size`` centred, as :class:`Preprocessing` pads.

    Shape:
        ``(N, C, H, W) -> (N, C, size[0], size[1])`` float.
    """
    pad_h, pad_w = size[0] - images.shape[-2], size[1] - images.shape[-1]
    return F.pad(images.float(), (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


def _as_stored(images: torch.Tensor) -> torch.Tensor:
    """The identity view: the image as stored (its logits are the single view's)."""
    return images


def _mirror(images: torch.Tensor) -> torch.Tensor:
    return images.flip(-1)  # N x C x H x W, left-right


def _shift(dy: int, dx: int) -> View:
    """Move the content by ``(dy, dx)`` pixels, replicating the edges into the gap."""

    def view(images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        p = max(abs(dy), abs(dx))
        padded = F.pad(images.float(), (p, p, p, p), mode="replicate")  # N x C x H+2p x W+2p
        return padded[..., p - dy : p - dy + h, p - dx : p - dx + w]

    return view


def _crop(canvas: tuple[int, int], size: tuple[int, int], top: int, left: int, flip: bool) -> View:
    def view(images: torch.Tensor) -> torch.Tensor:
        x = _pad_centred(images, canvas)  # N x C x canvas
        x = _mirror(x) if flip else x
        return x[..., top : top + size[0], left : left + size[1]]  # N x C x size

    return view


def crop_size_for(
    mode: str, preprocessing: Preprocessing, network_input: tuple[int, int], crop_size: int | None
) -> tuple[int, int] | None:
    """The crop size a crop mode uses (None for other modes), checked against the canvas.

    Raises:
        ConfigError: ``crop_size`` with a mode that does not crop, or a crop that is not
            smaller than the canvas (crop TTA would silently be single-view).
    """
    if mode not in TTA_MODES:
        raise ConfigError(f"expected tta in {', '.join(TTA_MODES)}, received tta={mode!r}")
    if mode not in CROP_MODES:
        if crop_size is not None:
            raise ConfigError(
                f"expected --crop-size only with 5crop or 10crop, received crop_size={crop_size} "
                f"with tta={mode!r}"
            )
        return None
    size = (crop_size, crop_size) if crop_size is not None else tuple(network_input)
    canvas = preprocessing.input_size
    stored = "x".join(map(str, preprocessing.image_size))
    where = (
        f"images stored at {stored}"
        if canvas == preprocessing.image_size
        else f"images stored at {stored}, padded to the {canvas[0]}x{canvas[1]} network input"
    )
    if min(size) < 1 or size[0] >= canvas[0] or size[1] >= canvas[1]:
        below = min(canvas) - 1
        raise ConfigError(
            f"expected images larger than the crop for {mode} TTA, received {where} and "
            f"crop_size={size[0]}x{size[1]} (every crop would be the whole image); pass "
            f"--crop-size from 1 to {below} (crops of the {canvas[0]}x{canvas[1]} image, padded "
            "back to the network input)"
        )
    return size  # type: ignore[return-value]


def label_warning(mode: str, classes: tuple[str, ...] | list[str], channels: int) -> str | None:
    """Why ``mode``'s views may change the label for this data (None when they do not): mirror
    views on a digit run (grey-scale images of digits, see
    :func:`~cnnlab.data.digits.is_digit_run`)."""
    if mode not in MIRROR_MODES or not is_digit_run(classes, channels):
        return None
    return (
        f"tta={mode} averages mirrored views, and a mirrored digit is not the same digit (a "
        "mirrored 2, 3 or 7 is no digit), so TTA accuracy usually falls on digits; use "
        "--tta shift (small shifts keep every digit's label)"
    )


def tta_views(mode: str, preprocessing: Preprocessing, crop: tuple[int, int] | None) -> list[View]:
    """The views of a mode, each a function of a uint8 batch ``(N, C, H, W)`` returning
    images :class:`Preprocessing` takes (uint8 or float 0-255, at most the input size).

    Args:
        crop: the crop size (from :func:`crop_size_for`) for crop modes.
    """
    if mode == "none":
        return [_as_stored]
    if mode == "flip":
        return [_as_stored, _mirror]
    if mode == "shift":
        d = max(1, round(min(preprocessing.image_size) / 14))
        return [_as_stored, _shift(-d, 0), _shift(d, 0), _shift(0, -d), _shift(0, d)]
    assert crop is not None, "crop modes need a crop size"
    (ch, cw), (h, w) = preprocessing.input_size, crop
    corners = [((ch - h) // 2, (cw - w) // 2), (0, 0), (0, cw - w), (ch - h, 0), (ch - h, cw - w)]
    flips = (False, True) if mode == "10crop" else (False,)
    return [_crop((ch, cw), crop, t, left, f) for f in flips for t, left in corners]


def tta_log_probabilities(
    model: nn.Module,
    images: torch.Tensor | ImageSplit,
    preprocessing: Preprocessing,
    views: list[View],
    batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single-view log-probabilities and the log of the mean softmax probability over the
    views, in one pass over the images (a streamed split is decoded once), ``batch_size``
    images at a time (default :func:`~cnnlab.inference.inference_batch_size`).

    Shape:
        ``(N, C, H, W) uint8`` (tensor or split) ``-> (N, num_classes), (N, num_classes)``
        float32 log-probabilities.
    """
    single, averaged = [], []
    batch_size = batch_size or inference_batch_size(preprocessing)
    for batch in image_batches(images, batch_size):
        logits = compute_logits(model, batch, preprocessing, batch_size)
        single.append(logits.log_softmax(1))
        total = sum(
            (
                logits
                if view is _as_stored
                else compute_logits(model, view(batch), preprocessing, batch_size)
            ).softmax(1)
            for view in views
        )
        averaged.append((total / len(views)).clamp_min(1e-30).log())
    return torch.cat(single), torch.cat(averaged)
