"""Batched, on-device data augmentation (Keras ``ImageDataGenerator`` semantics and more).

:class:`Augmenter` turns a batch of stored images into a randomly transformed float batch in
one pass: every geometric parameter (rotation, shifts, shear, zoom, flips, random crop, random
resized crop) becomes one 2x3 matrix per image, and a single ``affine_grid`` + ``grid_sample``
call (bilinear, like Keras's ``interpolation_order=1``) moves all the pixels of the batch; the
colour operations and erasing are then elementwise. No per-image Python runs, so it costs a few
per cent of a LeNet-5 training step (``benchmarks/augment_throughput.py``).

The geometric transform composes as in Keras's ``apply_affine_transform`` (rotation, shift,
shear, zoom about the image centre), then flips, then crops::

    input_point = centre + R (Sh Z (F C p + d) + t)      p: output point relative to the centre

Every random draw comes from ``generator`` (or torch's global RNG, which the trainer saves in
its resumable checkpoints), on the device of the batch, so a run is reproducible from its seed
and resumes bitwise. In training it runs on the stored image size, before padding and
normalisation (see :meth:`cnnlab.training.loop.Trainer._train_step`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.augment_spec import AugmentSpec, parse_augment
from cnnlab.data.pixel_stats import PixelMoments
from cnnlab.errors import ConfigError

_PADDING = {"constant": "zeros", "nearest": "border", "reflect": "reflection", "wrap": "border"}


class Augmenter:
    """Random augmentation of uint8 image batches.

    Args:
        spec: the parameters (an :class:`AugmentSpec` or ``--augment`` text).
        pca: ``(eigenvalues (C,), eigenvectors (C, C))`` of the training pixels on a 0-1
            scale, for ``pca_lighting`` (see :func:`fit_pca`).

    Example:
        >>> aug = Augmenter("rotation_range=40,zoom_range=0.2,horizontal_flip")
        >>> out = aug(torch.zeros(8, 1, 28, 28, dtype=torch.uint8))
        >>> out.shape, out.dtype
        (torch.Size([8, 1, 28, 28]), torch.float32)
    """

    def __init__(
        self,
        spec: AugmentSpec | str,
        pca: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.spec = parse_augment(spec) if isinstance(spec, str) else spec
        if self.spec.pca_lighting and pca is None:
            raise ConfigError(
                "expected PCA eigenvectors of the training pixels for pca_lighting "
                "(fit them with cnnlab.data.augment.fit_pca), received pca=None"
            )
        self.pca = pca

    def __repr__(self) -> str:
        return f"Augmenter({self.spec.to_string()!r})"

    def __call__(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment a batch.

        Args:
            images: uint8 (or float, 0-255 scale) batch.
            generator: source of randomness on the batch's device; default torch's global RNG.

        Shape:
            ``(N, C, H, W) -> (N, C, H, W)`` float32, pixel scale 0-255.
        """
        s = self.spec
        x = images.float()
        n = x.shape[0]
        draw = _Draw(n, x.device, generator)
        if s.geometric:
            h, w = x.shape[-2:]
            theta = affine_matrices(s, h, w, _GeometryDraw(n, x.device, generator), x.device)
            x = _warp(x, theta, s)
        elif s.horizontal_flip or s.vertical_flip:  # flips alone: no resampling needed
            for axis, on in ((-1, s.horizontal_flip), (-2, s.vertical_flip)):
                if on:
                    x = torch.where(draw.coin().view(n, 1, 1, 1), x.flip(axis), x)
        x = self._colour(x, draw)
        if s.random_erasing:
            noise = torch.rand(x.shape, device=x.device, generator=generator) * 255.0
            x = torch.where(_erasing_mask(x, s.random_erasing, draw), noise, x)
        if s.cutout:
            x = x.masked_fill(_cutout_mask(x, s.cutout, draw), s.cval)
        return x

    def _colour(self, x: torch.Tensor, draw: _Draw) -> torch.Tensor:
        s = self.spec
        n, c = x.shape[:2]
        changed = False
        if s.brightness_range is not None:
            x = x * draw.uniform(*s.brightness_range).view(n, 1, 1, 1)
            changed = True
        if s.channel_shift_range:
            r = s.channel_shift_range
            x = x + draw.uniform(-r, r).view(n, 1, 1, 1)
            changed = True
        if s.color_jitter:
            j = s.color_jitter
            x = x * draw.uniform(1 - j, 1 + j).view(n, 1, 1, 1)  # brightness
            grey = _grey(x)  # N x 1 x H x W
            mean = grey.mean(dim=(2, 3), keepdim=True)
            x = (x - mean) * draw.uniform(1 - j, 1 + j).view(n, 1, 1, 1) + mean  # contrast
            if c == 3:
                grey = _grey(x)
                x = (x - grey) * draw.uniform(1 - j, 1 + j).view(n, 1, 1, 1) + grey  # saturation
            changed = True
        if s.pca_lighting:
            values, vectors = (t.to(x.device) for t in self.pca)
            alpha = draw.normal(c) * s.pca_lighting  # N x C
            shift = (alpha * values) @ vectors.T * 255.0  # N x C: sum_i a_i lambda_i p_i
            x = x + shift.view(n, c, 1, 1)
            changed = True
        return x.clamp(0.0, 255.0) if changed else x


