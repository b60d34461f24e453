import subprocess
import sys

import pytest
from torch import nn

from cnnlab import models as registry  # the zoo, loaded, with the registry's functions
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


def test_the_registry_imports_no_model():
    """The registry sits below the zoo: importing it alone registers nothing; the zoo's package
    (and the public API) registers every family before a look-up."""
    code = (
        "import cnnlab.registry as r; print(len(r._REGISTRY));"
        "import cnnlab; print(len(cnnlab.list_models()) > 20)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]
