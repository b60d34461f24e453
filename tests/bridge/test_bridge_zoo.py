"""Every registered model's layers, traced into the NumPy engine, match torch: logits and every
parameter gradient of one training-mode step (auxiliary heads included), the weights and
BatchNorm statistics after one SGD step, and the eval-mode logits. The models run are
:func:`zoo_inputs.distinct_models` (each other model only repeats the layers, adjacent pairs
and blocks of one of them: VGG-16 of VGG-13, ResNet-152 of ResNet-50).

Every comparison is per tensor, at sane magnitudes, with tolerances that hold on any CPU (BLAS
sums in a different order on Intel and AMD): the SGD step moves each weight by at most 1% of the
largest gradient (batch-2 BatchNorm over 1x1 maps makes ImageNet ResNets' gradients reach 1e4,
and a fixed learning rate of 0.1 then blows the eval-mode logits up to 1e107, where a difference
measures summation order, not correctness), and :func:`_close` refuses to compare values that
blew up.

Inputs are the smallest each architecture takes, batch 2, 5 classes, in float64 (to 1e-7
relative). VGG and AlexNet, whose 100M-weight classifiers make every pass memory-bound, run in
float32 (to 1e-4), except VGG-BN (see ``BATCH``). Dropout is set to p=0 in both engines for the
comparison (its masks come from different generators; dropout itself is tested in tests/scratch
and tests/bridge).
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import scratch
from cnnlab.bridge import to_scratch
from cnnlab.models import create_model, get_model_entry, list_models
from cnnlab.scratch.functional import cross_entropy, cross_entropy_backward
from zoo_inputs import distinct_models, zoo_models

#: Smallest input side per model (the stem's stride and pools need these); default: 32 or less.
SMALLEST = {"alexnet": 63, "nin": 39, "resnet20": 16, "resnet32": 16, "resnet56": 16}
#: Batch-norm over a handful of values (batch 2, a 1x1 or 2x2 map) is ill-conditioned
#: (``d / sqrt(d**2/4 + eps)``) and deep stacks of it magnify round-off: the 50+ layer ResNets
#: reach 1e-6 in float64 with 2 images (1e-11 with 4); VGG-BN reaches 1e-3 in float32, so it
#: stays in float64 (1e-12) and only the BatchNorm-free VGGs and AlexNet run in float32.
BATCH = {"resnet50": 4, "resnet101": 4, "resnet152": 4}
FLOAT32 = {"alexnet", *(n for n in list_models() if n.startswith("vgg") and "_bn" not in n)}
STEP = 0.01  # the SGD step's largest weight change, relative to nothing (weights are ~0.1-1)
SANE = 1e6  # no compared value may be larger: beyond it, round-off dominates every difference
#: A gradient tensor's scale is at least this fraction of the largest gradient of any parameter:
#: gradients that are zero up to round-off (a convolution bias before BatchNorm) are then
#: compared against noise of the whole backward pass, every other tensor against itself.
GRAD_FLOOR = 1e-4
SAMPLE = 100_000  # elements compared per tensor (all of them for smaller tensors)


def _close(
    ours: np.ndarray, theirs: torch.Tensor, what: str, rtol: float, scale: float = 0.0
) -> None:
    """Largest difference within ``rtol`` of the tensor's largest magnitude (or of ``scale``
    when that is larger: the floor for tensors that are zero up to round-off), on a fixed sample
    of the elements of huge tensors. Refuses tensors whose values blew up past :data:`SANE`."""
    expected = theirs.detach().numpy()
    assert ours.shape == expected.shape, what
    a, b = ours.reshape(-1), expected.reshape(-1)
    if a.size > SAMPLE:
        index = np.random.default_rng(0).choice(a.size, SAMPLE, replace=False)
        a, b = a[index], b[index]
    scale = max(scale, float(np.abs(b).max(initial=0.0)))
    assert scale < SANE, f"{what}: values up to {scale:.3e} are too large to compare"
    diff = float(np.abs(a - b).max(initial=0.0))
    assert diff <= rtol * scale + 1e-14, f"{what}: max |diff| {diff:.3e}, max |torch| {scale:.3e}"


@pytest.mark.parametrize("name", zoo_models(distinct_models()))
def test_model_matches_torch(name: str) -> None:
    dtype, rtol = (torch.float32, 1e-4) if name in FLOAT32 else (torch.float64, 1e-7)
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).to(dtype)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    net = to_scratch(model, torch.empty(0, dtype=dtype).numpy().dtype)
    keys = [k for k, _ in net.named_parameters()] + [k for k, _ in net.named_buffers()]
    assert sorted(keys) == sorted(model.state_dict())
    c, side = get_model_entry(name).default_input[0], SMALLEST.get(name, 32)
    side = min(side, get_model_entry(name).default_input[1])
    batch = BATCH.get(name, 2)
    x = torch.randn(batch, c, side, side, dtype=dtype)
    y = torch.arange(batch) % 5

    # one training-mode step: loss incl. auxiliary heads, gradients, SGD update
    model.train()
    net.train()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    for aux in model.aux_outputs:
        loss = loss + model.aux_loss_weight * F.cross_entropy(aux, y)
    loss.backward()
    grad_scale = max(float(p.grad.abs().max()) for p in model.parameters())
    # plain SGD: a first momentum step is the same update (its buffer starts as the gradient;
    # momentum is tested in tests/scratch), and VGG's buffers would add 2 x 1.2 GB in float64
    sgd = {"lr": STEP / grad_scale}
    torch_opt = torch.optim.SGD(model.parameters(), **sgd)

    ours = net.forward(x.numpy())
    _close(ours, logits, f"{name} training logits", rtol / 10)
    assert len(net.aux_outputs) == len(model.aux_outputs)
    ours_loss, cache = cross_entropy(ours, y.numpy())
    aux_grads = []
    for a_ours, a_torch in zip(net.aux_outputs, model.aux_outputs):
        _close(a_ours, a_torch, f"{name} auxiliary logits", rtol / 10)
        aux_loss, aux_cache = cross_entropy(a_ours, y.numpy())
        ours_loss += model.aux_loss_weight * aux_loss
        aux_grads.append(cross_entropy_backward(aux_cache, model.aux_loss_weight))
    assert ours_loss == pytest.approx(loss.item(), rel=rtol)
    scratch_opt = scratch.SGD(net.parameters(), **sgd)
    net.backward(cross_entropy_backward(cache), needs_input_grad=False, aux_grads=aux_grads)
    params = dict(net.named_parameters())
    for key, p in model.named_parameters():
        floor = GRAD_FLOOR * grad_scale
        _close(params[key].grad, p.grad, f"{name} gradient of {key}", rtol, floor)

    torch_opt.step()
    scratch_opt.step()
    buffers = dict(net.named_buffers())
    for key, p in model.named_parameters():
        _close(params[key].data, p, f"{name} {key} after one SGD step", rtol)
    for key, b in model.named_buffers():
        _close(np.asarray(buffers[key]), b, f"{name} {key} after one training step", rtol)

    # eval mode: running statistics, no auxiliary heads
    model.eval()
    net.eval()
    with torch.no_grad():
        expected = model(x)
    _close(net.forward(x.numpy(), keep_cache=False), expected, f"{name} eval logits", rtol)
    assert net.aux_outputs == ()
    del model, net, torch_opt, scratch_opt, params, buffers
    gc.collect()
