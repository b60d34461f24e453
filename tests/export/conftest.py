"""Fixtures of the export tests: the shared trained run exported once, and real MNIST test
digits written as PNG files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def exported_run(trained_run, tmp_path_factory, cache_dir) -> Path:
    """``trained_run`` (LeNet-5 on mnist-subset) exported to ONNX (shared, do not modify)."""
    from cnnlab.export import export_onnx

    path = tmp_path_factory.mktemp("export") / "lenet5.onnx"
    export_onnx(trained_run, path, cache_dir=cache_dir)
    return path


@pytest.fixture(scope="session")
def digit_pngs(subset, tmp_path_factory) -> list[Path]:
    """The first 24 real MNIST test digits of the subset as 28x28 grey-scale PNG files."""
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(24):
        path = folder / f"digit{i:02d}-label{int(subset.test.labels[i])}.png"
        Image.fromarray(subset.test.images[i, 0].numpy()).save(path)
        paths.append(path)
    return paths
