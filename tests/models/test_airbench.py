"""airbench94's own parts: the whitening initialisation and the folded logit scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.models import create_model
from cnnlab.models.airbench import LOGIT_SCALE


def test_whitening_filters_decorrelate_the_training_patches() -> None:
    """Correlated colour images: after init_whitening, the first half of the whitening
    filters map the 2x2 patches to unit-variance, uncorrelated outputs (up to eps); the
    second half are their negatives."""
    torch.manual_seed(0)
    mixing = torch.tensor([[1.0, 0.9, 0.8], [0.0, 0.4, 0.3], [0.0, 0.0, 0.2]])
    base = F.avg_pool2d(torch.randn(64, 3, 34, 34), 3, stride=1)  # spatially correlated
    images = torch.einsum("ij,njhw->nihw", mixing, base)  # N x 3 x 32 x 32, correlated channels
    model = create_model("airbench94").double()
    model.init_whitening(images.double(), eps=1e-12)
    weight = model.features.whiten.weight.detach()  # 24 x 3 x 2 x 2
    out = F.conv2d(images.double(), weight[:12])  # N x 12 x 31 x 31
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)  # 12 x (N 31 31)
    covariance = flat @ flat.T / flat.shape[1]
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-5)
    assert torch.equal(weight[12:], -weight[:12])


def test_folded_logit_scale_is_the_reference_sgd_run() -> None:
    """A linear head whose logits are multiplied by 1/9 (the reference), trained with Nesterov
    SGD at lr and weight decay wd, follows exactly the path (divided by 9) of a plain head
    that starts from the weights / 9 and trains at lr / 81 and weight decay wd x 81."""
    torch.manual_seed(0)
    features, labels = torch.randn(32, 16, dtype=torch.float64), torch.randint(0, 10, (32,))
    start = torch.randn(10, 16, dtype=torch.float64)
    scaled = start.clone().requires_grad_()
    folded = (start * LOGIT_SCALE).requires_grad_()
    lr, wd, s2 = 0.3, 5e-3, LOGIT_SCALE**2
    sgd = {"momentum": 0.85, "nesterov": True}
    opt_scaled = torch.optim.SGD([scaled], lr=lr, weight_decay=wd, **sgd)
    opt_folded = torch.optim.SGD([folded], lr=lr * s2, weight_decay=wd / s2, **sgd)
    for _ in range(20):
        for weight, opt, scale in ((scaled, opt_scaled, LOGIT_SCALE), (folded, opt_folded, 1.0)):
            logits = features @ weight.T * scale
            loss = F.cross_entropy(logits, labels, label_smoothing=0.2, reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not torch.allclose(scaled, start)  # it trained
    torch.testing.assert_close(folded.detach(), scaled.detach() * LOGIT_SCALE, rtol=1e-10, atol=0)
    head = create_model("airbench94").classifier[-1]
    assert head.bias is None and head.weight.abs().max() <= LOGIT_SCALE / 16 + 1e-9  # U(±1/√256)/9
