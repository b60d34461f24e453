"""Every registered model exports (tests generated from the registry), at a small input with
a batch of 2: torch.export (no fallback), verified against onnxruntime, dynamic batch,
BatchNorm folded by default and kept on request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from cnnlab.analysis import min_input_size
from cnnlab.export import export_onnx
from cnnlab.registry import create_model, get_model_entry, list_models

ALL_MODELS = list_models()


def _small_input(name: str) -> tuple[int, int, int]:
    """The model's default input if it is at most 32x32, else the smallest of 32x32 and the
    smallest size it accepts (alexnet 63, nin 39): adaptive pools then pool tiny maps."""
    c, h, w = get_model_entry(name).default_input
    if h <= 32 and w <= 32:
        return c, h, w
    size = max(32, min_input_size(name) or 32)
    return c, size, size


def _batchnorms(name: str) -> int:
    with torch.device("meta"):
        return sum(isinstance(m, nn.BatchNorm2d) for m in create_model(name).modules())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_registered_model_exports(name: str, tmp_path: Path) -> None:
    shape = _small_input(name)
    path = tmp_path / f"{name}.onnx"
    torch.manual_seed(0)
    report = export_onnx(name, path, input_shape=shape, num_classes=3, images=3)
    try:
        assert report.exporter == "torch.export" and report.fallback_reason is None
        # verified at batch 3 and batch 1, exported with a batch of 2: the batch is dynamic
        assert report.verification.passed and report.verification.images == 3
        assert report.batch_of_one.passed and report.batch_of_one.images == 1
        assert report.verification.inputs.startswith("random pixels")
        assert report.batchnorm == "folded" and report.batchnorm_nodes == 0
        assert path.stat().st_size == report.bytes

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (graph_input,), (graph_output,) = session.get_inputs(), session.get_outputs()
        assert graph_input.name == "pixels" and graph_output.name == "logits"
        assert graph_input.shape == ["batch", *shape] and graph_output.shape == ["batch", 3]
        props = session.get_modelmeta().custom_metadata_map
        assert json.loads(props["cnnlab.model"])["name"] == name
        assert props["cnnlab.opset"] == str(report.opset)
        if name == "googlenet":  # eval-mode graph: the training-only auxiliary heads are gone
            names = [init.name for init in onnx.load(str(path)).graph.initializer]
            assert names and not any("aux" in n for n in names)

        # against the torch model the file came from, built again from the same seed
        x = torch.rand(4, *shape)
        (logits,) = session.run(["logits"], {"pixels": x.numpy()})
        torch.manual_seed(0)
        reference = create_model(name, num_classes=3, in_channels=shape[0]).eval()
        with torch.no_grad():
            expected = reference(x).numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    finally:
        path.unlink(missing_ok=True)  # VGG files are ~500 MB each


@pytest.mark.parametrize("name", ["resnet20", "baseline"])
def test_batchnorm_kept_on_request(name: str, tmp_path: Path) -> None:
    """``fold_bn=False`` keeps one BatchNormalization node per BatchNorm2d layer (ResNet's
    option-A shortcuts, the Keras-style baseline's eps=1e-3), still verified."""
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(name, path, num_classes=4, images=2, fold_bn=False)
    assert report.batchnorm == "kept" and report.verification.passed
    kept = sum(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    assert kept == report.batchnorm_nodes == _batchnorms(name) > 0
    assert report.metadata["cnnlab.batchnorm"] == "kept"
