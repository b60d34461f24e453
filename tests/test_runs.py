"""cnnlab.runs: RunMeta reads what cnnlab wrote before it had a version, names the field of
malformed metadata in one line, and round-trips; load_run and resume work on such runs."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import CheckpointError
from cnnlab.runs import (
    META_VERSION,
    ClassSelection,
    FinetuneInfo,
    ModelSpec,
    RunMeta,
    ThreadsUsed,
    load_run,
    read_run_meta,
)
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnlab.training.run import fit, resume

PREPROCESSING = {
    "mean": [0.1307],
    "std": [0.3081],
    "image_size": [28, 28],
    "input_size": [32, 32],
    "channels": 1,
}

#: The metadata of a LeNet-5 run on the MNIST subset exactly as cnnlab wrote it before RunMeta
#: (no "version"; a fine-tuned, augmented run on a class selection has every optional field).
OLD_META = {
    "model": {"name": "lenet5", "num_classes": 10, "in_channels": 1, "kwargs": {}},
    "classes": list("0123456789"),
    "preprocessing": PREPROCESSING,
    "input_shape": [1, 32, 32],
    "data": "mnist-subset",
    "channels_last": True,
    "data_options": {},
}
OLD_FINETUNED_META = {
    **OLD_META,
    "model": {"name": "lenet5", "num_classes": 2, "in_channels": 1, "kwargs": {}},
    "classes": ["5", "6"],
    "selection": {"classes": ["5", "6"], "per_class": 100},
    "frozen": ["features.0.weight", "features.0.bias"],
    "finetune": {
        "from": "/runs/lenet5",
        "source_checkpoint": "/runs/lenet5/best.safetensors",
        "source_classes": ["0", "1", "2", "3", "4"],
        "freeze": "1",
        "frozen_params": 156,
        "trainable_params": 61000,
    },
    "augment": "rotation_range=10,pca_lighting=0.1",
    "augment_pca": {"eigenvalues": [0.5], "eigenvectors": [[1.0]]},
    "data_options": {"image_size": [28, 28], "channels": 1, "strict": False, "stream": True},
}


def _json(data: dict) -> dict:
    """``data`` as it reads back from a JSON file."""
    return json.loads(json.dumps(data))


#: What today's writer adds to an old run's metadata: a version, and the defaults of the fields
#: added since (fp32 precision, one process).
NEW_DEFAULTS = {"version": 1, "precision": "fp32", "world_size": 1}


def test_metadata_without_a_version_reads_as_version_1_and_round_trips():
    for old in (OLD_META, OLD_FINETUNED_META):
        meta = RunMeta.from_dict(old)
        assert meta.version == META_VERSION == 1
        assert _json(meta.to_dict()) == {**NEW_DEFAULTS, **old}  # the same layout, and a version
        assert RunMeta.from_dict(meta.to_dict()) == meta
        assert meta.threads is None  # not recorded before: optional
    meta = RunMeta.from_dict(OLD_FINETUNED_META)
    assert meta.model == ModelSpec("lenet5", 2, 1, {})
    assert meta.selection == ClassSelection(("5", "6"), 100)
    assert meta.finetune.source == "/runs/lenet5" and meta.finetune.frozen_params == 156
    assert meta.frozen == ("features.0.weight", "features.0.bias")
    assert meta.preprocessing == Preprocessing((0.1307,), (0.3081,), (28, 28), (32, 32), 1)


def test_checkpoint_fields_round_trip():
    best = {**OLD_META, "epoch": 3, "val_accuracy": 0.975}
    last = {**OLD_META, "epoch": 2, "step": 17}
    assert RunMeta.from_dict(best).scores == {"val_accuracy": 0.975}
    assert RunMeta.from_dict(best).epoch == 3 and RunMeta.from_dict(last).step == 17
    for data in (best, last):
        assert _json(RunMeta.from_dict(data).to_dict()) == {**NEW_DEFAULTS, **data}
    full = RunMeta(
        model=ModelSpec("vgg11", 5, 3, {"batch_norm": True}),
        classes=("a", "b", "c", "d", "e"),
        preprocessing=Preprocessing((0.5, 0.4, 0.3), (0.2, 0.2, 0.2), (40, 40), (40, 40), 3),
        input_shape=(3, 40, 40),
        data="/data/photos",
        selection=ClassSelection(None, 5),
        frozen=("features.0.weight",),
        finetune=FinetuneInfo("/r", "/r/best.safetensors", ("x", "y"), "all", 10, 20),
        augment="horizontal_flip",
        threads=ThreadsUsed(2, "automatic"),
        epoch=4,
        step=0,
        scores={"val_loss": 0.25},
    )
    assert RunMeta.from_dict(_json(full.to_dict())) == full


def _without(data: dict, dotted: str) -> dict:
    data = copy.deepcopy(data)
    *parents, name = dotted.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    del target[name]
    return data


def _with(data: dict, dotted: str, value: object) -> dict:
    data = copy.deepcopy(data)
    *parents, name = dotted.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    target[name] = value
    return data


@pytest.mark.parametrize(
    "field", ["classes", "input_shape", "preprocessing", "model.num_classes", "preprocessing.std"]
)
def test_a_missing_field_is_named_in_one_line(field):
    with pytest.raises(CheckpointError) as error:
        RunMeta.from_dict(_without(OLD_META, field), "run/best.safetensors")
    message = str(error.value)
    assert "\n" not in message and f"'{field}'" in message and "run/best.safetensors" in message
    assert message.startswith("expected run metadata field")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("classes", "0123456789"),
        ("classes", []),
        ("input_shape", [1, 32]),
        ("input_shape", [1, 32, "32"]),
        ("channels_last", "yes"),
        ("data", 7),
        ("data_options", ["stream"]),
        ("model.num_classes", "10"),
        ("model.in_channels", 0),
        ("model.kwargs", ["tanh"]),
        ("frozen", "features.0.weight"),
        ("selection.per_class", -1),
        ("finetune.from", None),
        ("finetune.frozen_params", 1.5),
        ("augment_pca", {"eigenvalues": [1.0]}),
        ("epoch", True),
        ("val_accuracy", "high"),
        ("threads", 2),
        ("threads.count", 0),
        ("threads.chosen", "guessed"),
    ],
)
def test_a_mistyped_field_is_named_in_one_line(field, value):
    data = {**OLD_FINETUNED_META, "threads": {"count": 2, "chosen": "automatic"}}
    with pytest.raises(CheckpointError) as error:
        RunMeta.from_dict(_with(data, field, value), "run/config.json")
    message = str(error.value)
    assert "\n" not in message and f"'{field}'" in message and "run/config.json" in message
    assert message.startswith("expected run metadata field") and "received" in message


def test_other_versions_and_non_classifiers_are_refused():
    with pytest.raises(CheckpointError, match=r"expected run metadata version 1, received ver"):
        RunMeta.from_dict({**OLD_META, "version": 2})
    for model in (None, {"num_classes": 10}, "lenet5"):
        with pytest.raises(CheckpointError, match="expected a classifier checkpoint naming"):
            RunMeta.from_dict({**OLD_META, "model": model})
    with pytest.raises(CheckpointError, match=r"expected run metadata \(a JSON object\)"):
        RunMeta.from_dict(["model"])


def test_a_checkpoint_written_before_runmeta_loads_and_evaluates(trained_run, tmp_path, cli):
    best = load_checkpoint(trained_run / "best.safetensors")
    prep = {**PREPROCESSING, **{k: best.meta["preprocessing"][k] for k in ("mean", "std")}}
    old = tmp_path / "old.safetensors"
    save_checkpoint(old, Checkpoint(best.model_state, {**OLD_META, "preprocessing": prep}))
    run = load_run(old)
    assert run.meta.version == 1 and run.meta.model.name == "lenet5"
    assert run.classes == tuple("0123456789") and run.preprocessing.input_size == (32, 32)
    status, out, err = cli("evaluate", old, "--json")
    assert status == 0, err
    assert json.loads(out)["accuracy"] > 0.9


def test_malformed_checkpoint_metadata_is_one_cli_line(run_copy, cli, expect_error):
    ckpt = load_checkpoint(run_copy / "best.safetensors")
    broken = run_copy / "broken.safetensors"
    save_checkpoint(broken, Checkpoint(ckpt.model_state, _without(ckpt.meta, "classes")))
    status, _, err = cli("evaluate", broken)
    expect_error(status, err, "expected run metadata field 'classes'", str(broken))


def _strip_to_old_layout(run_dir) -> None:
    """Rewrite a run as cnnlab wrote it before RunMeta and the curves callback: no metadata
    version anywhere, no curves callback state in the resumable checkpoint, no curves.png."""
    saved = json.loads((run_dir / "config.json").read_text())
    saved["meta"].pop("version")
    (run_dir / "config.json").write_text(json.dumps(saved))
    for name in ("best.safetensors", "last.safetensors"):
        ckpt = load_checkpoint(run_dir / name)
        ckpt.meta.pop("version")
        ckpt.training.get("callbacks", {}).pop("plot_curves", None)
        save_checkpoint(run_dir / name, ckpt)
    (run_dir / "curves.png").unlink()


def test_a_run_written_before_runmeta_resumes(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    options = {"epochs": 1, "schedule": "constant", "lr": 1e-3, "seed": 1}
    fit("lenet5", "mnist-subset", out=run_dir, cache_dir=cache_dir, verbose=False, **options)
    assert load_checkpoint(run_dir / "last.safetensors").meta["version"] == 1
    _strip_to_old_layout(run_dir)
    assert "version" not in json.loads((run_dir / "config.json").read_text())["meta"]
    assert read_run_meta(run_dir).version == 1
    history = resume(run_dir, epochs=2, cache_dir=cache_dir, verbose=False)
    assert history.epoch == [1, 2]
    assert (run_dir / "curves.png").is_file()  # drawn when the resumed run ended
    assert load_checkpoint(run_dir / "last.safetensors").meta["version"] == 1
    assert load_run(run_dir, "last").meta.epoch == 2


def test_run_meta_is_what_a_new_run_records(trained_run):
    saved = json.loads((trained_run / "config.json").read_text())["meta"]
    meta = read_run_meta(trained_run)
    assert saved["version"] == 1 and _json(meta.to_dict()) == saved
    best = load_run(trained_run)
    assert dataclasses.replace(best.meta, epoch=None, scores={}) == meta
    assert set(best.meta.scores) == {"val_accuracy"} and best.meta.step is None
