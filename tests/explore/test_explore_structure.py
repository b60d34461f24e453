"""How the explorer sees a network's wiring: residual additions and Inception branches."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from cnnlab.explore.api import create_app
from cnnlab.explore.explorer import NO_TRANSFORM, Explorer
from cnnlab.explore.layers import layer_rows
from cnnlab.explore.structure import Source, trace_structure
from cnnlab.explore.target import load_target
from cnnlab.models import create_model
from explore_helpers import drawing, stroke_of_one

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("explore-structure")


@pytest.fixture(scope="module")
def resnet20() -> Explorer:
    """ResNet-20 (CIFAR layout), untrained: weights from seed 0."""
    return Explorer(load_target("resnet20"))


def test_residual_additions_of_resnet20(resnet20):
    info = resnet20.info()
    rows = info["layers"]
    merges = info["merges"]
    assert len(merges) == 9 and all(m["op"] == "add" for m in merges)  # 3 stages x 3 blocks
    assert all(m["label"] == "residual addition" for m in merges)
    containers = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)]
    assert [m["container"] for m in merges] == containers
    for merge in merges:
        block = merge["container"]
        main, shortcut = merge["lanes"]
        # the main path: conv1, bn1, relu, conv2, bn2 of the block, in order
        names = [(rows[i]["name"], rows[i]["call"]) for i in main]
        assert names == [
            (f"{block}.conv1", 0),
            (f"{block}.bn1", 0),
            (f"{block}.relu", 0),
            (f"{block}.conv2", 0),
            (f"{block}.bn2", 0),
        ]
        if block.endswith(".0") and block != "layer1.0":  # option A shortcut: subsample + pad
            assert [rows[i]["name"] for i in shortcut] == [f"{block}.downsample"]
        else:  # identity: the block's input itself, from outside the block
            assert shortcut == []
            outside = rows[merge["inputs"][1]["index"]]["name"]
            assert not outside.startswith(f"{block}.")
        # the block's second ReLU reads the sum
        after = rows[merge["position"]]
        assert (after["name"], after["call"]) == (f"{block}.relu", 1)
        assert after["inputs"] == [{"kind": "merge", "index": merge["index"], "via": []}]
    fc = rows[-1]
    assert fc["name"] == "fc" and fc["inputs"][0]["via"] == ["flatten"]


def test_maps_of_a_module_called_twice_are_its_two_calls(resnet20):
    """layer1.0.relu runs on the main path and after the addition: two rows, two outputs."""
    result = resnet20.forward(resnet20_drawing(), maps=True, layers=None, max_channels=1, raw=True)
    rows = [r for r in result["layers"] if r["name"] == "layer1.0.relu"]
    assert [r["call"] for r in rows] == [0, 1]
    assert rows[0]["raw"] != rows[1]["raw"]


def resnet20_drawing():
    from cnnlab.explore.inputs import parse_input

    return parse_input(drawing(stroke_of_one()))


def test_inception_branches_of_googlenet():
    model = create_model("googlenet", num_classes=10).eval()
    _, rows = layer_rows(model, (3, 64, 64))
    structure = trace_structure(model, (3, 64, 64), rows)
    merges = structure.merges
    names = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    assert [m.container for m in merges] == [f"inception{n}" for n in names]
    for merge in merges:
        assert merge.op == "concatenate" and merge.container_type == "Inception"
        assert merge.label == "concatenation of 4 branches"
        assert len(merge.lanes) == 4
        for k, lane in enumerate(merge.lanes, start=1):
            assert lane and all(
                rows[i].name.startswith(f"{merge.container}.branch{k}.") for i in lane
            )
            # each branch starts from the module's input, which comes from outside it
            first = structure.inputs[lane[0]]
            assert first[0].kind in ("layer", "merge")
            if first[0].kind == "layer":
                assert not rows[first[0].index].name.startswith(f"{merge.container}.")
        widths = sum(rows[i[-1]].output_shape[0] for i in merge.lanes)
        assert merge.output_shape[0] == widths  # concatenated along the channels
    # the layer after an Inception module reads the concatenation
    after = rows[merges[0].position]
    assert structure.inputs[after.index] == [Source("merge", 0)]


def test_untrained_registered_model_is_served(resnet20):
    with TestClient(create_app(Explorer(load_target("lenet5")))) as client:
        info = client.get("/api/model").json()
        assert info["trained"] is False and info["model"] == "lenet5" and info["digits"]
        examples = client.get("/api/examples").json()
        assert examples["available"] is False and "untrained" in examples["reason"]
        response = client.post("/api/forward", json={"input": drawing(stroke_of_one())})
        assert response.status_code == 200
        assert len(response.json()["layers"]) == len(info["layers"])
        refused = client.post("/api/forward", json={"input": {"kind": "example", "index": 0}})
        assert refused.status_code == 400 and "test split" in refused.json()["error"]


def test_unit_of_a_padded_conv_then_batchnorm_and_relu(resnet20):
    """A corner unit of ResNet-20's first block: its 3x3 kernel hangs over the zero padding,
    there is no bias, and BatchNorm then ReLU act on its value alone."""
    spec = resnet20_drawing()
    row = resnet20.row("layer1.0.conv1")
    unit = resnet20.unit(spec, NO_TRANSFORM, row, channel=3, y=0, x=0)
    conv = unit["conv"]
    assert unit["kind"] == "conv" and conv["padding"] == [1, 1] and conv["bias"] is None
    assert len(conv["channels"]) == 16
    patch = np.array(conv["patch"])  # 16 x 3 x 3; row 0 and column 0 are the padding
    assert not patch[:, 0, :].any() and not patch[:, :, 0].any()
    assert conv["z"] == pytest.approx(unit["value"], rel=1e-4, abs=1e-5)
    bn, relu = unit["then"]
    assert (bn["layer"], bn["type"], relu["layer"], relu["type"]) == (
        "layer1.0.bn1",
        "BatchNorm2d",
        "layer1.0.relu",
        "ReLU",
    )
    assert bn["input"] == pytest.approx(unit["value"], abs=1e-6)
    assert bn["result"] == pytest.approx(bn["value"], rel=1e-4, abs=1e-5)  # the formula holds
    assert relu["input"] == pytest.approx(bn["value"], abs=1e-6)
    assert relu["value"] == pytest.approx(max(0.0, bn["value"]), abs=1e-6)


def test_unit_after_a_residual_addition_reads_the_sum(resnet20):
    spec = resnet20_drawing()
    second_relu = resnet20.row("layer1.0.relu", call=1)
    unit = resnet20.unit(spec, NO_TRANSFORM, second_relu, channel=0, y=5, x=7)
    assert unit["kind"] == "elementwise" and unit["source"]["kind"] == "merge"
    step = unit["step"]
    assert step["value"] == pytest.approx(max(0.0, step["input"]), abs=1e-6)
