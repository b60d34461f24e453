"""Bad input to ``cnnlab export`` and to the ONNX paths of predict/evaluate: one line, exit
status 2, nothing half-written; and the exporter's fallback, stated in the output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab import registry


@torch.library.custom_op("cnnlab_test::wobble", mutates_args=())
def wobble(x: torch.Tensor) -> torch.Tensor:
    """An op without an ONNX translation (neither exporter knows it)."""
    return x * 2


@wobble.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Wobble(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wobble(x)


class Branchy(nn.Module):
    """Python control flow on a tensor's value: torch.export cannot capture it, a TorchScript
    trace records the branch taken (pixels in [0, 1] always take the first one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() >= 0:
            return x * 2
        return x - 1


class SmallNet(nn.Module):
    """conv, relu, ``layer``, linear on 1x8x8 inputs."""

    def __init__(self, layer: nn.Module, num_classes: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        self.default_input_shape = (in_channels, 8, 8)
        self.features = nn.Sequential(nn.Conv2d(in_channels, 2, 3), nn.ReLU(), layer)
        self.classifier = nn.Linear(2 * 6 * 6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # N x 72


@pytest.fixture
def test_models(monkeypatch):
    """Register ``wobbly`` and ``branchy`` for one test (removed afterwards)."""
    for name, layer in (("wobbly", Wobble), ("branchy", Branchy)):

        def factory(num_classes: int = 3, in_channels: int = 1, layer=layer) -> nn.Module:
            return SmallNet(layer(), num_classes, in_channels)

        entry = registry.ModelEntry(name, factory, (1, 8, 8), 3, f"test model {name}")
        monkeypatch.setitem(registry._REGISTRY, name, entry)


def _nothing_in(folder: Path) -> None:
    assert list(folder.iterdir()) == [], list(folder.iterdir())  # no file, no temporary file


def test_unexportable_model_names_the_layer(cli, expect_error, test_models, tmp_path):
    status, out, err = cli("export", "wobbly", "--output", tmp_path / "w.onnx")
    line = expect_error(status, err, "expected a model the ONNX exporters can export")
    assert "wobbly" in line and "layer features.2 (Wobble)" in line
    assert "cnnlab_test.wobble" in line and "TorchScript exporter failed too" in line
    assert out == ""
    _nothing_in(tmp_path)


def test_fallback_to_torchscript_is_stated(cli, test_models, tmp_path):
    path = tmp_path / "b.onnx"
    status, out, err = cli("export", "branchy", "--output", path, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["exporter"] == "torchscript" and report["verification"]["passed"]
    assert report["fallback_reason"].startswith("torch.export failed at layer features.2 (Branchy)")
    assert "data-dependent" in report["fallback_reason"]
    assert any(w.startswith("TracerWarning") for w in report["warnings"])
    assert json.loads(report["metadata"]["cnnlab.input"])["name"] == "pixels"
    assert path.is_file()

    status, out, _ = cli("export", "branchy", "--output", path)
    assert status == 0 and "torchscript (fallback: torch.export failed at layer features.2" in out
    assert "exporter warning: TracerWarning" in out


def test_mismatch_is_one_line_and_writes_nothing(cli, expect_error, tmp_path):
    """With no tolerance at all, folding BatchNorm's scale into the convolutions (different
    rounding) is already a mismatch: the check is real, and refuses the file."""
    status, _, err = cli(
        "export", "resnet20", "--output", tmp_path / "r.onnx", "--rtol", "0", "--atol", "0"
    )
    line = expect_error(status, err, "expected onnxruntime to reproduce torch within rtol=0")
    assert "largest difference of" in line and "at logits[" in line
    assert "nothing was written" in line
    _nothing_in(tmp_path)


@pytest.mark.parametrize(
    ("make_output", "fragments"),
    [
        (lambda d: d / "model.txt", ["expected --output ending in .onnx"]),
        (lambda d: d / "folder.onnx", ["expected --output to name a file", "the folder"]),
        (lambda d: d / "a-file" / "model.onnx", ["expected --output inside a folder", "is a file"]),
        (lambda d: Path("/proc/cnnlab-model.onnx"), ["expected a writable --output path"]),
    ],
    ids=["suffix", "folder", "under-a-file", "proc"],
)
def test_unwritable_output(cli, expect_error, tmp_path, make_output, fragments):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "folder.onnx").mkdir()
    before = sorted(os.listdir(tmp_path))
    output = make_output(tmp_path)
    status, _, err = cli("export", "lenet5", "--output", output)
    expect_error(status, err, *fragments)
    assert sorted(os.listdir(tmp_path)) == before


def test_damaged_checkpoint(cli, expect_error, run_copy, tmp_path):
    best = run_copy / "best.safetensors"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    out = tmp_path / "out"
    out.mkdir()
    status, _, err = cli("export", run_copy, "--output", out / "m.onnx")
    expect_error(status, err, "expected a cnnlab checkpoint (safetensors)", "best.safetensors")
    _nothing_in(out)


def test_options_that_do_not_fit(cli, expect_error, trained_run, tmp_path):
    status, _, err = cli("export", trained_run, "--output", tmp_path / "m.onnx", "--input", "1,9,9")
    expect_error(status, err, "expected --input only with a model name", str(trained_run))
    status, _, err = cli("export", "lenet5", "--output", tmp_path / "m.onnx", "--opset", "17")
    expect_error(status, err, "expected --opset from 18 to", "received opset=17")
    status, _, err = cli("export", "lenet5", "--output", tmp_path / "m.onnx", "--input", "1,20,20")
    expect_error(status, err, "input too small", "features.6")
    status, _, err = cli("export", "lenet-5", "--output", tmp_path / "m.onnx")
    expect_error(status, err, "unknown model 'lenet-5'", "did you mean")
    status, _, err = cli("export", "runs/missing", "--output", tmp_path / "m.onnx")
    expect_error(status, err, "runs/missing (no such path)")
    status, _, err = cli("export", "lenet5", "--output", tmp_path / "m.onnx", "--images", "1")
    expect_error(status, err, "expected at least 2 verification images")
    _nothing_in(tmp_path)


def test_opset_is_recorded(cli, tmp_path):
    status, out, err = cli(
        "export", "lenet5-paddle", "--output", tmp_path / "m.onnx", "--opset", "18", "--json"
    )
    assert status == 0, err
    report = json.loads(out)
    assert report["opset"] == 18 and report["metadata"]["cnnlab.opset"] == "18"
    import onnx

    model = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"this is not an ONNX model", lambda data: data[: len(data) // 3]],
    ids=["not-onnx", "truncated"],
)
def test_corrupt_onnx(cli, expect_error, exported_run, digit_pngs, tmp_path, damage):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(damage(exported_run.read_bytes()))
    status, out, err = cli("predict", bad, digit_pngs[0], cache=False)
    expect_error(status, err, "expected an ONNX model onnxruntime can load", "bad.onnx")
    assert out == ""
    status, _, err = cli("evaluate", bad)
    expect_error(status, err, "expected an ONNX model onnxruntime can load")
    status, _, err = cli("predict", tmp_path / "missing.onnx", digit_pngs[0], cache=False)
    expect_error(status, err, "missing.onnx (no such file)")


def test_predict_flags_for_foreign_files_only(
    cli, expect_error, trained_run, exported_run, digit_pngs
):
    status, _, err = cli("predict", trained_run, digit_pngs[0], "--classes", "a,b", cache=False)
    expect_error(status, err, "expected an .onnx file with --input/--classes")
    classes = ",".join("abcdefghij")
    status, _, err = cli("predict", exported_run, digit_pngs[0], "--classes", classes, cache=False)
    expect_error(status, err, "expected the classes", "received --classes a,b,c")
