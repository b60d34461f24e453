"""mnistnet is train_mnist_fast's network: the same function as the reference's code, and its
BatchNorm variant normalises the pooled maps."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models import create_model


class Reference(nn.Module):
    """tuomaso/train_mnist_fast, 8_Final_00s76.ipynb, as written there."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5, 1)
        self.conv2 = nn.Conv2d(24, 32, 3, 1)
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return F.log_softmax(self.fc2(x), dim=1)


def test_same_function_as_the_reference():
    torch.manual_seed(0)
    reference = Reference()
    ours = create_model("mnistnet")
    names = ["features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"]
    state = {
        f"{ours_name}.{kind}": value
        for ours_name, (ref_name, _) in zip(names, reference.named_children())
        for kind, value in getattr(reference, ref_name).state_dict().items()
    }
    ours.load_state_dict(state)
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(ours(x).log_softmax(1), reference(x), rtol=1e-5, atol=1e-5)


def test_batch_norm_variant_normalises_the_pooled_maps():
    net = create_model("mnistnet", batch_norm=True, widths=[16, 32])
    assert net.features.conv1.bias is None and net.features.norm1.num_features == 16
    seen = {}

    def record(module, inputs, output) -> None:
        seen["shape"] = inputs[0].shape

    net.features.norm2.register_forward_hook(record)
    net.train()
    net(torch.randn(8, 1, 28, 28))
    assert seen["shape"] == (8, 32, 5, 5)  # after the pool: a quarter of the values


def test_impossible_sizes_are_refused():
    with pytest.raises(ModelError, match="expected two widths >= 1"):
        create_model("mnistnet", widths=[16])
