"""Named recipes: each is a valid run configuration of a registered model, and a run started
from one takes the caller's values over the recipe's and records the recipe's name."""

import pytest
import torch

from cnnlab import scratch
from cnnlab.bridge.engine import build_schedule
from cnnlab.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.training.config import TrainConfig
from cnnlab.training.optim import build_optimizer, build_scheduler
from cnnlab.training.recipes import NOT_MEASURED, apply_recipe, get_recipe, list_recipes

NAMES = [r.name for r in list_recipes()]


def test_the_recipes_of_issue_16_are_listed():
    assert NAMES == [
        "lenet5-mnist",
        "mnist-fast",
        "mnist-99.5",
        "baseline-cifar10",
        "resnet20-cifar10",
    ]
    measured = {r.name: r.to_dict()["measured"] for r in list_recipes()}
    assert measured["baseline-cifar10"] == measured["resnet20-cifar10"] == NOT_MEASURED
    assert NOT_MEASURED not in (measured["mnist-fast"], measured["mnist-99.5"])


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_is_a_valid_configuration_of_a_registered_model(name):
    model, data, options = apply_recipe(name, None, None, {})
    config = TrainConfig(model=model, data=data, **options)
    assert config.recipe == name and config.data in ("mnist", "cifar10")
    channels = 1 if data == "mnist" else 3
    net = create_model(model, num_classes=10, in_channels=channels, **config.model_kwargs)
    size = net.default_input_shape[1:]
    assert net(torch.zeros(2, channels, *size)).shape == (2, 10)


def test_lenet5_mnist_is_the_default_configuration():
    model, data, options = apply_recipe("lenet5-mnist", None, None, {})
    recipe_config = TrainConfig(model=model, data=data, **options)
    assert {**recipe_config.to_dict(), "recipe": None} == TrainConfig().to_dict()


def test_resnet20_follows_he_et_al():
    options = get_recipe("resnet20-cifar10").options
    assert options["optimizer"] == "momentum" and options["lr"] == 0.1
    assert options["momentum"] == 0.9 and options["weight_decay"] == 1e-4
    assert options["batch_size"] == 128 and options["epochs"] == 182
    # 45,000 training images at batch 128: 352 steps per epoch; 32k and 48k of 64k iterations
    steps = -(-45_000 // 128)
    assert steps == 352 and options["val_split"] == 0.1
    assert [m * steps for m in options["milestones"]] == [32_032, 47_872]
    assert options["epochs"] * steps == 64_064 and options["step_gamma"] == 0.1
    assert options["augment"] == "random_crop=4,horizontal_flip"


def test_given_values_override_the_recipe():
    model, data, options = apply_recipe(
        "mnist-99.5", None, "mnist-subset", {"epochs": 2, "model_kwargs": {"hidden": 64}}
    )
    assert (model, data, options["epochs"], options["recipe"]) == (
        "mnistnet",
        "mnist-subset",
        2,
        "mnist-99.5",
    )
    # given model options are added to the recipe's
    assert options["model_kwargs"] == {
        **get_recipe("mnist-99.5").options["model_kwargs"],
        "hidden": 64,
    }
    assert options["augment"] == get_recipe("mnist-99.5").options["augment"]
    # another model drops the recipe's model options (they are its model's)
    model, _, options = apply_recipe("mnist-fast", "lenet5", None, {})
    assert model == "lenet5" and "model_kwargs" not in options
    # the recipe itself is never changed by a run
    options["lr"] = 1.0
    assert get_recipe("mnist-fast").options["lr"] == 2e-2


def test_no_recipe_changes_nothing():
    assert apply_recipe(None, "lenet5", "mnist", {"epochs": 2}) == (
        "lenet5",
        "mnist",
        {"epochs": 2},
    )


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"expected a recipe name .*mnist-fast.*received 'fast'"):
        get_recipe("fast")


def _torch_lrs(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    sched = build_scheduler(opt, config, steps_per_epoch)
    lrs = []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_multistep_decays_after_each_milestone_in_both_engines():
    config = TrainConfig(
        optimizer="momentum",
        lr=0.1,
        epochs=5,
        schedule="multistep",
        milestones=[2, 4],
        step_gamma=0.1,
    )
    lrs = _torch_lrs(config, 3)
    expected = [0.1] * 6 + [0.01] * 6 + [0.001] * 3
    assert lrs == pytest.approx(expected, rel=1e-12)
    mine = build_schedule(config, 3)
    assert isinstance(mine, scratch.MultiStepLR)
    assert [mine(step) for step in range(15)] == pytest.approx(lrs, rel=1e-12)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"schedule": "multistep"}, "received milestones=None"),
        ({"schedule": "multistep", "milestones": [5, 3]}, "received milestones=[5, 3]"),
        ({"schedule": "multistep", "milestones": [0]}, "received milestones=[0]"),
        ({"schedule": "step", "milestones": [3]}, "only with schedule multistep"),
    ],
)
def test_milestones_are_checked(options, fragment):
    with pytest.raises(ConfigError, match="expected milestones") as info:
        TrainConfig(**options)
    assert fragment in str(info.value)