def augment(
    images: torch.Tensor,
    spec: AugmentSpec | str,
    *,
    seed: int | None = None,
    pca: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Augment a batch once (the functional face of :class:`Augmenter`).

    Args:
        images: uint8 batch.
        spec: ``--augment`` text or an :class:`AugmentSpec`.
        seed: seeds a private generator (reproducible, leaves the global RNG alone);
            None draws from torch's global RNG.
        pca: see :class:`Augmenter`; fitted on ``images`` when needed and not given.

    Shape:
        ``(N, C, H, W) uint8 -> (N, C, H, W)`` float32, pixel scale 0-255.
    """
    parsed = parse_augment(spec) if isinstance(spec, str) else spec
    if parsed.pca_lighting and pca is None:
        pca = fit_pca(images)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=images.device).manual_seed(seed)
    return Augmenter(parsed, pca)(images, generator)


def fit_pca(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of the channel covariance of training pixels (AlexNet, sec. 4.1),
    on a 0-1 scale, from every pixel (exact sums, see :mod:`cnnlab.data.pixel_stats`).

    Shape:
        ``(N, C, H, W) uint8 -> (C,), (C, C)``: eigenvalues (descending) and eigenvectors as
        columns.
    """
    return pca_of(PixelMoments.of_images(images))


def pca_of(moments: PixelMoments) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fit_pca` from pixel moments (of an in-memory or a streamed training split).

    Shape:
        ``-> (C,), (C, C)``: eigenvalues (descending) and eigenvectors as columns.
    """
    values, vectors = torch.linalg.eigh(moments.covariance())
    order = values.argsort(descending=True)
    return values[order].clamp_min(0).float(), vectors[:, order].float()


def pca_to_dict(pca: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """JSON form of :func:`fit_pca`'s result (stored in the run's metadata)."""
    return {"eigenvalues": pca[0].tolist(), "eigenvectors": pca[1].tolist()}


def pca_from_dict(data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pca_to_dict`."""
    return torch.tensor(data["eigenvalues"]), torch.tensor(data["eigenvectors"])


# ---- geometry ---------------------------------------------------------------------------------
class _Draw:
    """Random numbers for one batch, all from one generator, on the batch's device."""

    def __init__(self, n: int, device: torch.device, generator: torch.Generator | None) -> None:
        self.n, self.device, self.generator = n, device, generator

    def uniform(self, low: float, high: float) -> torch.Tensor:
        u = torch.rand(self.n, device=self.device, generator=self.generator)
        return u * (high - low) + low

    def coin(self, p: float = 0.5) -> torch.Tensor:
        return torch.rand(self.n, device=self.device, generator=self.generator) < p

    def normal(self, k: int) -> torch.Tensor:
        return torch.randn(self.n, k, device=self.device, generator=self.generator)


class _GeometryDraw:
    """The geometric parameters' random numbers: one ``torch.rand`` call per batch (from the
    generator, on the batch's device), then used on the host in float64, where the few dozen
    operations on ``N`` numbers cost microseconds instead of a hundred tiny tensor ops."""

    COLUMNS = 14  # flips 2, resized crop 4, crop 2, zoom 2, shear 1, shifts 2, rotation 1

    def __init__(self, n: int, device: torch.device, generator: torch.Generator | None) -> None:
        u = torch.rand(n, self.COLUMNS, device=device, generator=generator)
        self.u, self.column, self.n = u.double().cpu().numpy(), 0, n

    def _next(self) -> np.ndarray:
        self.column += 1
        return self.u[:, self.column - 1]

    def uniform(self, low: float, high: float) -> np.ndarray:
        return low + self._next() * (high - low)

    def coin(self, p: float = 0.5) -> np.ndarray:
        return self._next() < p

    def integers(self, low: int, high: int) -> np.ndarray:
        """Whole numbers uniform in ``[low, high]``."""
        return np.minimum(np.floor(low + self._next() * (high - low + 1)), high)


def affine_matrices(
    spec: AugmentSpec, h: int, w: int, draw: _GeometryDraw, device: torch.device
) -> torch.Tensor:
    """Random ``affine_grid``-style matrices for a batch, in the normalised coordinates of
    ``align_corners=False`` (x = column, y = row, -1..1 across the pixel edges).

    Shape:
        ``-> (N, 2, 3)`` float32 on ``device``.
    """
    s, n = spec, draw.n
    one, zero = np.ones(n), np.zeros(n)
    # linear part L (rows [a b], [c d]) and offset (ox, oy), in pixels about the centre
    a, b, c, d, ox, oy = one, zero, zero, one, zero, zero

    def then(a2, b2, c2, d2, ox2=zero, oy2=zero):
        """Apply (L2, o2) after the current map: p -> L2 (L p + o) + o2."""
        return (
            a2 * a + b2 * c,
            a2 * b + b2 * d,
            c2 * a + d2 * c,
            c2 * b + d2 * d,
            a2 * ox + b2 * oy + ox2,
            c2 * ox + d2 * oy + oy2,
        )

    # output side: flips, random resized crop (scale + offset), random crop (whole pixels)
    if s.horizontal_flip:
        a = np.where(draw.coin(), -one, one)
    if s.vertical_flip:
        d = np.where(draw.coin(), -one, one)
    if s.random_resized_crop:
        area = draw.uniform(s.random_resized_crop, 1.0)
        ratio = np.exp(draw.uniform(math.log(3 / 4), math.log(4 / 3)))
        fw = np.minimum(np.sqrt(area * ratio), 1.0)  # crop width / image width
        fh = np.minimum(np.sqrt(area / ratio), 1.0)
        cx = draw.uniform(-1, 1) * (1 - fw) * (w / 2)  # crop centre, inside the image
        cy = draw.uniform(-1, 1) * (1 - fh) * (h / 2)
        a, b, c, d, ox, oy = then(fw, zero, zero, fh, cx, cy)
    if s.random_crop:
        p = s.random_crop
        dx, dy = draw.integers(-p, p), draw.integers(-p, p)
        a, b, c, d, ox, oy = then(one, zero, zero, one, dx, dy)
    # Keras: input = R (Sh Z q + t); applied innermost first: zoom, shear, shift, rotation
    if s.zoom_range != (1.0, 1.0):
        zx, zy = draw.uniform(*s.zoom_range), draw.uniform(*s.zoom_range)
        a, b, c, d, ox, oy = then(zx, zero, zero, zy)
    if s.shear_range:
        shear = np.radians(draw.uniform(-s.shear_range, s.shear_range))
        # Keras (row, col): [[1, -sin], [0, cos]]  ->  (x, y): x' = cos x, y' = y - sin x
        a, b, c, d, ox, oy = then(np.cos(shear), zero, -np.sin(shear), one)
    if s.width_shift_range or s.height_shift_range:
        tx = draw.uniform(-1, 1) * _pixels(s.width_shift_range, w)
        ty = draw.uniform(-1, 1) * _pixels(s.height_shift_range, h)
        if s.width_shift_range >= 1:  # Keras draws whole pixels for pixel ranges
            tx = np.round(tx)
        if s.height_shift_range >= 1:
            ty = np.round(ty)
        a, b, c, d, ox, oy = then(one, zero, zero, one, tx, ty)
    if s.rotation_range:
        theta = np.radians(draw.uniform(-s.rotation_range, s.rotation_range))
        cos, sin = np.cos(theta), np.sin(theta)
        a, b, c, d, ox, oy = then(cos, -sin, sin, cos)
    # pixels about the centre -> normalised: x_n = x * 2 / w, y_n = y * 2 / h
    rows = (a, b * (h / w), ox * (2 / w), c * (w / h), d, oy * (2 / h))
    theta = torch.from_numpy(np.stack(rows, axis=1).astype(np.float32))
    return theta.view(n, 2, 3).to(device)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, h, w), align_corners=False)``, written out as broadcast
    multiply-adds (several times faster on the CPU than its batched matrix product).

    Shape:
        ``(N, 2, 3) -> (N, h, w, 2)``.
    """
    kw = {"device": theta.device, "dtype": theta.dtype}
    xs = (torch.arange(w, **kw) * 2 + 1) / w - 1  # pixel centres, normalised
    ys = ((torch.arange(h, **kw) * 2 + 1) / h - 1).view(h, 1)
    t = theta.reshape(-1, 6, 1, 1)
    grid = torch.empty(theta.shape[0], h, w, 2, **kw)
    torch.add(t[:, 0] * xs + t[:, 2], t[:, 1] * ys, out=grid[..., 0])
    torch.add(t[:, 3] * xs + t[:, 5], t[:, 4] * ys, out=grid[..., 1])
    return grid


def _pixels(shift: float, size: int) -> float:
    return shift if shift >= 1 else shift * size


def _warp(x: torch.Tensor, theta: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """One bilinear resampling of the whole batch, filled per ``spec.fill_mode``.

    Shape:
        ``(N, C, H, W), (N, 2, 3) -> (N, C, H, W)``.
    """
    grid = affine_grid(theta, x.shape[-2], x.shape[-1])  # N x H x W x 2
    if spec.fill_mode == "wrap":
        grid = torch.remainder(grid + 1, 2) - 1  # period 2 = the image width/height
    cval = spec.cval if spec.fill_mode == "constant" else 0.0
    mode = _PADDING[spec.fill_mode]
    if cval:  # zeros padding of (x - cval), plus cval: outside taps then weigh in cval
        return F.grid_sample(x - cval, grid, "bilinear", mode, align_corners=False) + cval
    return F.grid_sample(x, grid, "bilinear", mode, align_corners=False)


# ---- colour and erasing -----------------------------------------------------------------------
def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma of an RGB batch (the batch itself when grey-scale).

    Shape:
        ``(N, C, H, W) -> (N, 1, H, W)``.
    """
    if x.shape[1] == 1:
        return x
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _box_mask(
    h: int, w: int, top: torch.Tensor, left: torch.Tensor, bh: torch.Tensor, bw: torch.Tensor
) -> torch.Tensor:
    """Boolean masks of one axis-aligned box per image.

    Shape:
        ``(N,) x 4 -> (N, 1, H, W)``.
    """
    rows = torch.arange(h, device=top.device).view(1, h, 1)
    cols = torch.arange(w, device=top.device).view(1, 1, w)
    inside_r = (rows >= top.view(-1, 1, 1)) & (rows < (top + bh).view(-1, 1, 1))
    inside_c = (cols >= left.view(-1, 1, 1)) & (cols < (left + bw).view(-1, 1, 1))
    return (inside_r & inside_c).unsqueeze(1)


def _erasing_mask(x: torch.Tensor, p: float, draw: _Draw) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017): area 2-33%, aspect 0.3-3.3, probability ``p``."""
    h, w = x.shape[-2:]
    area = draw.uniform(0.02, 0.33) * (h * w)
    ratio = draw.uniform(math.log(0.3), math.log(1 / 0.3)).exp()
    bh = (area * ratio).sqrt().round().clamp(1, h)
    bw = (area / ratio).sqrt().round().clamp(1, w)
    top = (draw.uniform(0, 1) * (h - bh + 1)).floor()
    left = (draw.uniform(0, 1) * (w - bw + 1)).floor()
    on = draw.coin(p).view(-1, 1, 1, 1)
    return _box_mask(h, w, top, left, bh, bw) & on


def _cutout_mask(x: torch.Tensor, size: int, draw: _Draw) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): a ``size`` square at a uniform centre, clipped."""
    h, w = x.shape[-2:]
    cy = (draw.uniform(0, 1) * h).floor()
    cx = (draw.uniform(0, 1) * w).floor()
    top, left = cy - size // 2, cx - size // 2
    side = torch.full_like(cy, float(size))
    return _box_mask(h, w, top, left, side, side)
