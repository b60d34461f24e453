"""Augmented training: applied to training batches only, stored with the run, resumable bitwise."""

import json

import pytest

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit
from run_helpers import assert_same_run, crash_then_resume

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("augment-training")

AUGMENT = "rotation_range=15,width_shift_range=0.1,zoom_range=0.1,horizontal_flip,pca_lighting=0.1"
OPTIONS = {"epochs": 2, "batch_size": 256, "checkpoint_every": 4, "seed": 3, "augment": AUGMENT}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("augmented") / "run"
    fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, **OPTIONS)
    return out


def test_augmentation_is_stored_with_the_run(reference):
    saved = json.loads((reference / "config.json").read_text())
    assert saved["config"]["augment"] == AUGMENT
    meta = saved["meta"]
    assert meta["augment"].startswith("rotation_range=15")
    values, vectors = meta["augment_pca"]["eigenvalues"], meta["augment_pca"]["eigenvectors"]
    assert len(values) == 1 and values[0] > 0 and abs(vectors[0][0]) == pytest.approx(1.0)
    assert load_checkpoint(reference / "last.safetensors").meta["augment"] == meta["augment"]


@pytest.mark.parametrize("crash_after", [5, 15])  # mid-epoch, right after the epoch boundary
def test_crash_and_resume_with_augmentation_is_bitwise_identical(
    tmp_path, cache_dir, reference, monkeypatch, crash_after
):
    out = tmp_path / "run"
    crash_then_resume(monkeypatch, "lenet5", out, cache_dir, OPTIONS, crash_after)
    assert_same_run(out, reference)


def test_augmentation_changes_training_but_never_evaluation(subset, monkeypatch):
    seen = {"train": 0}
    from cnnlab.data.augment import Augmenter

    original = Augmenter.__call__

    def counting(self, images, generator=None):
        seen["train"] += 1
        return original(self, images, generator)

    monkeypatch.setattr(Augmenter, "__call__", counting)
    plain = fit("lenet5", subset, verbose=False, epochs=1, seed=1, val_split=0.1)
    assert seen["train"] == 0
    augmented = fit(
        "lenet5", subset, verbose=False, epochs=1, seed=1, val_split=0.1, augment="cutout=6"
    )
    steps = -(-3600 // 128)
    assert seen["train"] == steps  # once per training batch, not for validation
    assert plain.history["loss"] != augmented.history["loss"]


def test_bad_augment_option_is_a_config_error(subset):
    from cnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="zoom"):
        fit("lenet5", subset, verbose=False, augment="zoom_range=-1")
