"""Layers with torch.nn's names, signatures and state_dict keys, and hand-written backward."""

from cnnlab.scratch.nn.activation import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from cnnlab.scratch.nn.conv import Conv2d
from cnnlab.scratch.nn.dropout import Dropout
from cnnlab.scratch.nn.flatten import Flatten
from cnnlab.scratch.nn.linear import Linear
from cnnlab.scratch.nn.loss import CrossEntropyLoss
from cnnlab.scratch.nn.module import Module, Sequential
from cnnlab.scratch.nn.normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from cnnlab.scratch.nn.parameter import Parameter
from cnnlab.scratch.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "GELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]
