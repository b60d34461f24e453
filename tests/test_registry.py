import pytest
from torch import nn

from cnnlab import registry
from cnnlab.errors import ModelError


def test_lists_and_builds_lenet5():
    assert "lenet5" in registry.list_models()
    assert registry.list_models("lenet*")[0] == "lenet5"
    model = registry.create_model("lenet5", num_classes=7, activation="tanh")
    assert model.cnnlab_spec == {
        "name": "lenet5",
        "num_classes": 7,
        "in_channels": 1,
        "kwargs": {"activation": "tanh"},
    }


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match=r"unknown model 'lenet' \(did you mean lenet5"):
        registry.create_model("lenet")


def test_unknown_option_is_named():
    with pytest.raises(ModelError, match=r"unknown option 'depth' for model 'lenet5'"):
        registry.create_model("lenet5", depth=3)


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("lenet5", default_input=(1, 32, 32))(lambda **kw: nn.Identity())


def test_rejects_nonpositive_classes():
    with pytest.raises(ModelError, match="num_classes=0"):
        registry.create_model("lenet5", num_classes=0)
