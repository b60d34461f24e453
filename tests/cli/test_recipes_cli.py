"""``cnnlab recipes`` and ``cnnlab train --recipe``, used as a person would: on the real MNIST
subset, and on a synthetic archive in CIFAR-10's binary format for the CIFAR-10 recipes."""

import json
import shlex

import pytest

from cifar_helpers import cifar_archive, offline_cifar10
from cnnlab.cli import build_parser
from cnnlab.cli.common import model_options
from cnnlab.cli.config_flags import given_options
from cnnlab.data import cifar, datasets
from cnnlab.training.recipes import get_recipe

MNIST_RECIPES = ["lenet5-mnist", "mnist-fast", "mnist-99.5"]


def _config(run) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


def test_recipes_lists_each_with_its_command_line(cli):
    status, out, _ = cli("recipes", "--json", cache=False)
    assert status == 0
    recipes = {r["name"]: r for r in json.loads(out)["recipes"]}
    assert list(recipes) == [*MNIST_RECIPES, "baseline-cifar10", "resnet20-cifar10"]
    assert recipes["resnet20-cifar10"]["measured"] == "not measured here"
    for name, recipe in recipes.items():
        # the command shown is the recipe: parsed back, it gives the recipe's model, data
        # and options
        argv = shlex.split(recipe["command"].replace("DIR", "run"))[1:]
        args = build_parser().parse_args(argv)
        options = given_options(args, "train")
        if args.model_option:
            options["model_kwargs"] = model_options(args.model_option)
        expected = get_recipe(name)
        assert (args.model, args.data) == (expected.model, expected.data)
        assert options == {k: v for k, v in expected.options.items() if v is not False}

    status, out, _ = cli("recipes", cache=False)
    assert status == 0 and "mnist-fast: " in out and "not measured here" in out
    assert "cnnlab train mnistnet --data mnist --model-option batch_norm=true " in out
    status, out, _ = cli("recipes", "mnist-99.5", cache=False)
    assert status == 0 and out.startswith("mnist-99.5: ") and "lenet5" not in out


def test_unknown_recipe_is_one_line(cli, expect_error, tmp_path):
    status, _, err = cli("recipes", "fastest", cache=False)
    expect_error(status, err, "expected a recipe name", "mnist-fast", "received 'fastest'")
    status, _, err = cli("train", "--recipe", "fastest", "--out", tmp_path / "run")
    expect_error(status, err, "expected a recipe name", "received 'fastest'")
    assert not (tmp_path / "run" / "config.json").exists()
    status, _, err = cli("train", "--data", "mnist-subset", "--out", tmp_path / "run")
    expect_error(status, err, "expected MODEL (or --recipe NAME)")


@pytest.mark.parametrize("name", MNIST_RECIPES)
def test_train_with_a_recipe_records_it(cli, tmp_path, name):
    run = tmp_path / "run"
    status, out, _ = cli(
        "train", "--recipe", name, "--data", "mnist-subset", "--epochs", "1", "--out", run
    )
    assert status == 0 and "test accuracy" in out
    assert (run / "curves.png").is_file()  # drawn while the result was computed, and joined
    config = _config(run)
    recipe = get_recipe(name)
    assert config["recipe"] == name and config["model"] == recipe.model
    assert config["data"] == "mnist-subset" and config["epochs"] == 1  # given: they win
    for option, value in recipe.options.items():
        if option != "epochs":
            assert config[option] == value, option
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 50  # one epoch on 3,600-4,000 digits learns, whatever the recipe


def test_recipe_options_and_model_are_overridable(cli, tmp_path):
    run = tmp_path / "run"
    status, _, _ = cli(
        "train",
        "--recipe",
        "mnist-fast",
        "--data",
        "mnist-subset",
        "--batch-size",
        "64",
        "--model-option",
        "hidden=32",
        "--label-smoothing",
        "0.1",
        "--out",
        run,
    )
    assert status == 0
    config = _config(run)
    assert config["batch_size"] == 64 and config["label_smoothing"] == 0.1
    recipe = get_recipe("mnist-fast").options
    assert config["model_kwargs"] == {**recipe["model_kwargs"], "hidden": 32}
    assert config["lr"] == recipe["lr"] and config["recipe"] == "mnist-fast"
    run = tmp_path / "lenet"
    status, _, _ = cli(
        "train", "lenet5", "--recipe", "mnist-fast", "--data", "mnist-subset", "--out", run
    )
    assert status == 0
    config = _config(run)
    assert config["model"] == "lenet5" and config["model_kwargs"] == {}
    assert config["batch_size"] == 256 and config["recipe"] == "mnist-fast"


@pytest.fixture
def synthetic_cifar(monkeypatch, tmp_path, capsys):
    """A 200-image synthetic CIFAR-10 archive installed in a fresh cache with
    ``cnnlab data fetch cifar10 --from FILE``; returns the cache folder."""
    data, _ = cifar_archive(per_batch=32, test=40)
    path = tmp_path / cifar.ARCHIVE
    path.write_bytes(data)
    monkeypatch.setitem(datasets.DATASETS, "cifar10", offline_cifar10(data))
    cache = tmp_path / "cache"
    from cli_helpers import run_cli

    status, _, err = run_cli(
        capsys, "data", "fetch", "cifar10", "--from", path, "--cache-dir", cache
    )
    assert status == 0, err
    return cache


def test_resnet20_recipe_on_a_cifar10_archive(capsys, synthetic_cifar, tmp_path):
    from cli_helpers import run_cli

    run = tmp_path / "run"
    status, out, err = run_cli(
        capsys,
        "train",
        "--recipe",
        "resnet20-cifar10",
        "--epochs",
        "3",
        "--milestones",
        "1,2",
        "--batch-size",
        "64",
        "--out",
        run,
        "--cache-dir",
        synthetic_cifar,
        "--json",
    )
    assert status == 0, err
    config = _config(run)
    assert (config["recipe"], config["model"], config["data"]) == (
        "resnet20-cifar10",
        "resnet20",
        "cifar10",
    )
    assert config["optimizer"] == "momentum" and config["weight_decay"] == 1e-4
    assert config["augment"] == "random_crop=4,horizontal_flip"
    result = json.loads(out)
    # lr 0.1 for epoch 1, divided by 10 after the milestones (the lr logged is the next step's)
    assert result["history"]["lr"] == pytest.approx([0.01, 0.001, 0.001])
    assert result["test"]["checkpoint"].endswith(".safetensors")


def test_keras_baseline_recipe_on_a_cifar10_archive(capsys, synthetic_cifar, tmp_path):
    from cli_helpers import run_cli

    run = tmp_path / "run"
    status, out, err = run_cli(
        capsys,
        "train",
        "--recipe",
        "baseline-cifar10",
        "--epochs",
        "1",
        "--out",
        run,
        "--cache-dir",
        synthetic_cifar,
    )
    assert status == 0, err
    config = _config(run)
    assert (config["recipe"], config["model"], config["batch_size"]) == (
        "baseline-cifar10",
        "baseline",
        32,
    )
    assert "on 40 test images" in out
