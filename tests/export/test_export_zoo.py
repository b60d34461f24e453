"""Every registered model's layers export (tests generated from the registry), at a small
input with an export batch of 2: torch.export (no fallback), verified against onnxruntime at
other batch sizes, BatchNorm folded by default and kept on request.

The models exported are :func:`zoo_inputs.distinct_models`: a model made only of layers,
adjacent pairs and blocks of another (VGG-16 of VGG-13's, ResNet-152 of ResNet-50's) meets no
export step the other has not met, and ResNet-152's capture alone costs 20 s on 2 cores
(tests/models/test_distinct_models.py checks which are left out, and why).

A freshly initialised zoo network is a weak test subject: GoogLeNet's and VGG's small
initial weights shrink every activation until the logits are little more than the last
layer's bias, and eval-mode BatchNorm with its initial statistics (mean 0, variance 1) folds
into an identity. So each network is first made *well-scaled* (weights rescaled to He's
standard deviation, BatchNorm statistics measured on a batch, random BatchNorm scales and
shifts, logits scaled to about unit size), saved as a checkpoint with a real normalisation
and a 2-pixel padding, and that checkpoint is exported: every layer, the padding, the
normalisation and the folding then change the logits, and the test checks that the images get
clearly different logits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from cnnlab.data.preprocess import Preprocessing
from cnnlab.export import export_onnx
from cnnlab.inference import compute_logits
from cnnlab.models import create_model, get_model_entry
from cnnlab.runs import load_run
from cnnlab.training.checkpoint import Checkpoint, save_checkpoint
from zoo_inputs import HEAVY, distinct_models, small_input, zoo_models

CLASSES = ["cat", "dog", "emu"]


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@torch.no_grad()
def _well_scaled_checkpoint(name: str, shape: tuple[int, int, int], path: Path) -> Path:
    """A checkpoint of ``name`` whose every layer matters to the logits (module docstring);
    stored images are 4 pixels smaller than ``shape`` (padded back inside the graph)."""
    c, h, w = shape
    torch.manual_seed(0)
    with torch.device("meta"):  # every tensor is drawn below: the network's own init is not
        model = create_model(name, num_classes=len(CLASSES), in_channels=c)
    model.to_empty(device="cpu")
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            module.weight.normal_(0.0, math.sqrt(2.0 / fan_in))  # He's standard deviation
            if module.bias is not None:
                module.bias.uniform_(-(fan_in**-0.5), fan_in**-0.5)
        elif isinstance(module, nn.BatchNorm2d):  # identity while its statistics are measured
            module.weight.fill_(1.0)
            module.bias.zero_()
        else:  # no other layer holds a tensor: every one is drawn here
            assert not [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    prep = Preprocessing((0.45,) * c, (0.25,) * c, (h - 4, w - 4), (h, w), c)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # the statistics of the calibration batch, exactly
    pixels = torch.randint(0, 256, (16, c, h - 4, w - 4), dtype=torch.uint8)
    model.train()(prep(pixels))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.2)
    # logits of about unit size: deep residual stacks add up to thousands, and a logit near 0
    # in such a row would carry an absolute rounding error above atol on some CPUs
    head = model.get_classifier()
    scale = compute_logits(model, pixels, prep).std().item()
    head.weight.div_(scale)
    if head.bias is not None:  # airbench94's head has none
        head.bias.div_(scale)
    meta = {
        "model": model.cnnlab_spec,
        "classes": CLASSES,
        "preprocessing": prep.to_dict(),
        "input_shape": list(shape),
    }
    save_checkpoint(path, Checkpoint(model.eval().state_dict(), meta))
    return path


#: BatchNorm layers that follow a pooling, not a convolution, stay in the graph when the rest
#: are folded: airbench94's first norm of each of its 3 blocks (conv -> max pool -> BatchNorm).
UNFOLDABLE = {"airbench94": 3}


@pytest.mark.parametrize("name", zoo_models(distinct_models()))
def test_every_distinct_model_exports(name: str, tmp_path: Path) -> None:
    shape = small_input(name)
    checkpoint = _well_scaled_checkpoint(name, shape, tmp_path / f"{name}.safetensors")
    path = tmp_path / f"{name}.onnx"
    try:
        report = export_onnx(checkpoint, path, images=3)
        assert report.exporter == "torch.export" and report.fallback_reason is None
        # exported with a batch of 2, verified at batch 3 and batch 1: the batch is dynamic
        assert report.verification.passed and report.verification.images == 3
        assert report.batch_of_one.passed and report.batch_of_one.images == 1
        assert report.verification.inputs == "random pixels; the checkpoint names no dataset"
        assert report.batchnorm == "folded"
        assert report.batchnorm_nodes == UNFOLDABLE.get(name, 0)
        assert path.stat().st_size == report.bytes

        # the interface and metadata of the file on disk; a heavy model's graph is not run
        # again (below), so onnxruntime loads it without optimising 100M+ weights
        options = ort.SessionOptions()
        if name in HEAVY:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (graph_input,), (graph_output,) = session.get_inputs(), session.get_outputs()
        c, h, w = shape
        assert graph_input.name == "pixels" and graph_output.name == "logits"
        assert graph_input.shape == ["batch", c, h - 4, w - 4]  # padded to h x w inside
        assert graph_output.shape == ["batch", len(CLASSES)]
        props = session.get_modelmeta().custom_metadata_map
        assert json.loads(props["cnnlab.model"])["name"] == name
        assert json.loads(props["cnnlab.classes"]) == CLASSES
        assert props["cnnlab.opset"] == str(report.opset)
        if name == "googlenet":  # eval-mode graph: the training-only auxiliary heads are gone
            names = [init.name for init in onnx.load(str(path)).graph.initializer]
            assert names and not any("aux" in n for n in names)
        if name in HEAVY:  # above 20M weights: export_onnx has just compared the file with it
            return

        # the file on disk, at a batch size the export never saw, against the checkpoint
        run = load_run(checkpoint)
        generator = torch.Generator().manual_seed(1)
        pixels = torch.randint(0, 256, (5, c, h - 4, w - 4), dtype=torch.uint8, generator=generator)
        (logits,) = session.run(["logits"], {"pixels": pixels.float().div(255).numpy()})
        expected = compute_logits(run.model, pixels, run.preprocessing)
        np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-4, atol=1e-5)
        spread = (expected.max(0).values - expected.min(0).values).max().item()
        assert spread > 1e-2, spread  # the images get clearly different logits
    finally:  # VGG's checkpoint and ONNX file are ~500 MB each
        path.unlink(missing_ok=True)
        checkpoint.unlink()


@pytest.mark.parametrize("name", ["resnet20", "baseline"])
def test_batchnorm_kept_on_request(name: str, tmp_path: Path) -> None:
    """``fold_bn=False`` keeps one BatchNormalization node per BatchNorm2d layer (ResNet's
    option-A shortcuts, the Keras-style baseline's eps=1e-3), still verified."""
    shape = get_model_entry(name).default_input
    checkpoint = _well_scaled_checkpoint(name, shape, tmp_path / f"{name}.safetensors")
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(checkpoint, path, images=3, fold_bn=False)
    assert report.batchnorm == "kept" and report.verification.passed
    kept = sum(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    assert kept == report.batchnorm_nodes == _batchnorms(load_run(checkpoint).model) > 0
    assert report.metadata["cnnlab.batchnorm"] == "kept"
