"""cnnlab.scratch imports nothing but NumPy: prove it in a subprocess where torch cannot load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test (import of {name!r})")
            return None

    sys.meta_path.insert(0, BlockTorch())

    import numpy as np
    from cnnlab import scratch
    from cnnlab.scratch import nn

    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1, rng=rng), nn.Linear(4 * 4 * 4, 3, rng=rng),
    )
    loss_fn = nn.CrossEntropyLoss()
    opt = scratch.AdamW(model.parameters(), lr=1e-2)
    x, y = rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 8)
    losses = []
    for step in range(20):
        scratch.apply_schedule(opt.param_groups, scratch.OneCycleLR(0.05, 20), step)
        opt.zero_grad()
        losses.append(loss_fn(model(x), y))
        model.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < losses[0], losses
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    print("ok", len([m for m in sys.modules if m.startswith("cnnlab")]))
    """
)


def test_scratch_runs_with_torch_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
