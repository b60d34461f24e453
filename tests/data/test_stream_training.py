"""Training on a streamed folder: the same run as in memory (same seed, same batches, bitwise),
resumable after a crash, recorded in the run so that evaluation streams too."""

import json

import pytest
import torch

from cnnlab.data.datasets import load_dataset
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.inputs import DataSelection, load_split
from cnnlab.runs import load_run
from cnnlab.training.run import fit
from cnnlab.transfer import finetune
from run_helpers import assert_same_run, crash_then_resume, metrics

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("stream-training")

AUGMENTED = {
    "augment": "rotation_range=10,zoom_range=0.1,horizontal_flip,pca_lighting=0.1",
    "val_split": 0.2,
    "channels": 3,
    "image_size": [28, 28],
    "batch_size": 16,
}
SELECTED = {"classes": ["0", "7"], "per_class": 20, "batch_size": 8, "schedule": "constant"}
RESUMED = {"epochs": 2, "batch_size": 16, "checkpoint_every": 2, "seed": 5, "stream": True}


def _config(run):
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize("options", [AUGMENTED, SELECTED], ids=["augment-pca-val", "selection"])
def test_streamed_and_in_memory_training_are_the_same_run(digit_folder, tmp_path, options):
    runs = {}
    for stream in (True, False):
        runs[stream] = tmp_path / f"stream-{stream}"
        fit(
            "lenet5",
            str(digit_folder),
            out=runs[stream],
            cache_dir=tmp_path / "cache",
            verbose=False,
            epochs=2,
            seed=4,
            stream=stream,
            workers=2,
            **options,
        )
    assert_same_run(runs[True], runs[False])
    streamed, held = _config(runs[True])["meta"], _config(runs[False])["meta"]
    assert streamed["data_options"]["stream"] is True
    assert held["data_options"]["stream"] is False
    assert streamed["preprocessing"] == held["preprocessing"]  # the same normalisation
    assert streamed.get("augment_pca") == held.get("augment_pca")  # the same PCA
    assert len(metrics(runs[True])["epoch"]) == 2


@pytest.fixture(scope="module")
def streamed_reference(tmp_path_factory, digit_folder):
    root = tmp_path_factory.mktemp("streamed")
    fit("lenet5", str(digit_folder), out=root / "run", cache_dir=root, verbose=False, **RESUMED)
    return root


@pytest.mark.parametrize("crash_after", [3, 5])  # mid-epoch; right after the epoch boundary
def test_crash_and_resume_of_a_streamed_run_is_bitwise_identical(
    tmp_path, digit_folder, streamed_reference, monkeypatch, crash_after
):
    out = tmp_path / "run"
    cache = streamed_reference
    crash_then_resume(
        monkeypatch, "lenet5", out, cache, RESUMED, crash_after, data=str(digit_folder)
    )
    assert_same_run(out, streamed_reference / "run")
    assert _config(out)["meta"]["data_options"]["stream"] is True


def test_a_folder_too_large_for_memory_streams_and_its_run_reloads_streamed(digit_folder, tmp_path):
    cache = tmp_path / "cache"
    splits = load_dataset(str(digit_folder), cache, image_size=(32, 32), channels=1, max_bytes=1)
    assert splits.train.streamed
    run = tmp_path / "run"
    fit("lenet5", splits, out=run, cache_dir=cache, verbose=False, epochs=1, batch_size=16)
    assert _config(run)["meta"]["data_options"]["stream"] is True  # chosen, then recorded
    loaded = load_run(run)
    _, test = load_split(loaded, DataSelection(), cache)
    assert test.streamed  # evaluate, report, confusion ... stream the run's data too
    streamed = evaluate(loaded, cache_dir=cache, tta="flip")
    held = evaluate(loaded, selection=DataSelection(stream=False), cache_dir=cache, tta="flip")
    assert streamed.to_dict() == held.to_dict()
    assert streamed.examples == 9 and streamed.tta["views"] == 2


def test_finetune_with_cached_features_on_a_streamed_folder(digit_folder, tmp_path):
    cache = tmp_path / "cache"
    source = tmp_path / "source"
    fit("lenet5", str(digit_folder), out=source, cache_dir=cache, verbose=False, epochs=1)
    options = {"epochs": 2, "cache_dir": cache, "verbose": False, "cache_features": True}
    held = finetune(source, str(digit_folder), out=tmp_path / "held", stream=False, **options)
    streamed = finetune(source, str(digit_folder), out=tmp_path / "a", stream=True, **options)
    entries = sorted((cache / "features").glob("*.safetensors"))
    assert len(entries) == 4  # train and validation features, in memory and streamed
    stamps = [p.stat().st_mtime_ns for p in entries]
    again = finetune(source, str(digit_folder), out=tmp_path / "b", stream=True, **options)
    assert [p.stat().st_mtime_ns for p in entries] == stamps  # reused, not recomputed
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert streamed.history[key] == held.history[key] == again.history[key]
    a, b = load_run(tmp_path / "a").model.state_dict(), load_run(tmp_path / "held").model
    for name, value in b.state_dict().items():
        assert torch.equal(a[name], value), name
