"""The model zoo: importing this package registers every model family, and it is where the
rest of cnnlab looks models up (:func:`create_model`, :func:`list_models`, ...), so a look-up
always sees the whole zoo while :mod:`cnnlab.registry` itself imports no model."""

from cnnlab.models import (  # noqa: F401
    airbench,
    alexnet,
    baseline,
    googlenet,
    lenet,
    mnistnet,
    nin,
    resnet,
    vgg,
)
from cnnlab.registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
