"""The model zoo: importing this package registers every model family."""

from cnnlab.models import alexnet, baseline, googlenet, lenet, nin, resnet, vgg  # noqa: F401
