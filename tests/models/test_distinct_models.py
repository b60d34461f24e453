"""The zoo tests that cost most (ONNX export, the NumPy engine against torch) run the models of
:func:`zoo_inputs.distinct_models`; every other registered model must be made only of layers,
adjacent pairs of layers and blocks, each configured identically, that one of them holds."""

from __future__ import annotations

from cnnlab.models import list_models
from zoo_inputs import covering_model, distinct_models, layer_set


def test_only_deeper_members_of_a_family_are_left_out_each_for_a_shallower_one() -> None:
    distinct = distinct_models()
    left_out = {name: covering_model(name) for name in list_models() if name not in distinct}
    assert left_out == {
        "vgg11": "vgg13", "vgg16": "vgg13", "vgg19": "vgg13",
        "vgg11_bn": "vgg13_bn", "vgg16_bn": "vgg13_bn", "vgg19_bn": "vgg13_bn",
        "resnet34": "resnet18", "resnet101": "resnet50", "resnet152": "resnet50",
        "resnet32": "resnet20", "resnet56": "resnet20",
    }  # fmt: skip
    assert all(covering_model(name) is None for name in distinct_models())


def test_a_missing_layer_or_a_different_neighbour_is_not_covered() -> None:
    # VGG-13 holds VGG-11's layers, but VGG-11 lacks VGG-13's second 64 -> 64 convolution
    conv64 = ("Conv2d", "64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)")
    assert layer_set("vgg11") <= layer_set("vgg13")
    assert conv64 in layer_set("vgg13") and conv64 not in layer_set("vgg11")
    # BatchNorm changes what follows each convolution: VGG-13-BN holds all of VGG-13's layers
    # but not its convolution -> ReLU pairs, so VGG-13 is exported (and run) on its own
    layers = {e for e in layer_set("vgg13") if len(e) == 2 and isinstance(e[0], str)}
    assert layers <= layer_set("vgg13_bn") and not layer_set("vgg13") <= layer_set("vgg13_bn")
    # the CIFAR ResNets' option-A shortcut is a layer of its own
    assert ("PadShortcut", "") in layer_set("resnet20") - layer_set("resnet18")
