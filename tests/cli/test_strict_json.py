"""Every ``--json`` output is strict JSON (RFC 8259): a run whose weights hold a NaN gives
non-finite losses and probabilities, printed as ``null``, never ``NaN`` or ``Infinity``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from cnnlab.fileio import strict_json
from cnnlab.training.checkpoint import load_checkpoint, save_checkpoint


def strict_loads(text: str):
    def refuse(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant} in --json output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def nan_run(run_copy):
    """The trained run with one NaN in the last layer's bias (best and last checkpoints)."""
    for name in ("best.safetensors", "last.safetensors"):
        ckpt = load_checkpoint(run_copy / name)
        key = [k for k in ckpt.model_state if k.endswith("bias")][-1]
        ckpt.model_state[key] = ckpt.model_state[key].clone()
        ckpt.model_state[key][0] = math.nan
        save_checkpoint(run_copy / name, ckpt)
    return run_copy


def test_evaluate_and_predict_print_null_for_non_finite_numbers(nan_run, cli, tmp_path, subset):
    status, out, err = cli("evaluate", nan_run, "--json")
    assert status == 0, err
    report = strict_loads(out)
    assert report["loss"] is None and "NaN" not in out and "Infinity" not in out
    image = tmp_path / "digit.png"
    Image.fromarray(subset.test.images[0, 0].numpy(), "L").save(image)
    status, out, err = cli("predict", nan_run, image, "--json", cache=False)
    assert status == 0, err
    (prediction,) = strict_loads(out)
    assert None in [entry["probability"] for entry in prediction["top_k"]]


def test_strict_json_replaces_every_non_finite_number():
    document = {"a": math.inf, "b": [-math.inf, 1.5, {"c": math.nan}], "d": (2, math.nan), "e": 3}
    assert strict_loads(strict_json(document)) == {
        "a": None,
        "b": [None, 1.5, {"c": None}],
        "d": [2, None],
        "e": 3,
    }
    assert strict_json(torch.tensor(1.0).item()) == "1.0"
