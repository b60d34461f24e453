"""A registered network for a checkpoint is built on the meta device and takes the
checkpoint's tensors as its own (no initialisation, no copy); anything that cannot be assigned
that way is left to the ordinary build, which copies, casts or reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.data.preprocess import Preprocessing
from cnnlab.models import create_model, list_models
from cnnlab.models.loading import built_with_weights
from cnnlab.runs import load_run
from cnnlab.training.checkpoint import Checkpoint, save_checkpoint


def _untouched_state(name: str) -> dict[str, torch.Tensor]:
    """Tensors of the network's shapes and dtypes whose memory is never written (VGG's 0.5 GB
    costs nothing until touched)."""
    with torch.device("meta"):
        declared = create_model(name, num_classes=3).state_dict()
    return {key: torch.empty_like(t, device="cpu") for key, t in declared.items()}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_takes_the_tensors_themselves(name: str) -> None:
    state = _untouched_state(name)
    model = built_with_weights(lambda: create_model(name, num_classes=3), state)
    assert model is not None
    held = {key: t.data_ptr() for key, t in model.state_dict().items()}
    assert held == {key: t.data_ptr() for key, t in state.items()}
    assert all(p.requires_grad for p in model.parameters())


def test_what_cannot_be_assigned_is_left_to_the_copying_build() -> None:
    state = _untouched_state("lenet5")
    weight, bias = [key for key in state if key.endswith((".weight", ".bias"))][-2:]
    other_dtype = {**state, weight: state[weight].double()}
    missing = {k: v for k, v in state.items() if k != bias}
    wrong_shape = {**state, bias: torch.zeros(state[bias].numel() + 1)}
    for bad in (other_dtype, missing, wrong_shape):
        assert built_with_weights(lambda: create_model("lenet5", num_classes=3), bad) is None
    assert built_with_weights(lambda: create_model("no-such-model"), state) is None


def _checkpoint(model: torch.nn.Module, path: Path) -> Path:
    c, h, w = model.default_input_shape
    prep = Preprocessing((0.5,) * c, (0.25,) * c, (h, w), (h, w), c)
    meta = {
        "model": model.cnnlab_spec,
        "classes": ["a", "b", "c"],
        "preprocessing": prep.to_dict(),
        "input_shape": [c, h, w],
    }
    save_checkpoint(path, Checkpoint(model.eval().state_dict(), meta))
    return path


@pytest.mark.parametrize("name", ["googlenet", "resnet20", "airbench94"])
def test_a_loaded_run_equals_the_saved_network(name: str, tmp_path: Path) -> None:
    """GoogLeNet (truncated-normal initialisation, auxiliary heads), a CIFAR ResNet (option-A
    shortcuts) and airbench94 (no head bias): the loaded network is the saved one, tensor for
    tensor and logit for logit, in eval mode."""
    torch.manual_seed(0)
    saved = create_model(name, num_classes=3)
    with torch.no_grad():  # BatchNorm statistics that differ from the initial ones
        for module in saved.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    run = load_run(_checkpoint(saved, tmp_path / "c.safetensors"))
    loaded = run.model.state_dict()
    assert all(torch.equal(t, loaded[key]) for key, t in saved.state_dict().items())
    assert not run.model.training
    x = torch.randn(2, *saved.default_input_shape)
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), saved.eval()(x), rtol=0, atol=0)


def test_a_checkpoint_of_another_dtype_is_cast_as_before(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = create_model("lenet5", num_classes=3).double()
    run = load_run(_checkpoint(saved, tmp_path / "c.safetensors"))
    assert {p.dtype for p in run.model.parameters()} == {torch.float32}
    torch.testing.assert_close(
        run.model.state_dict(), {k: v.float() for k, v in saved.state_dict().items()}
    )
