"""``cnnlab finetune``: new head, freezing, what the run records, loading it back."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.runs import load_run, read_run_config
from cnnlab.training.freezing import (
    apply_freeze,
    frozen_names,
    param_groups,
    set_train_mode,
)
from cnnlab.transfer import finetune

TARGET = "5,6,7,8,9"


@pytest.mark.parametrize(
    ("spec", "frozen_layers"),
    [
        ("none", []),
        ("1", ["features.0"]),
        ("up-to:features.4", ["features.0", "features.3"]),
        ("all", ["features.0", "features.3", "features.6"]),
        ("head-only", ["features.0", "features.3", "features.6", "classifier.0"]),
    ],
)
def test_freeze_specs(spec, frozen_layers):
    model = create_model("lenet5")
    names = frozen_names(model, spec)
    assert sorted({n.rsplit(".", 1)[0] for n in names}) == sorted(frozen_layers)


def test_bad_freeze_targets_list_the_layers():
    model = create_model("lenet5")
    with pytest.raises(ConfigError, match=r"features.0, features.1.*classifier.2.*up-to:conv9"):
        frozen_names(model, "up-to:conv9")
    with pytest.raises(ConfigError, match="from 0 to 5"):
        frozen_names(model, "6")
    with pytest.raises(ConfigError, match="received freeze='some'"):
        frozen_names(model, "some")


def test_frozen_batchnorm_stays_in_eval_mode():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    apply_freeze(model, ["0.weight", "0.bias", "1.weight", "1.bias"])
    set_train_mode(model)
    assert not model[1].training and model[0].training and model[2].training
    before = model[1].running_mean.clone()
    model(torch.randn(8, 1, 6, 6))
    assert torch.equal(model[1].running_mean, before)


def test_lr_backbone_makes_two_groups_head_first():
    model = create_model("lenet5")
    apply_freeze(model, frozen_names(model, "1"))
    groups = param_groups(model, 1e-2, 1e-4)
    assert [g["lr"] for g in groups] == [1e-2, 1e-4]
    assert sum(p.numel() for p in groups[0]["params"]) == 10164 + 850  # classifier.0 and .2
    assert sum(p.numel() for p in groups[1]["params"]) == 2416 + 48120  # features.3 and .6


def _weights(path):
    return load_run(path).model.state_dict()


def test_head_only_finetune_records_freeze_and_reloads(source_run, tmp_path, cache_dir, cli):
    out = tmp_path / "head"
    finetune(
        source_run,
        "mnist-subset",
        out=out,
        head_only=True,
        classes=TARGET,
        epochs=2,
        cache_dir=cache_dir,
        verbose=False,
    )
    run = load_run(out)
    assert run.classes == ("5", "6", "7", "8", "9") and run.model.get_classifier().out_features == 5
    assert run.meta.model.num_classes == 5
    assert read_run_config(out)["config"]["freeze"] == "head-only"
    assert run.meta.finetune.source_classes == ("0", "1", "2", "3", "4")
    trainable = [n for n, p in run.model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.2.weight", "classifier.2.bias"]
    source, tuned = _weights(source_run), _weights(out)
    for name in source:
        if not name.startswith("classifier.2"):
            assert torch.equal(source[name], tuned[name]), name  # frozen: untouched
    status, text, _ = cli("summary", out, "--json", cache=False)
    doc = json.loads(text)
    assert status == 0 and doc["trainable_params"] == 84 * 5 + 5
    assert doc["non_trainable_params"] == 61706 - 850
    status, text, _ = cli("evaluate", out, "--json")
    assert status == 0 and json.loads(text)["classes"] == ["5", "6", "7", "8", "9"]
    status, _, _ = cli("report", out, "--output", tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert status == 0 and "Fine-tuned from" in page and "<b>head-only</b>" in page
    assert "non-trainable (frozen or running statistics) 60,856" in page


def test_shallow_freeze_with_lr_backbone_via_cli_and_resume(source_run, tmp_path, cli):
    out = tmp_path / "shallow"
    status, text, _ = cli(
        "finetune",
        source_run,
        "--data",
        "mnist-subset",
        "--out",
        out,
        "--freeze",
        "1",
        "--lr-backbone",
        "1e-3",
        "--classes",
        TARGET,
        "--per-class",
        50,
        "--epochs",
        1,
        "--schedule",
        "step",
        "--no-progress",
        "--json",
    )
    assert status == 0 and 0 < json.loads(text)["test"]["accuracy"] <= 1
    source, tuned = _weights(source_run), _weights(out)
    assert torch.equal(source["features.0.weight"], tuned["features.0.weight"])
    assert not torch.equal(source["features.3.weight"], tuned["features.3.weight"])
    status, _, _ = cli("train", "--resume", out, "--epochs", 2, "--no-progress")
    assert status == 0
    assert torch.equal(source["features.0.weight"], _weights(out)["features.0.weight"])
    config = read_run_config(out)["config"]
    assert config["lr_backbone"] == 1e-3 and config["per_class"] == 50


def test_frozen_batchnorm_of_a_finetuned_network_keeps_its_statistics(tmp_path, cache_dir):
    from cnnlab.training.run import fit

    fit(
        "baseline",
        "mnist-subset",
        out=tmp_path / "bn",
        cache_dir=cache_dir,
        verbose=False,
        epochs=1,
        classes="0,1,2,3,4",
        per_class=40,
        val_split=0,
        monitor="loss",
    )
    finetune(
        tmp_path / "bn",
        "mnist-subset",
        out=tmp_path / "ft",
        freeze="all",
        classes=TARGET,
        per_class=40,
        epochs=1,
        val_split=0,
        monitor="loss",
        cache_dir=cache_dir,
        verbose=False,
    )
    before, after = _weights(tmp_path / "bn"), _weights(tmp_path / "ft")
    stats = [n for n in before if "running_mean" in n or "running_var" in n]
    assert stats and all(torch.equal(before[n], after[n]) for n in stats)


def test_finetune_bad_inputs_are_one_line(cli, source_run, tmp_path, expect_error):
    out = tmp_path / "ft"
    base = ("finetune", source_run, "--data", "mnist-subset", "--out", out)
    status, _, err = cli(*base, "--freeze", "up-to:conv9")
    expect_error(status, err, "up-to:LAYER with one of the layers features.0, features.1")
    status, _, err = cli(*base, "--head-only", "--freeze", "all")
    expect_error(status, err, "not allowed with argument")
    status, _, err = cli(*base, "--cache-features", "--augment", "horizontal_flip")
    expect_error(status, err, "expected no --augment with --cache-features")
    status, _, err = cli(*base, "--cache-features", "--freeze", "1")
    expect_error(status, err, "expected a frozen backbone")
    status, _, err = cli(*base, "--classes", "5,x")
    expect_error(status, err, "x not in the data")
    assert not (out / "config.json").exists()
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint")
    status, _, err = cli("finetune", garbage, "--data", "mnist-subset", "--out", out)
    expect_error(status, err, "expected a cnnlab checkpoint")
    assert not (out / "config.json").exists()


def test_finetune_from_a_checkpoint_that_is_not_a_classifier(
    cli, source_run, tmp_path, expect_error
):
    from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(source_run / "best.safetensors")
    for meta, fragment in (
        ({"model": None}, "expected a classifier checkpoint naming its model"),
        ({"model": {"name": "unet", "num_classes": 5, "in_channels": 1}}, "cannot build"),
    ):
        ckpt.meta.update(meta)
        path = tmp_path / "other.safetensors"
        save_checkpoint(path, ckpt)
        status, _, err = cli("finetune", path, "--data", "mnist-subset", "--out", tmp_path / "o")
        expect_error(status, err, fragment)
    assert not (tmp_path / "o").exists()
