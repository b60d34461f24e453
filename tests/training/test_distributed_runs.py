"""Real multi-process training: torchrun and ``cnnlab train --nproc`` subprocesses on
127.0.0.1 (gloo, one thread each) training LeNet-5 on real MNIST digits.

The subprocesses cannot see the test-registered ``mnist-subset``, so the digits are written
as a PNG folder (1566 training and 400 test digits of the committed subset; after the 10%
validation split, 1409 training examples: 22 batches of 64 and a last batch of one, whose
share on rank 1 is empty). Every launch is bounded by a hard timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnlab import create_model
from cnnlab.data.dataset import split_validation
from cnnlab.data.datasets import load_dataset
from cnnlab.evaluation.evaluate import evaluate
from cnnlab.evaluation.inputs import DataSelection
from cnnlab.inference import compute_logits
from cnnlab.runs import load_run
from cnnlab.training import loop
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit
from process_helpers import children
from run_helpers import assert_same_run

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("distributed-runs")

TRAIN_DIGITS, TEST_DIGITS = 1566, 400
FOLDER = {"image_size": [32, 32], "channels": 1}  # LeNet-5's input: how the folder converts
PROBE = Path(__file__).parent / "ddp_probe.py"
LAUNCH_TIMEOUT = 300  # seconds; a launch takes 10-40 s on a busy 2-core machine
SGD = {"epochs": 2, "batch_size": 64, "optimizer": "momentum", "lr": 0.05, "seed": 1}
AUGMENTED = (
    *("--epochs", "2", "--batch-size", "64", "--checkpoint-every", "3", "--seed", "3"),
    *("--augment", "rotation_range=10,width_shift_range=0.1"),
)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli_args(option_dict: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in option_dict.items()]


@pytest.fixture(scope="module")
def digits(tmp_path_factory, subset) -> Path:
    root = tmp_path_factory.mktemp("ddp-digits")
    for split, data, count in (
        ("train", subset.train, TRAIN_DIGITS),
        ("test", subset.test, TEST_DIGITS),
    ):
        for i in range(count):
            folder = root / split / str(int(data.labels[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[i, 0].numpy(), "L").save(folder / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory, digits) -> Path:
    """The folder decoded (and indexed for streaming) once: every process reads the cache."""
    cache = tmp_path_factory.mktemp("ddp-cache")
    for stream in (False, True):
        load_dataset(str(digits), cache, **FOLDER, stream=stream, workers=0)
    return cache


def _train_args(digits: Path, cache: Path, out: Path) -> list[str]:
    return [
        *("train", "lenet5", "--data", str(digits), "--out", str(out)),
        *("--cache-dir", str(cache), "--no-progress"),
    ]


# ---- one run on 2 processes against the same run on 1 --------------------------------------------
@pytest.fixture(scope="module")
def one_process(tmp_path_factory, digits, cache):
    """The 1-process run (in memory, in this process) and the batches of its steps."""
    out = tmp_path_factory.mktemp("one") / "run"
    steps = []
    original = loop.Trainer._train_step

    def recording(self, batch, images, global_size):
        steps.append([self.epoch, self.batches_done, batch.tolist()])
        return original(self, batch, images, global_size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop.Trainer, "_train_step", recording)
        fit("lenet5", str(digits), out=out, cache_dir=cache, verbose=False, **SGD)
    return out, steps


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, digits, cache):
    """The same run on 2 torchrun processes, streamed (each rank decodes only its shard),
    then ``cnnlab evaluate`` in the same process group; each rank's record (ddp_probe.py)."""
    root = tmp_path_factory.mktemp("two")
    out, record = root / "run", root / "record"
    record.mkdir()
    evaluate_args = ("evaluate", str(out), "--json", "--cache-dir", str(cache), "--workers", "0")
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"),
        *(str(PROBE), str(record), *_train_args(digits, cache, out), *_cli_args(SGD)),
        *("--stream", "--workers", "0", "--json", "--then", *evaluate_args),
    ]
    result = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((record / f"rank-{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


def test_two_processes_train_on_the_same_samples_per_step_as_one(one_process, two_processes):
    _, one_steps = one_process
    _, ranks = two_processes
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == len(one_steps) == 46
    for step, (zero, one) in enumerate(zip(ranks[0]["batches"], ranks[1]["batches"])):
        assert zero[:2] == one[:2] == one_steps[step][:2]  # epoch, position
        batch = [None] * (len(zero[2]) + len(one[2]))
        batch[0::2], batch[1::2] = zero[2], one[2]  # rank r trains on batch[r::2]
        assert batch == one_steps[step][2]
    assert len(ranks[1]["batches"][-1][2]) == 0  # the last batch of one: rank 1 had none


def test_the_weights_agree_with_one_process_per_tensor(one_process, two_processes):
    one = load_checkpoint(one_process[0] / "last.safetensors").model_state
    two = load_checkpoint(two_processes[0] / "last.safetensors").model_state
    torch.manual_seed(SGD["seed"])
    start = create_model("lenet5", num_classes=10, in_channels=1).state_dict()
    assert one.keys() == two.keys() == start.keys()
    for name, value in one.items():
        # 46 SGD steps whose gradients were summed in another order: float32 rounding only,
        # a thousandth of how far training moved the weights
        difference = (value - two[name]).abs().max().item()
        assert difference <= 1e-5 * value.abs().max().item() + 1e-7, name
        assert difference <= 1e-3 * (value - start[name]).abs().max().item(), name


def test_gathered_metrics_equal_the_one_process_evaluation_of_the_same_weights(
    two_processes, digits, cache
):
    out, ranks = two_processes
    # validation: the last epoch's numbers, gathered from both ranks, against one process
    history = json.loads((out / "history.json").read_text())["history"]
    run = load_run(out, "last")
    train = load_dataset(str(digits), cache, **FOLDER, workers=0).train
    _, val = split_validation(train, 0.1, SGD["seed"])
    logits = compute_logits(run.model, val, run.preprocessing)
    assert history["val_accuracy"][-1] == pytest.approx(
        (logits.argmax(1) == val.labels).float().mean().item()
    )
    assert history["val_loss"][-1] == pytest.approx(
        F.cross_entropy(logits, val.labels).item(), rel=1e-5
    )
    # test: the evaluation printed by rank 0 against ``evaluate`` in one process
    alone = evaluate(out, selection=DataSelection(workers=0), cache_dir=cache).to_dict()
    gathered = json.loads(ranks[0]["outputs"][1])
    assert gathered["examples"] == alone["examples"] == TEST_DIGITS
    for exact in ("accuracy", "top_k", "confusion_matrix", "classes"):
        assert gathered[exact] == alone[exact], exact
    assert gathered["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    assert [m["index"] for m in gathered["mistakes"]] == [m["index"] for m in alone["mistakes"]]
    assert [r["support"] for r in gathered["per_class"]] == [
        r["support"] for r in alone["per_class"]
    ]
    trained = json.loads(ranks[0]["outputs"][0])  # ``train --json``: its own test evaluation
    assert trained["test"]["accuracy"] == alone["accuracy"]
    assert ranks[1]["outputs"] == ["", ""]  # only rank 0 prints


def test_only_rank_zero_writes_and_each_rank_decodes_only_its_shard(two_processes, digits, cache):
    out, ranks = two_processes
    inside = (str(out), str(cache))
    written = [[p for p in rank["written"] if p.startswith(inside)] for rank in ranks]
    assert written[1] == []
    assert {Path(p).name for p in written[0] if p.startswith(str(out))} >= {
        "config.json",
        "history.json",
        "history.csv",
        "best.safetensors",
        "last.safetensors",
        "curves.png",
    }
    assert json.loads((out / "config.json").read_text())["meta"]["world_size"] == 2
    splits = load_dataset(str(digits), cache, **FOLDER, stream=True, workers=0)
    train, val = split_validation(splits.train, 0.1, SGD["seed"])
    for rank, record in enumerate(ranks):
        expected = Counter(str(train.paths[i]) for _, _, batch in record["batches"] for i in batch)
        for split, times in ((val, SGD["epochs"]), (splits.test, 1)):  # contiguous halves
            half = (len(split) + 1) // 2
            part = split.paths[rank * half : (rank + 1) * half]
            expected.update({str(p): times for p in part})
        assert Counter(record["decoded"]) == expected


# ---- several machines, lost workers ------------------------------------------------------------
@pytest.fixture(scope="module")
def two_machines(tmp_path_factory, digits, cache) -> Path:
    """One run by two torchrun invocations standing in for two machines (``--nnodes 2``, c10d
    rendezvous on 127.0.0.1), one process each, with augmentation (per-rank random streams)."""
    root = tmp_path_factory.mktemp("machines")
    out = root / "run"
    endpoint = f"127.0.0.1:{_free_port()}"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"),
        *("--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint),
        *("--rdzv-id", "cnnlab-two-machines", "-m", "cnnlab"),
        *_train_args(digits, cache, out),
        *AUGMENTED,
    ]
    logs = [root / f"machine-{i}.log" for i in (0, 1)]
    machines = [
        subprocess.Popen(command, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)
        for log in logs
    ]
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    try:
        codes = [m.wait(timeout=max(1.0, deadline - time.monotonic())) for m in machines]
    finally:
        for machine in machines:
            machine.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    text = "".join(log.read_text() for log in logs)
    assert text.count("epoch 2/2") == 1 and text.count("test accuracy") == 1  # rank 0 only
    return out


def test_two_machines_finish_one_run(two_machines):
    config = json.loads((two_machines / "config.json").read_text())
    assert config["meta"]["world_size"] == 2
    checkpoint = load_checkpoint(two_machines / "last.safetensors")
    assert checkpoint.meta["epoch"] == 2 and len(checkpoint.training["rng_by_rank"]) == 2
    states = [r["torch"] for r in checkpoint.training["rng_by_rank"]]
    assert not torch.equal(*states)  # each rank drew its own augmentations


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(item[5:]) for item in environ if item.startswith(b"RANK=")]
    return ranks[0] if ranks else None


def _worker(launcher: subprocess.Popen, rank: int, not_pid: int | None = None) -> int | None:
    """The pid of the launcher's worker of ``rank`` (a child of the launcher, which runs
    torchrun's agent), other than ``not_pid``; None while there is none."""
    workers = (p for p in children(launcher.pid) if p != not_pid and _rank_of(p) == rank)
    return next(workers, None)


def _kill_rank_after_a_checkpoint(
    launcher: subprocess.Popen, checkpoint: Path, rank: int, not_pid: int | None = None
) -> int:
    """SIGKILL the worker of ``rank`` (other than ``not_pid``, a worker killed before) as soon
    as its group has written ``checkpoint``: the run's first mid-epoch checkpoint, or, in a
    restarted group, the first one it wrote itself. Returns the killed worker's pid."""
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    worker = before = None
    while launcher.poll() is None and time.monotonic() < deadline:
        if worker is None:
            worker = _worker(launcher, rank, not_pid)
            if worker is not None:  # the group's own writes replace the file (a new inode)
                before = _inode(checkpoint) if not_pid is not None else None
        elif _inode(checkpoint) not in (None, before):
            os.kill(worker, signal.SIGKILL)
            return worker
        time.sleep(0.002)
    pytest.fail("the run ended (or timed out) before a worker could be killed mid-run")


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _shortcut(args: list[str], log: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args],
        env=_env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        **popen,
    )


def test_a_killed_worker_is_restarted_then_the_shortcut_stops_in_one_line_and_resumes_bitwise(
    tmp_path, digits, cache, cli, expect_error, two_machines
):
    """``--nproc 2 --max-restarts 1`` (the shortcut equals plain torchrun): rank 1 is killed
    right after the first mid-epoch checkpoint; torchrun's agent restarts both processes,
    which continue the run from that checkpoint. Rank 1 of the restarted group is killed once
    the group has written a checkpoint of its own: with no restart left, the shortcut stops
    in one line and keeps the checkpoint. The kept run is refused on one process; continued
    on two, on one core (so the launch also warns of oversubscription), it ends bitwise as
    the uninterrupted 2-process run of the two machines."""
    out, log = tmp_path / "run", tmp_path / "launch.log"
    launcher = _shortcut(
        [*_train_args(digits, cache, out), *AUGMENTED, "--nproc", "2", "--max-restarts", "1"], log
    )
    try:
        first = _kill_rank_after_a_checkpoint(launcher, out / "last.safetensors", rank=1)
        _kill_rank_after_a_checkpoint(launcher, out / "last.safetensors", rank=1, not_pid=first)
        status = launcher.wait(timeout=LAUNCH_TIMEOUT)
    finally:
        launcher.kill()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert any("restart 1 of the 2 processes: continuing" in line for line in lines), lines
    errors = [line for line in lines if line.startswith("cnnlab: error:")]
    assert status == 2 and len(errors) == 1 and errors[0] == lines[-1], lines
    assert "received rank 1 stopped by signal SIGKILL with no restart left" in errors[0]
    assert f"continue with cnnlab train --resume {out} --nproc 2" in errors[0]
    checkpoint = load_checkpoint(out / "last.safetensors")  # intact
    assert checkpoint.meta["world_size"] == 2 and len(checkpoint.training["rng_by_rank"]) == 2
    status, _, err = cli("train", "--resume", out)  # one process
    expect_error(status, err, "expected world size 2 to resume", "received world size 1")
    resume = ["train", "--resume", str(out), "--cache-dir", str(cache), "--nproc", "2"]
    one_core = {min(os.sched_getaffinity(0))}
    resumed = _shortcut(
        resume,
        tmp_path / "resume.log",
        preexec_fn=lambda: os.sched_setaffinity(0, one_core),
    )
    try:
        assert resumed.wait(timeout=LAUNCH_TIMEOUT) == 0, (tmp_path / "resume.log").read_text()
    finally:
        resumed.kill()
    resume_log = (tmp_path / "resume.log").read_text()
    assert "2 training processes on 1 CPU cores" in resume_log, resume_log
    assert_same_run(out, two_machines)


def test_a_process_group_that_never_completes_stops_in_one_line(tmp_path, digits, cache):
    """A process told it is rank 0 of 2 whose peer never comes: it waits --dist-timeout
    seconds, not forever."""
    port = _free_port()
    env = {
        **_env(),
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab",
            *_train_args(digits, cache, tmp_path / "run"),
            "--dist-timeout",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"cnnlab: error: expected 2 processes to join the process group at 127.0.0.1:{port} "
        "within 2 s, received"
    )
    assert not (tmp_path / "run").exists()
