"""Receptive fields: seed 003's claim, closed forms, and an empirical gradient measurement.

The empirical field of one output unit is the set of input pixels whose gradient is non-zero
when back-propagating from that unit. For the gradient to reach every pixel the unit depends
on, weights are set to positive constants (so no ReLU is dead and nothing cancels), max pools
are replaced by average pools of the same geometry (a max pool passes gradient to one pixel
per window only) and dropout is off (eval mode).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import Field, receptive_fields, summary
from cnnlab.models import create_model


def _positive(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.MaxPool2d):
            pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
            setattr(model, name, pool)
        else:
            _positive(child)
    with torch.no_grad():
        for p in model.parameters(recurse=False):
            p.fill_(0.01)
    return model


def measured_box(
    model: nn.Module, shape: tuple[int, int, int], module: nn.Module, unit: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Non-zero gradient mask and its bounding box (top, bottom, left, right) in the input."""
    model = _positive(model).double().eval()
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    model(x)
    handle.remove()
    captured[0][0, :, unit[0], unit[1]].sum().backward()
    mask = (x.grad[0] != 0).any(0)
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    return mask, (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))


def predicted_box(
    field: Field, unit: tuple[int, int], shape: tuple[int, int, int]
) -> tuple[int, ...]:
    assert field.jump is not None
    box = []
    for axis in range(2):
        centre = field.start[axis] + unit[axis] * field.jump[axis]
        half = (field.size[axis] - 1) / 2
        box += [max(0, int(centre - half)), min(shape[axis + 1] - 1, int(centre + half))]
    return tuple(box)


def check(
    model: nn.Module,
    shape: tuple[int, int, int],
    module_name: str,
    unit: tuple[int, int],
    dense: bool = True,
) -> Field:
    """Compare the predicted field of ``unit`` in ``module_name``'s output with the measured one:
    same bounding box, and (if ``dense``) every pixel in it reached."""
    field = receptive_fields(model, shape)[module_name]
    assert field is not None
    module = dict(model.named_modules())[module_name]
    mask, box = measured_box(model, shape, module, unit)
    assert box == predicted_box(field, unit, shape)
    top, bottom, left, right = box
    assert mask[top : bottom + 1, left : right + 1].all() or not dense
    inside = top > 0 and bottom < shape[1] - 1 and left > 0 and right < shape[2] - 1
    return field if inside else pytest.fail(f"field {box} touches the border; pick another unit")


def test_seed_003_two_3x3_convs_see_5x5_with_18_weights() -> None:
    stacked = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), nn.Conv2d(1, 1, 3, bias=False))
    single = nn.Conv2d(1, 1, 5, bias=False)
    a, b = summary(stacked, (1, 9, 9)), summary(single, (1, 9, 9))
    assert a.layers[-1].field.size == b.layers[-1].field.size == (5, 5)
    assert (a.total_params, b.total_params) == (18, 25)
    assert a.layers[-1].output_shape == b.layers[-1].output_shape == (1, 5, 5)
    assert check(stacked, (1, 9, 9), "1", (2, 2)).size == (5, 5)


def test_closed_form_chain() -> None:
    # conv 7/2 pad 3, max pool 3/2 pad 1, conv 3/1 pad 1 (ResNet's stem and first conv)
    model = nn.Sequential(nn.Conv2d(1, 1, 7, 2, 3), nn.MaxPool2d(3, 2, 1), nn.Conv2d(1, 1, 3, 1, 1))
    d = summary(model, (1, 64, 64)).to_dict()["layers"]
    assert [(r["receptive_field"], r["jump"], r["start"]) for r in d] == [
        (7, 2, 0),  # 1 + 6*1, start 0 + (3 - 3)*1
        (11, 4, 0),  # 7 + 2*2, start 0 + (1 - 1)*2
        (19, 4, 0),  # 11 + 2*4
    ]
    check(model, (1, 64, 64), "2", (8, 8))


def test_resnet18_layer2_empirical() -> None:
    # stem 7 -> pool 11 -> layer1 (4 convs, jump 4) 43 -> layer2 (3x3/2, 3 x 3x3, jump 8) 99
    model = create_model("resnet18")
    field = check(model, (3, 128, 128), "layer2", (8, 8))
    assert (field.size, field.jump) == ((99, 99), (8, 8))


def test_resnet20_option_a_shortcut_empirical() -> None:
    # the shortcut subsamples with x[:, :, ::2, ::2] and zero-pads channels with F.pad
    model = create_model("resnet20")
    field = check(model, (3, 64, 64), "layer2", (16, 16))
    # 8 convs at jump 1 (stem, layer1, layer2's strided conv), then 5 convs at jump 2
    assert field.size == (1 + 2 * 8 + 4 * 5, 1 + 2 * 8 + 4 * 5)
    shortcut = receptive_fields(model, (3, 64, 64))["layer2.0.downsample"]
    assert shortcut.size == (15, 15) and shortcut.jump == (2, 2)  # layer1's field, subsampled


@pytest.mark.parametrize(("paper_5x5", "size"), [(False, 43), (True, 59)])
def test_inception_branches_take_the_largest_field(paper_5x5: bool, size: int) -> None:
    # stem: 7/2 -> 3/2 pool -> 1x1 -> 3x3 -> 3/2 pool: 27, jump 8; "5x5" branch: + (k-1)*8
    model = create_model("googlenet", aux_logits=False, paper_5x5=paper_5x5)
    fields = receptive_fields(model, (3, 96, 96))
    assert fields["inception3a.branch1"].size == (27, 27)
    assert fields["inception3a.branch2"].size == (43, 43)
    field = check(model, (3, 96, 96), "inception3a", (6, 6))
    assert field.size == (size, size)


class _Offset(nn.Module):
    """Two branches whose fields have different centres: a 3x3 "same" conv, and a 5x5 conv
    padded by 4 and cropped so that it looks up and to the left."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=1)
        self.b = nn.Conv2d(1, 1, 5, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return F.relu(self.a(x) + self.b(x)[:, :, :h, :w])


def test_union_of_offset_branches() -> None:
    model = nn.Sequential(_Offset())
    field = check(model, (1, 16, 16), "0", (8, 8), dense=False)  # two offset squares
    # unit i sees [i-1, i+1] through a and [i-4, i] through b: the union is [i-4, i+1]
    assert field.size == (6, 6) and field.start == (-1.5, -1.5)


def test_flatten_sees_the_whole_input() -> None:
    s = summary("baseline")
    flat = next(layer for layer in s.layers if layer.type == "Flatten")
    pool = next(layer for layer in s.layers if layer.type == "MaxPool2d")
    assert pool.field.size == (6, 6) and pool.field.jump == (2, 2)
    assert flat.field.jump is None
    # 16 units 2 pixels apart, each seeing 6: from -2 to 33, padding included
    assert flat.field.size == (36, 36)
    assert s.to_dict()["layers"][-1]["jump"] is None
