"""The model zoo: importing this package registers every model family."""

from cnnlab.models import (  # noqa: F401
    airbench,
    alexnet,
    baseline,
    googlenet,
    lenet,
    nin,
    resnet,
    vgg,
)
