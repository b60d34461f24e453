"""An exported run gives the classes and accuracy of the run it came from, through
onnxruntime: ``cnnlab export`` on the trained LeNet-5, then ``predict`` and ``evaluate`` on
real MNIST digits with the ``.onnx`` file in place of the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from cnnlab.runs import load_run


def test_export_run_cli_json(cli, trained_run, tmp_path):
    path = tmp_path / "models" / "lenet5.onnx"  # a folder that does not exist yet
    status, out, err = cli("export", trained_run, "--output", path, "--json")
    assert status == 0, err
    report = json.loads(out)  # stdout holds exactly one JSON document: no exporter chatter
    run = load_run(trained_run)
    check = report["verification"]
    assert check["passed"] and check["inputs"] == "test split of mnist-subset"
    assert check["images"] == 8 and check["same_class"] == 8 and check["outside"] == 0
    assert check["max_abs_diff"] <= 1e-5 + 1e-4 * 30  # within the per-logit tolerance
    assert report["exporter"] == "torch.export" and report["opset"] >= 18
    assert report["source"] == f"run {trained_run} (best.safetensors)"

    entries = onnx.load(str(path)).metadata_props
    props = {p.key: p.value for p in entries if p.key.startswith("cnnlab.")}
    assert json.loads(props["cnnlab.classes"]) == list(run.classes)
    assert json.loads(props["cnnlab.image_size"]) == [28, 28]
    assert json.loads(props["cnnlab.network_input"]) == [32, 32]  # padded inside the graph
    normalization = json.loads(props["cnnlab.normalization"])
    assert normalization == {
        "mean": list(run.preprocessing.mean),
        "std": list(run.preprocessing.std),
    }
    assert json.loads(props["cnnlab.input"])["layout"] == "NCHW"
    assert props["cnnlab.version"] and props["cnnlab.data"] == "mnist-subset"
    assert props == report["metadata"]

    status, out, err = cli("export", trained_run, "--output", tmp_path / "again.onnx")
    assert status == 0 and "verified: onnxruntime vs torch on 8 images (test split" in out


def test_predict_onnx_same_classes_as_run(cli, trained_run, exported_run, digit_pngs):
    status, out, err = cli("predict", exported_run, *digit_pngs, "--json", cache=False)
    assert status == 0, err
    from_onnx = json.loads(out)
    status, out, _ = cli("predict", trained_run, *digit_pngs, "--json", cache=False)
    from_run = json.loads(out)
    assert [p["top_k"][0]["class"] for p in from_onnx] == [p["top_k"][0]["class"] for p in from_run]
    for a, b in zip(from_onnx, from_run):
        assert [t["class"] for t in a["top_k"]] == [t["class"] for t in b["top_k"]]
        np.testing.assert_allclose(
            [t["probability"] for t in a["top_k"]],
            [t["probability"] for t in b["top_k"]],
            rtol=1e-4,
            atol=1e-6,
        )
    labels = [p.name.split("label")[1][0] for p in digit_pngs]
    assert sum(p["top_k"][0]["class"] == t for p, t in zip(from_onnx, labels)) >= 20


def test_evaluate_onnx_same_accuracy_as_run(cli, trained_run, exported_run):
    status, out, err = cli("evaluate", exported_run, "--data", "mnist-subset", "--json")
    assert status == 0, err
    from_onnx = json.loads(out)
    _, out, _ = cli("evaluate", trained_run, "--data", "mnist-subset", "--json")
    from_run = json.loads(out)
    assert from_onnx["examples"] == from_run["examples"] == 1000
    assert from_onnx["accuracy"] == from_run["accuracy"] > 0.85
    assert from_onnx["confusion_matrix"] == from_run["confusion_matrix"]
    assert from_onnx["checkpoint"] == str(exported_run)
    assert abs(from_onnx["loss"] - from_run["loss"]) < 1e-4

    # the run's own data by default (named in the file), and flip TTA as the run computes it
    _, out, _ = cli("evaluate", exported_run, "--tta", "flip", "--json")
    flip_onnx = json.loads(out)
    _, out, _ = cli("evaluate", trained_run, "--tta", "flip", "--json")
    assert flip_onnx["data"] == "mnist-subset"
    assert flip_onnx["accuracy"] == json.loads(out)["accuracy"]


def test_evaluate_onnx_refuses_crop_tta(cli, exported_run, expect_error):
    status, _, err = cli("evaluate", exported_run, "--tta", "5crop")
    expect_error(status, err, "expected --tta none, flip or shift for an ONNX model", "5crop")


def _without_cnnlab_metadata(source: Path, target: Path, symbolic_size: bool = False) -> Path:
    """The same graph as a file some other tool made: no cnnlab metadata, and optionally an
    input whose height and width are not fixed in the graph."""
    model = onnx.load(str(source))
    kept = [p for p in model.metadata_props if not p.key.startswith("cnnlab.")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if symbolic_size:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    onnx.save(model, str(target))
    return target


def test_foreign_onnx_predict_needs_classes(cli, exported_run, digit_pngs, tmp_path, expect_error):
    foreign = _without_cnnlab_metadata(exported_run, tmp_path / "foreign.onnx")
    status, _, err = cli("predict", foreign, digit_pngs[0], cache=False)
    line = expect_error(status, err, "--classes NAMES", "no cnnlab metadata", "foreign.onnx")
    assert "--input" not in line  # the graph fixes 1 x 28 x 28

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names = ",".join(words)
    status, out, err = cli(
        "predict", foreign, *digit_pngs, "--classes", names, "--json", cache=False
    )
    assert status == 0, err
    _, out_run, _ = cli("predict", exported_run, *digit_pngs, "--json", cache=False)
    assert [p["top_k"][0]["class"] for p in json.loads(out)] == [
        words[int(p["top_k"][0]["class"])] for p in json.loads(out_run)
    ]


def test_foreign_onnx_with_open_size_needs_input(
    cli, exported_run, digit_pngs, tmp_path, expect_error
):
    foreign = _without_cnnlab_metadata(exported_run, tmp_path / "open.onnx", symbolic_size=True)
    status, _, err = cli("predict", foreign, digit_pngs[0], cache=False)
    expect_error(status, err, "--input C,H,W", "--classes NAMES", "open.onnx")
    classes = ",".join(str(i) for i in range(10))
    status, out, err = cli(
        "predict",
        foreign,
        digit_pngs[0],
        "--input",
        "1,28,28",
        "--classes",
        classes,
        "--json",
        cache=False,
    )
    assert status == 0, err
    _, out_run, _ = cli("predict", exported_run, digit_pngs[0], "--json", cache=False)
    assert json.loads(out)[0]["top_k"][0]["class"] == json.loads(out_run)[0]["top_k"][0]["class"]
    # a size the graph cannot take: onnxruntime's complaint, as one line
    status, _, err = cli(
        "predict",
        foreign,
        digit_pngs[0],
        "--input",
        "1,20,20",
        "--classes",
        classes,
        cache=False,
    )
    expect_error(status, err, "expected an ONNX graph that runs on 1 x 1 x 20 x 20")


def test_foreign_onnx_refused_by_evaluate(cli, exported_run, tmp_path, expect_error):
    foreign = _without_cnnlab_metadata(exported_run, tmp_path / "foreign.onnx")
    status, _, err = cli("evaluate", foreign, "--data", "mnist-subset")
    expect_error(status, err, "expected an ONNX file exported by cnnlab", "no cnnlab metadata")
