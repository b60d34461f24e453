"""The summary shows how branches join (Inception's concatenation, the residual addition) as
rows, folds deep nets to ``--depth N``, puts the ``--explain`` arithmetic in the JSON, and labels
its parameter counts against ``cnnlab models`` (they differ by BatchNorm's running statistics)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cli_helpers import run_cli
from cnnlab.analysis import model_overview, summary
from cnnlab.models import create_model


def test_inception_concatenation_is_a_row_with_the_summed_channels() -> None:
    s = summary("googlenet")
    rows = {layer.name: layer for layer in s.layers}
    cat = rows["inception3a.cat"]
    assert cat.type == "cat" and cat.params == 0 and cat.macs == 0
    branches = [rows[f"inception3a.branch{i}.conv"] for i in (1,)] + [
        rows[f"inception3a.branch{i}.1.conv"] for i in (2, 3, 4)
    ]
    assert cat.output_shape == (sum(b.output_shape[0] for b in branches), 28, 28)  # 256
    assert cat.output_shape == (256, 28, 28)  # 64 + 128 + 32 + 32, seed 002's inception (3a)
    names = [layer.name for layer in s.layers]
    assert names.index("inception3a.cat") > names.index("inception3a.branch4.1.conv")
    assert names.index("inception3a.cat") < names.index("inception3b.branch1.conv")
    assert sum(name.endswith(".cat") for name in names) == 9  # nine Inception modules


def test_residual_addition_is_a_row_between_the_block_and_its_relu() -> None:
    names = [layer.name for layer in summary("resnet18").layers]
    adds = [n for n in names if n.endswith(".add")]
    assert len(adds) == 8  # 2 + 2 + 2 + 2 BasicBlocks
    i = names.index("layer1.0.add")
    assert names[i - 1] == "layer1.0.bn2" and names[i + 1] == "layer1.0.relu"
    # a bias or a scalar added is not a join: no add rows in a net without shortcuts
    assert not any(n.endswith(".add") for n in (layer.name for layer in summary("vgg11").layers))


def test_in_place_and_functional_additions_and_cat_of_a_user_model() -> None:
    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.cat([self.a(x), self.b(x)], dim=1)  # N x 5 x H x W
            y = y + 1.0  # a scalar: no row
            z = torch.add(y, y)
            z += y
            return z.flatten(1)

    rows = [
        (layer.name, layer.type, layer.output_shape) for layer in summary(Twin(), (1, 4, 4)).layers
    ]
    assert rows == [
        ("a", "Conv2d", (2, 4, 4)),
        ("b", "Conv2d", (3, 4, 4)),
        ("cat", "cat", (5, 4, 4)),
        ("add", "add", (5, 4, 4)),
        ("add_1", "add", (5, 4, 4)),
    ]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_depth_folds_rows_and_keeps_every_total(depth: int) -> None:
    full = summary("resnet152")
    folded = summary("resnet152", max_depth=depth)
    assert max(layer.depth for layer in folded.layers) == depth
    assert len(folded.layers) < len(full.layers)
    for key in ("total_params", "trainable_params", "non_trainable_params", "buffer_params"):
        assert getattr(folded, key) == getattr(full, key)
    for key in ("trainable_params", "non_trainable_params", "macs"):
        assert sum(getattr(layer, key) for layer in folded.layers) == getattr(full, key)
    assert sum(layer.params for layer in folded.layers) == full.total_params
    assert sum(layer.macs for layer in folded.layers) == full.macs
    assert folded.activation_bytes == full.activation_bytes
    if depth == 1:
        rows = {layer.name: layer for layer in folded.layers}
        assert [layer.name for layer in folded.layers] == [
            "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
            "avgpool", "fc",
        ]  # fmt: skip
        assert rows["layer3"].output_shape == (1024, 14, 14)
        assert rows["layer3"].params == sum(
            layer.params for layer in full.layers if layer.name.startswith("layer3.")
        )
        assert "layer1.0.conv1: (56 - 1 + 2*0)/1 + 1 = 56" in rows["layer1"].size_arithmetic


def test_lenet5_numbers_of_the_seed_article_at_every_depth() -> None:
    for depth in (None, 1, 2):
        s = summary("lenet5", max_depth=depth)
        assert s.total_params == 61_706 and s.macs == 416_520
    weighted = [layer.params for layer in summary("lenet5", max_depth=2).layers if layer.params]
    assert weighted == [156, 2416, 48120, 10164, 850]


def test_parameter_counts_are_labelled_and_agree_with_models() -> None:
    s = summary("resnet152")
    resnet152 = create_model("resnet152")
    buffers = sum(b.numel() for b in resnet152.buffers() if b.is_floating_point())
    assert s.trainable_params == 60_192_808 == sum(p.numel() for p in resnet152.parameters())
    assert s.total_params == 60_344_232 and s.buffer_params == buffers == 151_424
    assert s.frozen_params == 0
    table = s.table()
    assert "Total params: 60,344,232 (trainable + non-trainable)" in table
    assert "Trainable params: 60,192,808 (what the optimiser updates" in table
    assert "Non-trainable params: 151,424 (BatchNorm running mean and variance: 151,424)" in table
    (row,) = model_overview("resnet152")
    assert row["params"] == row["trainable_params"] == 60_192_808
    assert row["total_params"] == 60_344_232


def test_cli_depth_explain_json_and_models_note(capsys) -> None:
    status, out, _ = run_cli(capsys, "summary", "resnet152", "--depth", "1")
    assert status == 0 and len(out.splitlines()) < 30
    status, out, _ = run_cli(capsys, "summary", "lenet5", "--explain", "--json")
    doc = json.loads(out)
    conv = doc["layers"][0]
    assert conv["size_arithmetic"] == ["(32 - 5 + 2*0)/1 + 1 = 28"]
    assert conv["param_arithmetic"] == "5x5x1x6 + 6 = 156"
    status, out, _ = run_cli(capsys, "summary", "lenet5", "--json")
    assert "size_arithmetic" not in json.loads(out)["layers"][0]
    status, out, _ = run_cli(capsys, "models", "resnet15*")
    assert status == 0 and "Trainable params" in out.splitlines()[0]
    assert "60,192,808" in out and "BatchNorm's running mean and variance" in out
    status, _, err = run_cli(capsys, "summary", "lenet5", "--depth", "0")
    assert status == 2 and "expected a depth of at least 1, received depth=0" in err
