"""summary(): the seeds' tables, the JSON contract, model sources, bad input, hygiene, speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.analysis import format_explain, format_models, model_overview, summary
from cnnlab.errors import CnnlabError, ConfigError, ModelError
from cnnlab.models import create_model, list_models

LAYER_KEYS = {
    "name", "type", "output_shape", "params", "trainable_params", "non_trainable_params",
    "macs", "receptive_field", "jump", "start",
}  # fmt: skip
TOP_KEYS = {
    "model", "input_shape", "layers", "total_params", "trainable_params", "non_trainable_params",
    "macs", "flops",
}  # fmt: skip


def test_seed_000_lenet5_table() -> None:
    s = summary("lenet5")
    weighted = [layer for layer in s.layers if layer.params]
    assert [layer.params for layer in weighted] == [156, 2416, 48120, 10164, 850]
    assert [layer.param_arithmetic for layer in weighted] == [
        "5x5x1x6 + 6 = 156",
        "5x5x6x16 + 16 = 2416",
        "5x5x16x120 + 120 = 48120",
        "120x84 + 84 = 10164",
        "84x10 + 10 = 850",
    ]
    shapes = [layer.output_shape for layer in s.layers if layer.size_arithmetic]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert s.total_params == 156 + 2416 + 48120 + 10164 + 850


def test_seed_003_keras_baseline_table() -> None:
    s = summary("baseline", (3, 32, 32))
    assert [layer.params for layer in s.layers if layer.params] == [456, 24, 196_736, 1_290]
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (198_506, 198_494, 12)
    bn = next(layer for layer in s.layers if layer.type == "BatchNorm2d")
    assert (bn.trainable_params, bn.non_trainable_params) == (12, 12)
    assert "Total params: 198,506" in repr(s)
    assert "Non-trainable params: 12" in s.table()


def test_explain_text() -> None:
    text = format_explain(summary("lenet5"))
    for line in [
        "size:   (32 - 5 + 2*0)/1 + 1 = 28",
        "params: 5x5x1x6 + 6 = 156",
        "size:   (28 - 2 + 2*0)/2 + 1 = 14",
        "size:   (14 - 5 + 2*0)/1 + 1 = 10",
        "size:   (5 - 5 + 2*0)/1 + 1 = 1",
    ]:
        assert line in text
    assert "floor((224 - 11 + 2*2)/4) + 1 = 55" in summary("alexnet").explain()
    assert "(32 - 5 + 2*2)/1 + 1 = 32" in summary("baseline").explain()  # Keras "same"


def test_json_document_matches_design() -> None:
    s = summary("resnet18", "3,64,64", num_classes=10)
    doc = json.loads(json.dumps(s.to_dict()))
    assert set(doc) >= TOP_KEYS
    assert doc["model"] == "resnet18" and doc["input_shape"] == [3, 64, 64]
    assert doc["flops"] == 2 * doc["macs"]
    assert doc["total_params"] == doc["trainable_params"] + doc["non_trainable_params"]
    assert doc["trainable_params"] == sum(
        p.numel() for p in create_model("resnet18", num_classes=10).parameters()
    )
    for layer in doc["layers"]:
        assert set(layer) >= LAYER_KEYS
        assert layer["params"] == layer["trainable_params"] + layer["non_trainable_params"]
    assert sum(layer["params"] for layer in doc["layers"]) == doc["total_params"]
    assert sum(layer["macs"] for layer in doc["layers"]) == doc["macs"]
    assert doc["layers"][-1]["output_shape"] == [10]
    # BatchNorm running statistics are the non-trainable part
    bn_channels = sum(
        m.num_features for m in create_model("resnet18").modules() if isinstance(m, nn.BatchNorm2d)
    )
    assert doc["non_trainable_params"] == 2 * bn_channels


def test_googlenet_aux_reported_apart() -> None:
    s = summary("googlenet")
    assert s.trainable_params == 6_624_904  # torchvision's googlenet without aux heads
    assert s.aux_modules == ["aux1", "aux2"]
    # 13,004,888 - 6,624,904 weights, plus the running statistics of the aux heads' BatchNorms
    assert s.aux_params == 13_004_888 - 6_624_904 + 2 * 2 * 128
    assert not any(layer.name.startswith("aux") for layer in s.layers)
    assert "Auxiliary params" in s.table()
    assert s.to_dict()["aux_params"] == s.aux_params


def test_summary_leaves_the_model_as_it_was() -> None:
    model = create_model("resnet20")
    model.train()
    model.layer2.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model, (3, 32, 32))
    assert model.training and not model.layer2.training and model.layer3.training
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_hooks_removed_and_mode_restored_after_an_error() -> None:
    model = create_model("alexnet").train()
    with pytest.raises(ModelError):
        summary(model, (3, 32, 32))
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_shared_module_counted_once() -> None:
    conv = nn.Conv2d(3, 3, 3, padding=1)
    s = summary(nn.Sequential(conv, nn.ReLU(), conv), (3, 8, 8))
    assert s.total_params == 84
    assert [layer.params for layer in s.layers if layer.type == "Conv2d"] == [84, 0]
    assert s.macs == 2 * 8 * 8 * 3 * 27


def test_frozen_parameters_are_non_trainable() -> None:
    model = create_model("lenet5")
    for p in model.features.parameters():
        p.requires_grad_(False)
    s = summary(model)
    assert s.non_trainable_params == 156 + 2416 + 48120
    assert s.trainable_params == 10164 + 850


def test_model_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mynet.py"
    path.write_text(
        "from torch import nn\n"
        "def build(num_classes=10):\n"
        "    head = nn.Linear(4 * 26 * 26, num_classes)\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), head)\n"
        "def not_a_model():\n"
        "    return 42\n"
        "def broken():\n"
        "    raise ValueError('boom')\n"
        "NOT_CALLABLE = 3\n"
    )
    s = summary(f"{path}:build", "1,28,28", num_classes=3)
    assert s.model == f"{path}:build"
    assert s.output_shape == (3,)
    assert s.total_params == 4 * 9 + 4 + 4 * 26 * 26 * 3 + 3
    with pytest.raises(ConfigError, match="expected an input shape"):
        summary(f"{path}:build")  # a plain module has no default input
    for spec, match in [
        (f"{path}:missing", "expected a callable named 'missing'"),
        (f"{path}:NOT_CALLABLE", "expected a callable named 'NOT_CALLABLE'"),
        (
            f"{path}:not_a_model",
            "expected not_a_model\\(\\) to return a torch.nn.Module, received returned='int'",
        ),
        (f"{path}:broken", "calling broken\\(\\) from .* failed: ValueError: boom"),
        (f"{tmp_path}/nope.py:build", "expected an existing Python file"),
    ]:
        with pytest.raises(ModelError, match=match):
            summary(spec, "1,28,28")


def test_bad_arguments() -> None:
    with pytest.raises(ModelError, match="did you mean"):
        summary("resnet5")
    with pytest.raises(ConfigError, match="received input='3,32'"):
        summary("lenet5", "3,32")
    with pytest.raises(ConfigError, match="num_classes=0"):
        summary("lenet5", num_classes=0)
    with pytest.raises(ModelError, match="unknown option 'depth'"):
        summary("vgg16", depth=3)
    with pytest.raises(ModelError, match=r"conv1 \(Conv2d\) expected 3 input channels, received 1"):
        summary(create_model("resnet18"), (1, 32, 32))
    with pytest.raises(ModelError, match=r"expected 120 input features, received 480.*1x28x28"):
        summary("lenet5-paddle", (1, 32, 32))
    # every one of them is one line
    for call in (lambda: summary("resnet5"), lambda: summary("alexnet", "3,32,32")):
        with pytest.raises(CnnlabError) as info:
            call()
        assert "\n" not in str(info.value)


def test_input_channels_follow_input_shape() -> None:
    s = summary("resnet18", (1, 28, 28))
    assert s.layers[0].param_arithmetic == "7x7x1x64 = 3136"


def test_models_overview() -> None:
    rows = model_overview()
    assert [r["name"] for r in rows] == list_models()
    by_name = {r["name"]: r for r in rows}
    assert by_name["vgg16"]["params"] == 138_357_544
    assert by_name["resnet50"]["macs"] == summary("resnet50").macs
    text = format_models(rows)
    assert "138,357,544" in text and "3x224x224" in text and len(text.splitlines()) == len(rows) + 1


@pytest.mark.parametrize("name", ["vgg16", "resnet152"])
def test_large_summaries_render(name: str) -> None:
    """The largest nets summarise, render and serialise (speed: benchmarks/summary_speed.py)."""
    s = summary(name)
    rows = s.to_dict()["layers"]
    assert len(json.loads(json.dumps(s.to_dict()))["layers"]) == len(s.layers) == len(rows)
    assert f"{s.total_params:,}" in s.table()
