import pickle

import pytest
import torch

from cnnlab.errors import CheckpointError
from cnnlab.fileio import atomic_write_bytes
from cnnlab.training import checkpoint as ckpt_mod
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def _optimizer_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_tensors_ints_and_tuples(tmp_path):
    model, opt = _optimizer_state()
    training = {
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "epoch": 3,
        "nested": {"t": (1, 2.5, None), "x": [True, "s"]},
    }
    save_checkpoint(tmp_path / "c.safetensors", Checkpoint(model.state_dict(), {"m": 1}, training))
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    assert loaded.meta == {"m": 1}
    assert all(torch.equal(loaded.model_state[k], v) for k, v in model.state_dict().items())
    assert loaded.training["nested"] == training["nested"]
    assert torch.equal(loaded.training["rng"], training["rng"])
    restored = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    restored.load_state_dict(loaded.training["optimizer"])
    assert set(restored.state_dict()["state"]) == {0, 1}  # int keys survive
    assert torch.equal(
        restored.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_pickle_is_refused_and_never_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="expected a cnnlab checkpoint"):
        load_checkpoint(tmp_path / "evil.safetensors")


def test_truncated_checkpoint_is_refused(tmp_path):
    save_checkpoint(tmp_path / "c.safetensors", Checkpoint({"w": torch.ones(100)}, {}))
    data = (tmp_path / "c.safetensors").read_bytes()
    (tmp_path / "c.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="expected a cnnlab checkpoint"):
        load_checkpoint(tmp_path / "c.safetensors")


def test_interrupted_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, Checkpoint({"w": torch.zeros(10)}, {"v": 1}))

    def dying_write(target, *parts):
        # simulate a kill half-way through writing the temporary file
        data = b"".join(bytes(part) for part in parts)
        partial = target.parent / f".{target.name}.half.tmp"
        partial.write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, Checkpoint({"w": torch.ones(10)}, {"v": 2}))
    assert load_checkpoint(path).meta == {"v": 1}


def test_atomic_write_cleans_up_its_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "f", b"data")
    assert list(tmp_path.iterdir()) == []
