"""cnnlab's NumPy engine: convolutional networks with hand-derived backpropagation.

Imports nothing but NumPy and the standard library (a test blocks torch and imports it).
``functional`` holds the ops as forward/backward pairs, ``nn`` the torch.nn-style layers,
``graph`` the executor that runs any network as a graph of ops (built by ``cnnlab.bridge``),
``layout_plan`` the pass that keeps a graph's spatial values batch-last ``(C, H, W, N)``,
``optim`` the optimizers, ``schedules`` the learning-rate schedules shared with the torch
engine, ``grad_mode`` its ``no_grad``, ``gradcheck`` the numerical gradient check, and
``blas`` / ``allocator`` the two process settings the training engine makes (BLAS threads,
reuse of freed memory).
"""

from cnnlab.scratch import functional, nn, optim, schedules
from cnnlab.scratch.grad_mode import is_grad_enabled, no_grad
from cnnlab.scratch.gradcheck import GradcheckResult, gradcheck, gradcheck_module, relative_error
from cnnlab.scratch.graph import Graph, GraphNet, Node
from cnnlab.scratch.nn import Module, Parameter, Sequential
from cnnlab.scratch.optim import SGD, Adam, AdamW, Optimizer, RMSprop
from cnnlab.scratch.schedules import (
    ConstantLR,
    CosineAnnealingLR,
    MultiStepLR,
    OneCycleLR,
    StepLR,
    apply_schedule,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "ConstantLR",
    "CosineAnnealingLR",
    "GradcheckResult",
    "Graph",
    "GraphNet",
    "Module",
    "MultiStepLR",
    "Node",
    "OneCycleLR",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "Sequential",
    "StepLR",
    "apply_schedule",
    "functional",
    "gradcheck",
    "gradcheck_module",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "optim",
    "relative_error",
    "schedules",
]
