"""Named training recipes: a model, a dataset and hyperparameters under one name.

``cnnlab recipes`` lists them; ``cnnlab train --recipe NAME`` (or ``fit(recipe=NAME)``) trains
one. Every value a recipe sets is only its default: the model, ``--data`` and every training
option given on the command line (or to :func:`~cnnlab.training.run.fit`) win. The run records
the recipe's name in its configuration (``TrainConfig.recipe``, in ``config.json``).

The MNIST recipes are measured on this project's 2-core CPU machines side by side with a
hand-written reference (``benchmarks/recipes.py``, BENCHMARKS.md); the CIFAR-10 recipes carry
their published hyperparameters and are marked "not measured here" (CIFAR-10 cannot be
downloaded on those machines).

This module imports nothing but the standard library, so ``cnnlab recipes`` stays fast.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cnnlab.documents import field_values
from cnnlab.errors import ConfigError

NOT_MEASURED = "not measured here"


@dataclass(frozen=True)
class Recipe:
    """One named recipe.

    Attributes:
        name: what ``--recipe`` takes.
        summary: one line: what it is for.
        model: registered model name.
        data: dataset spec.
        options: :class:`~cnnlab.training.config.TrainConfig` fields (``model_kwargs`` too).
        source: where the hyperparameters come from.
        measured: what was measured here (BENCHMARKS.md); None: not measured here.
    """

    name: str
    summary: str
    model: str
    data: str
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    measured: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The recipe as ``cnnlab recipes --json`` prints it."""
        return {
            **field_values(self),
            "options": dict(self.options),
            "measured": self.measured if self.measured is not None else NOT_MEASURED,
        }


def _recipe(**kwargs: Any) -> Recipe:
    kwargs["options"] = MappingProxyType(dict(kwargs.get("options", {})))
    return Recipe(**kwargs)


RECIPES: tuple[Recipe, ...] = (
    _recipe(
        name="lenet5-mnist",
        summary="cnnlab's default: LeNet-5 on MNIST, 99% in 3 epochs",
        model="lenet5",
        data="mnist",
        options={
            "epochs": 3,
            "batch_size": 128,
            "optimizer": "adam",
            "lr": 1e-2,
            "schedule": "onecycle",
            "val_split": 0.1,
        },
        source="TrainConfig's defaults (issue 2)",
        measured="99.15-99.17% on seeds 0-2 in 9.5-9.7 s of training (BENCHMARKS.md, issue 2)",
    ),
    _recipe(
        name="mnist-fast",
        summary="the fastest to 99.0% on MNIST: a slimmer train_mnist_fast net with BatchNorm",
        model="mnistnet",
        data="mnist",
        options={
            "model_kwargs": {"batch_norm": True, "widths": [16, 32]},
            "epochs": 1,
            "batch_size": 256,
            "optimizer": "adam",
            "lr": 2e-2,
            "schedule": "onecycle",
            "label_smoothing": 0.1,
            "val_split": 0.0,
            "monitor": "loss",
        },
        source=(
            "tuomaso/train_mnist_fast (Adam, one-cycle, batch 256, 1 epoch), with BatchNorm, "
            "16 instead of 24 first filters, peak lr 2e-2, label smoothing 0.1"
        ),
        measured=(
            "benchmarks/recipes.py: 99.15-99.26% on 5 of 5 seeds in 0.53x the anchor's "
            "1-epoch training time (BENCHMARKS.md, issue 16)"
        ),
    ),
    _recipe(
        name="mnist-99.5",
        summary="the fastest to 99.5% on MNIST: train_mnist_fast's net with BatchNorm, shifts",
        model="mnistnet",
        data="mnist",
        options={
            "model_kwargs": {"batch_norm": True},
            "epochs": 5,
            "batch_size": 256,
            "optimizer": "adam",
            "lr": 2e-2,
            "schedule": "onecycle",
            "label_smoothing": 0.1,
            "augment": "random_crop=2",
            "val_split": 0.0,
            "monitor": "loss",
            "test_tta": "shift",
        },
        source=(
            "tuomaso/train_mnist_fast's net and recipe with BatchNorm, random shifts of up to 2 "
            "pixels, peak lr 2e-2, label smoothing 0.1, 5 epochs; tested with shift TTA (the "
            "digit and 4 copies moved 2 pixels, probabilities averaged)"
        ),
        measured=(
            "benchmarks/recipes.py: 99.55%, 99.55%, 99.52% with shift TTA (single view 99.55%, "
            "99.53%, 99.59%) on seeds 0-2 in a median of 51.3 s of training, at most 0.50x the "
            "anchor's time to 99.5%, which it did not reach in 8 epochs (BENCHMARKS.md, issue 16)"
        ),
    ),
    _recipe(
        name="baseline-cifar10",
        summary="seed 003's Keras baseline on CIFAR-10: conv-BN-pool-dropout, dense 128",
        model="baseline",
        data="cifar10",
        options={
            "epochs": 5,
            "batch_size": 32,
            "optimizer": "adam",
            "lr": 1e-3,
            "schedule": "constant",
            "val_split": 0.1,
            "monitor": "val_loss",
        },
        source=(
            "seed 003: model.fit(batch_size=32, epochs=5), Adam at Keras's default 1e-3, "
            "best checkpoint by val_loss (the seed validates on the test split; held-out 10% "
            "of the training split here)"
        ),
    ),
    _recipe(
        name="resnet20-cifar10",
        summary="ResNet-20 on CIFAR-10 after He et al. 2016 (section 4.2): 91.25% in the paper",
        model="resnet20",
        data="cifar10",
        options={
            "epochs": 182,
            "batch_size": 128,
            "optimizer": "momentum",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "schedule": "multistep",
            "milestones": [91, 136],
            "step_gamma": 0.1,
            "augment": "random_crop=4,horizontal_flip",
            "val_split": 0.1,
        },
        source=(
            "He et al., Deep Residual Learning (arXiv:1512.03385) 4.2: SGD 0.1, momentum 0.9, "
            "weight decay 1e-4, batch 128, 45k/5k split, lr / 10 at 32k and 48k of 64k "
            "iterations (352 per epoch: epochs 91 and 136 of 182), 4-pixel pad + crop, flips"
        ),
    ),
)


def list_recipes() -> tuple[Recipe, ...]:
    """Every named recipe, in the order ``cnnlab recipes`` lists them."""
    return RECIPES


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ConfigError: no recipe has that name.
    """
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    names = ", ".join(r.name for r in RECIPES)
    raise ConfigError(f"expected a recipe name ({names}), received {name!r}")


def apply_recipe(
    name: str | None, model: str | None, data: Any, options: Mapping[str, Any]
) -> tuple[str | None, Any, dict[str, Any]]:
    """The model, data and options of a run that starts from recipe ``name``: the recipe's
    values where the caller gave none (``model``/``data`` None, an option left out), and the
    recipe's name recorded as the ``recipe`` option. ``name`` None: everything unchanged.

    Raises:
        ConfigError: no recipe has that name.
    """
    if name is None:
        return model, data, dict(options)
    recipe = get_recipe(name)
    merged = {**copy.deepcopy(dict(recipe.options)), **options, "recipe": recipe.name}
    chosen = model or recipe.model
    # the recipe's model options go with its model; given ones are added to them
    kept = recipe.options.get("model_kwargs", {}) if chosen == recipe.model else {}
    model_kwargs = {**copy.deepcopy(dict(kept)), **options.get("model_kwargs", {})}
    merged.pop("model_kwargs", None)
    if model_kwargs:
        merged["model_kwargs"] = model_kwargs
    return chosen, recipe.data if data is None else data, merged
