"""Printing data shows counts, shapes and classes, never the tensors."""

from __future__ import annotations

import torch


def test_printing_dataset_splits_does_not_dump_tensors(subset):
    text = repr(subset)
    assert "tensor(" not in text and len(text) < 400, text
    assert "train=ImageDataset(4,000 images of 1x28x28, 10 classes: 0, 1, 2" in text
    assert "test=ImageDataset(1,000 images of 1x28x28" in text
    part = subset.train.subset(torch.arange(3))
    assert (
        str(part) == "ImageDataset(3 images of 1x28x28, 10 classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"
    )
