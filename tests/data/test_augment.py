"""Batched augmentation: spec parsing, exact geometry, fill modes, colour, erasing, seeds."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.data.augment import (
    Augmenter,
    _warp,
    affine_grid,
    affine_matrices,
    augment,
    fit_pca,
    pca_from_dict,
    pca_to_dict,
)
from cnnlab.data.augment_spec import AugmentSpec, parse_augment
from cnnlab.errors import ConfigError


class _Fixed:
    """Draws that always return the top of the range and heads (deterministic geometry)."""

    def __init__(self, n):
        self.n = n

    def uniform(self, low, high):
        return np.full(self.n, float(high))

    def coin(self, p=0.5):
        return np.ones(self.n, dtype=bool)

    def integers(self, low, high):
        return np.full(self.n, float(high))


def _apply(spec: AugmentSpec, x: torch.Tensor) -> torch.Tensor:
    theta = affine_matrices(spec, x.shape[-2], x.shape[-1], _Fixed(len(x)), x.device)
    return _warp(x.float(), theta, spec)


def test_affine_grid_matches_torch():
    theta = torch.randn(5, 2, 3)
    expected = F.affine_grid(theta, [5, 1, 7, 9], align_corners=False)
    assert torch.allclose(affine_grid(theta, 7, 9), expected, atol=1e-5)


@pytest.fixture
def digits(subset):
    return subset.train.images[:32]  # real MNIST, 32 x 1 x 28 x 28 uint8


# ---- the --augment language -------------------------------------------------------------------
def test_parse_keras_parameters():
    spec = parse_augment(
        "rotation_range=40, width_shift_range=0.2,height_shift_range=3,shear_range=10,"
        "zoom_range=0.2,horizontal_flip,vertical_flip=false,fill_mode=reflect,cval=10,"
        "brightness_range=0.5:1.5"
    )
    assert spec.rotation_range == 40 and spec.height_shift_range == 3
    assert spec.zoom_range == pytest.approx((0.8, 1.2))  # Keras: z -> [1 - z, 1 + z]
    assert spec.horizontal_flip and not spec.vertical_flip
    assert spec.brightness_range == (0.5, 1.5) and spec.fill_mode == "reflect"
    assert parse_augment(spec.to_string()) == spec
    assert parse_augment("") == AugmentSpec() and not AugmentSpec().enabled


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("zoom_range=-0.2", "zoom_range"),
        ("zoom_range=1.2:0.8", "0 < low <= high"),
        ("rotation_range=-5", "rotation_range >= 0"),
        ("rotation_range=400", "rotation_range <= 180"),
        ("shear_range=90", "shear_range < 90"),
        ("rotation", "'rotation'"),
        ("fill_mode=mirror", "fill_mode in constant, nearest, reflect, wrap"),
        ("width_shift_range=abc", "a number for width_shift_range"),
        ("horizontal_flip=sometimes", "true or false"),
        ("brightness_range=1.2", "low:high"),
        ("brightness_range=-1:2", "brightness"),
        ("random_erasing=1.5", "probability"),
        ("random_crop=2.5", "whole number"),
        ("color_jitter=1", "color_jitter in [0, 1)"),
        ("cval=nan", "finite cval"),
        ("rotation_range=10,rotation_range=20", "twice"),
        ("width_shift_range=", "a value"),
    ],
)
def test_impossible_parameters_are_one_line_errors(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_augment(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("expected")


# ---- exact geometry ---------------------------------------------------------------------------
def test_flips(digits):
    x = digits.float()
    h_flip = _apply(AugmentSpec(horizontal_flip=True, rotation_range=1e-12), x)
    v_flip = _apply(AugmentSpec(vertical_flip=True, rotation_range=1e-12), x)
    assert torch.allclose(h_flip, x.flip(-1), atol=1e-3)
    assert torch.allclose(v_flip, x.flip(-2), atol=1e-3)
    # flips alone skip resampling (exact); with a seed each image is flipped or not
    out = augment(digits, "horizontal_flip", seed=0)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert (flipped | same).all() and flipped.any() and (~flipped).any()


def test_rotation_by_90_degrees_is_rot90(digits):
    out = _apply(AugmentSpec(rotation_range=90), digits)
    matches = [
        torch.allclose(out, torch.rot90(digits.float(), k, (2, 3)), atol=1e-3) for k in (1, 3)
    ]
    assert any(matches)


def test_pixel_shift_and_fraction_shift(digits):
    x = digits.float()
    # a +3 pixel draw samples 3 pixels further right/down: content moves 3 left/up
    spec = AugmentSpec(width_shift_range=3, height_shift_range=3, fill_mode="constant", cval=9)
    out = _apply(spec, x)
    assert torch.allclose(out[..., :-3, :-3], x[..., 3:, 3:], atol=1e-3)
    assert torch.allclose(out[..., -3:], torch.full_like(out[..., -3:], 9.0), atol=1e-3)
    # below 1: a fraction of the size, 0.25 x 28 = 7 pixels
    out = _apply(AugmentSpec(width_shift_range=0.25, fill_mode="constant"), x)
    assert torch.allclose(out[..., :-7], x[..., 7:], atol=1e-3)
    assert out[..., -7:].abs().max() < 1e-3


@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect", "wrap"])
def test_fill_modes_on_a_whole_pixel_shift(mode):
    row = torch.arange(1.0, 7.0).view(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()  # 1..6
    spec = AugmentSpec(width_shift_range=2, fill_mode=mode, cval=50)
    out = _apply(spec, row)[0, 0, 0]
    expected = {  # content moved 2 pixels left; filled as Keras/scipy fill (d c b a | a b c d)
        "constant": [3, 4, 5, 6, 50, 50],
        "nearest": [3, 4, 5, 6, 6, 6],
        "reflect": [3, 4, 5, 6, 6, 5],
        "wrap": [3, 4, 5, 6, 1, 2],
    }[mode]
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float), atol=1e-4)


def test_zoom_above_one_shrinks_content_as_in_keras():
    x = torch.zeros(1, 1, 21, 21)
    x[..., 5:16, 5:16] = 255  # an 11 x 11 square
    out = _apply(AugmentSpec(zoom_range=(2.0, 2.0), fill_mode="constant"), x)
    assert 20 < (out > 127).sum() < 50  # about 5.5 x 5.5: the square shrank


def test_random_crop_moves_whole_pixels(digits):
    out = augment(digits, "random_crop=4,fill_mode=constant", seed=1)
    assert torch.allclose(out, out.round(), atol=1e-3)  # integer offsets: no blending
    assert not torch.equal(out, digits.float())


def test_random_resized_crop_zooms_in(digits):
    out = augment(digits, "random_resized_crop=0.3", seed=2)
    assert out.shape == digits.shape and not torch.equal(out, digits.float())


# ---- colour and erasing -----------------------------------------------------------------------
def test_brightness_range_scales_and_clips(digits):
    out = augment(digits, "brightness_range=2:2", seed=0)
    assert torch.equal(out, (digits.float() * 2).clamp(max=255))


def test_color_jitter_and_channel_shift_on_rgb():
    rgb = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    out = augment(rgb, "color_jitter=0.4,channel_shift_range=20", seed=0)
    assert out.min() >= 0 and out.max() <= 255 and not torch.equal(out, rgb.float())


def test_pca_lighting_moves_colours_along_the_principal_axis():
    torch.manual_seed(0)
    base = torch.rand(64, 1, 8, 8) * 200
    rgb = torch.cat([base, base * 0.5 + 20, 0.2 * base + 40], 1).to(torch.uint8)  # correlated
    values, vectors = fit_pca(rgb)
    assert values[0] > 100 * values[1]  # one dominant direction
    assert torch.allclose(
        vectors[:, 0].abs(), torch.tensor([1, 0.5, 0.2]) / math.sqrt(1.29), atol=2e-2
    )
    pca = pca_from_dict(pca_to_dict((values, vectors)))
    flat = torch.full((4, 3, 8, 8), 100, dtype=torch.uint8)
    out = Augmenter("pca_lighting=0.1", pca)(flat, torch.Generator().manual_seed(0))
    shift = out[:, :, 0, 0] - 100  # the same shift at every pixel of an image
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out))
    cosine = (shift @ vectors[:, 0]).abs() / shift.norm(dim=1)
    assert (cosine > 0.99).all()


def test_pca_lighting_needs_pca():
    with pytest.raises(ConfigError, match="fit_pca"):
        Augmenter("pca_lighting=0.1")


def test_random_erasing_and_cutout(digits):
    always = augment(digits, "random_erasing=1", seed=0)
    changed = (always != digits.float()).flatten(1).float().mean(1)
    assert (changed > 0.01).all() and (changed < 0.4).all()
    assert torch.equal(augment(digits, "random_erasing=0", seed=0), digits.float())
    holes = augment(torch.full((16, 1, 28, 28), 200, dtype=torch.uint8), "cutout=8,cval=0", seed=0)
    erased = (holes == 0).flatten(1).sum(1)
    assert (erased <= 64).all() and (erased >= 16).all()  # an 8x8 square, clipped at borders


# ---- randomness -------------------------------------------------------------------------------
SPEC = (
    "rotation_range=40,width_shift_range=0.2,height_shift_range=0.2,shear_range=20,"
    "zoom_range=0.2,horizontal_flip"
)


def test_same_seed_same_batch_different_seed_different(digits):
    a, b = augment(digits, SPEC, seed=3), augment(digits, SPEC, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, augment(digits, SPEC, seed=4))
    assert a.dtype == torch.float32 and a.shape == digits.shape


def test_global_rng_draws_are_reproducible(digits):
    torch.manual_seed(11)
    a = Augmenter(SPEC)(digits)
    torch.manual_seed(11)
    assert torch.equal(a, Augmenter(SPEC)(digits))


def test_each_image_gets_its_own_transform(digits):
    same = digits[:1].expand(16, -1, -1, -1)
    out = augment(same, SPEC, seed=0)
    assert len({tuple(o.flatten()[::7].tolist()) for o in out}) == 16
