"""Hostile checkpoints and run files, through the real CLI: every metadata field removed or
mistyped, every part of the training state removed or mistyped (``--resume``), bit flips,
huge declared headers and tensors (sparse files), pickles, garbled ``config.json`` and
``history.json``. Each ends in one line and exit 2, or in correct behaviour."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from cnnlab.training.checkpoint import load_checkpoint
from run_helpers import trained_subset_run

WRONG = {str: 5, int: "7", float: "x", bool: "yes", list: "x", dict: [1], type(None): [[]]}


def read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """``(safetensors header, cnnlab document, tensor bytes)`` of a checkpoint file."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    return header, json.loads(header["__metadata__"]["cnnlab"]), raw[8 + length :]


def write_file(path: Path, header: dict[str, Any], document: Any, data: bytes) -> None:
    """A checkpoint with the given cnnlab document and the same tensor bytes."""
    header = {**header, "__metadata__": {"cnnlab": json.dumps(document)}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def with_document(source: Path, target: Path, change) -> Path:
    header, document, data = read_file(source)
    change(document)
    write_file(target, header, document, data)
    return target


def paths_of(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a JSON tree (objects only; lists are leaves)."""
    out = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.append((*prefix, key))
            out += paths_of(value, (*prefix, key))
    return out


def removed(path: tuple):
    def change(tree):
        for key in path[:-1]:
            tree = tree[key]
        del tree[path[-1]]

    return change


def mistyped(path: tuple):
    def change(tree):
        for key in path[:-1]:
            tree = tree[key]
        tree[path[-1]] = WRONG[type(tree[path[-1]])]

    return change


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, cache_dir) -> Path:
    """A LeNet-5 run of one epoch at a constant rate: ``--resume --epochs 2`` continues it."""
    return trained_subset_run(
        tmp_path_factory, cache_dir, name="short", epochs=1, seed=0, schedule="constant"
    )


@pytest.fixture
def resumable(short_run, tmp_path) -> Path:
    """A private copy of :func:`short_run`."""
    return Path(shutil.copytree(short_run, tmp_path / "run"))


@pytest.fixture(scope="module")
def digit(tmp_path_factory, subset) -> Path:
    path = tmp_path_factory.mktemp("digit") / "seven.png"
    Image.fromarray(subset.test.images[0, 0].numpy(), "L").save(path)
    return path


def _outcome(status: int, out: str, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    if status == 0:
        return "ok"
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, (status, err)
    return lines[0]


def test_each_metadata_field_removed_or_mistyped(trained_run, tmp_path, digit, cli):
    """best.safetensors with each field of its metadata (``meta.*``) and document removed and
    mistyped: predict answers correctly or refuses in one line naming the file."""
    best = trained_run / "best.safetensors"
    _, document, _ = read_file(best)
    fields = [p for p in paths_of(document) if p[0] != "training"]
    assert len(fields) >= 25
    tried = refused = 0
    for number, field in enumerate(fields):
        for name, change in (("removed", removed(field)), ("mistyped", mistyped(field))):
            target = with_document(best, tmp_path / f"{number}-{name}.safetensors", change)
            line = _outcome(*cli("predict", target, digit, cache=False))
            tried += 1
            if line != "ok":
                refused += 1
                assert str(target) in line, line
    assert tried == 2 * len(fields) and refused > len(fields)


SEMANTIC = [
    ("classes", ["a", "b"]),
    ("model", {"name": "lenet5", "num_classes": 10, "in_channels": 3, "kwargs": {}}),
    ("model", {"name": "no-such-model", "num_classes": 10, "in_channels": 1, "kwargs": {}}),
    ("model", {"name": "lenet5", "num_classes": 10, "in_channels": 1, "kwargs": {"x": 1}}),
    ("input_shape", [3, 32, 32]),
    ("input_shape", [1, 32]),
    ("preprocessing.channels", 3),
    ("preprocessing.std", [0.0]),
    ("preprocessing.mean", [0.1, 0.2]),
    ("preprocessing.image_size", [0, 28]),
    ("version", 2),
]


@pytest.mark.parametrize(("field", "value"), SEMANTIC)
def test_well_typed_metadata_that_does_not_fit_is_refused(
    trained_run, tmp_path, digit, cli, field, value
):
    def change(document):
        tree = document["meta"]
        *parents, last = field.split(".")
        for key in parents:
            tree = tree[key]
        tree[last] = value

    target = with_document(trained_run / "best.safetensors", tmp_path / "c.safetensors", change)
    line = _outcome(*cli("predict", target, digit, cache=False))
    assert line != "ok" and str(target) in line, line


#: Training-state parts newer than format 1 (the rescue's base rate, the divergence watch).
OPTIONAL_TRAINING_PARTS = {("training", "lr"), ("training", "loss_watch")}


def test_each_training_state_part_removed_or_mistyped_on_resume(resumable, cli):
    """last.safetensors with each part of the training state removed or mistyped: --resume
    refuses in one line naming the file (it never trains on a broken state)."""
    last = resumable / "last.safetensors"
    _, document, _ = read_file(last)
    parts = [("training", key) for key in document["training"]]
    parts += [("training", "optimizer", key) for key in document["training"]["optimizer"]]
    assert {"epoch", "step", "optimizer", "rng", "history"} <= set(document["training"])
    saved = last.read_bytes()
    for part in parts:
        # parts added after format 1 may be absent (older checkpoints), never mistyped
        optional = part in OPTIONAL_TRAINING_PARTS
        for change in (mistyped(part),) if optional else (removed(part), mistyped(part)):
            with_document(last, last, change)
            status, out, err = cli("train", "--resume", resumable, "--epochs", "2")
            line = _outcome(status, out, err)
            assert line != "ok", (part, "trained on a broken state")
            assert str(last) in line, line
            last.write_bytes(saved)


def test_a_flipped_bit_in_the_weights_is_refused(run_copy, digit, cli, expect_error):
    best = run_copy / "best.safetensors"
    raw = bytearray(best.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little")
    for at in (start, (start + len(raw)) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[at] ^= 0x10
        best.write_bytes(bytes(flipped))
        status, _, err = cli("predict", run_copy, digit, cache=False)
        expect_error(status, err, "SHA-256", str(best))
    best.write_bytes(bytes(raw))
    assert cli("predict", run_copy, digit, cache=False)[0] == 0


def test_a_checkpoint_without_a_hash_still_loads(trained_run, tmp_path, digit, cli):
    """Checkpoints written before the SHA-256 was recorded load as before."""
    best = trained_run / "best.safetensors"
    old = with_document(best, tmp_path / "old.safetensors", removed(("tensor_sha256",)))
    new_status, new_out, new_err = cli("predict", best, digit, "--json", cache=False)
    old_status, old_out, err = cli("predict", old, digit, "--json", cache=False)
    assert new_status == old_status == 0 and json.loads(old_out) != []
    assert err == new_err and "warning" not in err  # silently, as a checkpoint with a hash
    assert json.loads(old_out)[0]["top_k"] == json.loads(new_out)[0]["top_k"]
    ours, theirs = load_checkpoint(best).model_state, load_checkpoint(old).model_state
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_huge_sparse_files_are_refused_before_reading(trained_run, tmp_path, digit, cli):
    """64 GB sparse files: a huge declared header, and a valid header declaring 64 GB of
    tensors; both refused in one line without reading (or allocating) the file."""
    size = 64 * 2**30
    huge_header = tmp_path / "huge-header.safetensors"
    with huge_header.open("wb") as handle:
        handle.write(struct.pack("<Q", 2**40))
        handle.truncate(size)
    _, document, _ = read_file(trained_run / "best.safetensors")
    tensors = {"model.w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}
    huge_tensor = tmp_path / "huge-tensor.safetensors"
    write_file(huge_tensor, tensors, document, b"")
    with huge_tensor.open("r+b") as handle:
        handle.truncate(huge_tensor.stat().st_size + size)
    assert huge_header.stat().st_blocks * 512 < 2**20  # sparse: nothing on disk
    for path, fragment in ((huge_header, "header"), (huge_tensor, "memory")):
        line = _outcome(*cli("predict", path, digit, cache=False))
        assert str(path) in line and fragment in line, line


def test_pickles_and_other_files_are_refused(tmp_path, digit, cli):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "code-ran"),))

    files = {
        "pickle.safetensors": pickle.dumps(Boom()),
        "torch.safetensors": None,
        "empty.safetensors": b"",
        "seven-bytes.safetensors": b"1234567",
        "json.safetensors": b'{"a": 1}',
        "zeros.safetensors": bytes(4096),
        "negative.safetensors": struct.pack("<q", -1) + b"{}",
    }
    for name, data in files.items():
        path = tmp_path / name
        if data is None:
            torch.save({"w": Boom()}, path)
        else:
            path.write_bytes(data)
        line = _outcome(*cli("predict", path, digit, cache=False))
        assert str(path) in line, line
    (tmp_path / "dir.safetensors").mkdir()
    os.mkfifo(tmp_path / "fifo.safetensors")
    for name, what in (("dir.safetensors", "directory"), ("fifo.safetensors", "FIFO")):
        line = _outcome(*cli("predict", tmp_path / name, digit, cache=False))
        assert what in line, line
    assert not (tmp_path / "code-ran").exists()


CONFIGS = [
    [1, 2, 3],
    "a string",
    {"config": [], "meta": {}},
    {"meta": {}},
    {"config": {"seed": "7"}},
    {"config": {"classes": 5}},
    {"config": {"epochs": 2.5}},
    {"config": {"lr": "fast"}},
    {"config": {"model_kwargs": []}},
    {"config": {"image_size": ["a", 2]}},
    {"config": {"no_such_option": 1}},
]


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_a_config_json_with_wrong_types_is_one_line(run_copy, cli, index, digit):
    path = run_copy / "config.json"
    saved = json.loads(path.read_text())
    broken = CONFIGS[index]
    if isinstance(broken, dict) and "config" in broken and isinstance(broken["config"], dict):
        broken = {"config": {**saved["config"], **broken["config"]}, "meta": saved["meta"]}
    path.write_text(json.dumps(broken))
    line = _outcome(*cli("train", "--resume", run_copy, "--epochs", "3"))
    assert line != "ok" and "config.json" in line, line
    for command in (("evaluate", run_copy), ("predict", run_copy, digit)):
        line = _outcome(*cli(*command, cache=command[0] != "predict"))
        assert line == "ok" or "config.json" in line, line


@pytest.mark.parametrize("garbled", [b"{not json", b"[1, 2]", b'{"epoch": [1], "history": {}}'])
def test_a_garbled_history_warns_once_and_nothing_stops(resumable, cli, digit, garbled, tmp_path):
    run_copy = resumable
    (run_copy / "history.json").write_bytes(garbled)
    runs = [
        ("evaluate", run_copy, "--json"),
        ("predict", run_copy, digit),
        ("report", run_copy, "--output", tmp_path / "report.html"),
    ]
    for command in runs:
        status, _, err = cli(*command, cache=command[0] != "predict")
        warnings = [line for line in err.splitlines() if "history.json" in line]
        assert status == 0 and len(warnings) == 1, (command, err)
        assert str(run_copy / "history.json") in warnings[0] and "--resume" in warnings[0]
    status, _, err = cli("train", "--resume", run_copy, "--epochs", "2")
    assert status == 0, err
    assert sum("history.json" in line for line in err.splitlines()) == 1
    history = json.loads((run_copy / "history.json").read_text())
    assert history["epoch"] == [1, 2]  # rewritten from last.safetensors


def test_orphaned_temp_files_of_a_killed_writer_are_removed(resumable, cli):
    """A process killed (SIGKILL) between writing its temporary file and the rename leaves the
    file behind; the next write into the folder (here: resuming) removes it."""
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        "from cnnlab import fileio\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "fileio.atomic_write_bytes(sys.argv[1], b'x' * 1000)\n"
    )
    run_copy = resumable
    target = run_copy / "last.safetensors"
    before = target.read_bytes()
    result = subprocess.run([sys.executable, "-c", script, str(target)], timeout=120, check=False)
    assert result.returncode == -9
    orphans = [p for p in run_copy.iterdir() if p.name.endswith(".tmp")]
    assert len(orphans) == 1 and target.read_bytes() == before
    assert cli("train", "--resume", run_copy, "--epochs", "2")[0] == 0
    assert not [p for p in run_copy.iterdir() if p.name.endswith(".tmp")]
