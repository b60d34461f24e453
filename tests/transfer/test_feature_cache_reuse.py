"""``--cache-features``: features computed once, reused, invalidated when anything changes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cnnlab.data.preprocess import Preprocessing
from cnnlab.models import create_model
from cnnlab.runs import load_run
from cnnlab.training.features import cached_features, feature_key
from cnnlab.transfer import finetune

TARGET = "5,6,7,8,9"


def _finetune(source, out, cache_dir, **options):
    return finetune(
        source,
        "mnist-subset",
        out=out,
        classes=TARGET,
        epochs=2,
        cache_dir=cache_dir,
        verbose=False,
        **options,
    )


def test_cached_training_matches_training_through_the_frozen_backbone(
    source_run, tmp_path, cache_dir
):
    features = cache_dir / "features"
    plain = _finetune(source_run, tmp_path / "plain", cache_dir, freeze="all")
    cached = _finetune(source_run, tmp_path / "cached", cache_dir, cache_features=True)
    files = {p: p.stat().st_mtime_ns for p in features.glob("*.safetensors")}
    assert len(files) >= 2  # train and validation split
    again = _finetune(source_run, tmp_path / "again", cache_dir, cache_features=True)
    assert {p: p.stat().st_mtime_ns for p in features.glob("*.safetensors")} == files  # reused
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert again.history[key] == cached.history[key]  # same features, same training
    a, b = load_run(tmp_path / "plain").model, load_run(tmp_path / "cached").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-4), name
    for key in ("loss", "val_accuracy"):
        assert plain.history[key] == pytest.approx(cached.history[key], abs=1e-3)
    run = load_run(tmp_path / "cached")
    assert not any(p.requires_grad for p in run.model.features.parameters())


def test_the_key_changes_with_weights_preprocessing_and_data(subset):
    net = create_model("lenet5", num_classes=5)
    prep = Preprocessing((0.13,), (0.31,), (28, 28), (32, 32), 1)
    images = subset.test.images[:50]
    key = feature_key(net, prep, images)
    assert feature_key(net, prep, images.clone()) == key
    net.reset_classifier(3)  # the classifier does not change the features
    assert feature_key(net, prep, images) == key
    assert feature_key(net, dataclasses.replace(prep, std=(0.3,)), images) != key
    assert feature_key(net, prep, subset.test.images[1:51]) != key
    with torch.no_grad():
        net.features[0].weight[0, 0, 0, 0] += 1e-3
    assert feature_key(net, prep, images) != key


def test_a_damaged_entry_is_recomputed(subset, tmp_path):
    net = create_model("lenet5").eval()
    prep = Preprocessing((0.13,), (0.31,), (28, 28), (32, 32), 1)
    images = subset.test.images[:20]
    first, path, hit = cached_features(net, images, prep, tmp_path)
    assert not hit and first.shape == (20, 120)
    path.write_bytes(b"broken")
    again, _, hit = cached_features(net, images, prep, tmp_path)
    assert not hit and torch.equal(first, again)
    third, _, hit = cached_features(net, images, prep, tmp_path)
    assert hit and torch.equal(first, third)
    assert not list(tmp_path.rglob("*.tmp"))
