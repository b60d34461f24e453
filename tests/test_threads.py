"""Thread counts (cnnlab.threads): ``--threads N`` sets torch's count in a real process (before
or after the command, and during a real training run), ``fit(threads=)`` gives the previous
count back, the automatic choice leaves a core to a process spinning on it, and waiting threads
sleep (OMP_WAIT_POLICY) when another process keeps a core busy, unless the user said
otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from cnnlab.errors import ConfigError
from cnnlab.threads import (
    PASSIVE_WAITING,
    CpuSnapshot,
    check_threads,
    choose_threads,
    choose_waiting,
    cpu_cores,
    cpu_snapshot,
)

TIMEOUT = 300

PROBE = textwrap.dedent(
    """
    import os, sys
    import cnnlab.cli as cli
    during = {}
    command = cli.run_command

    def observed(*args):  # the environment the command runs in
        during.update(policy=os.environ.get("OMP_WAIT_POLICY"))
        return command(*args)

    cli.run_command = observed
    status = cli.main(sys.argv[1:])
    import torch
    after = [os.environ.get(name) for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")]
    print(status, torch.get_num_threads(), during["policy"], *after)
    """
)


def _probe(*argv: str, env: dict[str, str] | None = None) -> tuple[int, int, str, str, str]:
    """Run ``cnnlab ARGV`` in a fresh process; its status, torch's threads, the wait policy
    while the command ran, then the wait policy and ``OMP_NUM_THREADS`` after ``main``
    returned (``None`` when unset)."""
    unset = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    status, threads, policy, policy_after, omp_after = result.stdout.split()[-5:]
    return int(status), int(threads), policy, policy_after, omp_after


@pytest.mark.parametrize(
    "argv",
    [
        ("--threads", "1", "models"),
        ("models", "--threads", "1"),
        ("data", "list", "--threads", "1"),
    ],
)
def test_threads_flag_sets_torchs_count_in_a_real_process(argv) -> None:
    """torch (imported by the command) computes with 1 thread; once ``main`` returns, the
    environment is the caller's again."""
    status, threads, _, policy_after, omp_after = _probe(*argv)
    assert (status, threads, policy_after, omp_after) == (0, 1, "None", "None")


def test_with_a_core_busy_waiting_threads_sleep_in_a_real_process() -> None:
    """A process spinning on a core while ``cnnlab`` starts: its OpenMP threads sleep while
    they wait (they would fight the spinning process for the core), and only while it runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        status, _, policy, policy_after, _ = _probe("models")
    finally:
        hog.kill()
        hog.wait(timeout=30)
    assert (status, policy, policy_after) == (0, "PASSIVE", "None")


def _snapshot_ago(seconds: float, other_cores: float) -> CpuSnapshot:
    """A snapshot as if taken ``seconds`` ago, with other processes keeping ``other_cores``
    busy since (this process's own time and the real load since are added to it)."""
    now = cpu_snapshot()
    ticks = os.sysconf("SC_CLK_TCK")
    busy = now.busy_ticks - round(other_cores * seconds * ticks)
    return CpuSnapshot(now.at - seconds, busy, now.own_seconds, now.niced_ticks)


@pytest.mark.parametrize(("other_cores", "decision"), [(1.5, "passive"), (0.0, "spinning")])
def test_the_wait_policy_follows_other_processes_load(monkeypatch, other_cores, decision):
    """The decision itself, in a process without torch: the load since a snapshot 20 s back
    (so that the test's own neighbours' load adds at most a fraction of a core)."""
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_threads import _snapshot_ago
        from cnnlab.threads import choose_waiting
        print(choose_waiting(_snapshot_ago(20.0, {other_cores})), os.environ.get("OMP_WAIT_POLICY"))
        """
    )
    environ = {k: v for k, v in os.environ.items() if k not in PASSIVE_WAITING}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True,
        timeout=TIMEOUT, check=True,
    )  # fmt: skip
    expected_policy = "PASSIVE" if decision == "passive" else "None"
    assert result.stdout.split() == [decision, expected_policy]


def test_the_wait_policy_is_the_users_or_left_once_torch_is_loaded(monkeypatch) -> None:
    monkeypatch.setenv("KMP_BLOCKTIME", "200")
    assert choose_waiting(cpu_snapshot()) == "user"
    monkeypatch.delenv("KMP_BLOCKTIME")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    import torch  # noqa: F401  (loaded in this test process anyway)

    assert choose_waiting(cpu_snapshot()) == "too late"


def test_without_the_flag_torch_keeps_one_thread_per_core_and_the_users_wait_policy() -> None:
    status, threads, policy, policy_after, _ = _probe("models", env={"OMP_WAIT_POLICY": "ACTIVE"})
    assert (status, policy, policy_after) == (0, "ACTIVE", "ACTIVE")
    assert threads == cpu_cores()


@pytest.mark.parametrize("preset", [None, "3"])
def test_main_called_in_process_gives_back_the_thread_settings(cli, monkeypatch, preset) -> None:
    """``cnnlab.cli.main([..., "--threads", "1"])`` in a Python program: the command runs
    with 1 thread; afterwards ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` are as they were (unset,
    or the caller's value) and torch has its count back."""
    import torch

    import cnnlab.cli

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if preset is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, preset)
    during = {}
    command = cnnlab.cli.run_command

    def observed(*args):  # the settings the command runs with
        during.update(threads=torch.get_num_threads(), omp=os.environ.get("OMP_NUM_THREADS"))
        return command(*args)

    monkeypatch.setattr(cnnlab.cli, "run_command", observed)
    before, environ = torch.get_num_threads(), dict(os.environ)
    status, out, err = cli("models", "--threads", "1", cache=False)
    assert status == 0 and "lenet5" in out, err
    assert during == {"threads": 1, "omp": "1"}
    assert dict(os.environ) == environ
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_threads_flag_refuses_what_is_not_a_positive_count(cli, value: str) -> None:
    status, _, err = cli("models", "--threads", value)
    assert status == 2
    assert err.strip().count("\n") == 0
    assert "expected a positive whole number" in err and repr(value) in err


@pytest.mark.parametrize("value", [0, -2, True, "2", 1.5])
def test_check_threads_refuses_what_is_not_a_positive_count(value) -> None:
    with pytest.raises(ConfigError, match="expected a positive whole number of threads"):
        check_threads(value)


FIT_PROBE = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, sys.argv[3])
    from conftest import SUBSET_NAME, subset_files
    from cnnlab.data import datasets
    from cnnlab.data.sources import RemoteFile, sha256_of
    from cnnlab.training.callbacks import Callback
    from cnnlab.training.run import fit

    files = tuple(RemoteFile(n, sha256_of(d), len(d)) for n, d in subset_files().items())
    datasets.DATASETS[SUBSET_NAME] = datasets.DatasetInfo(
        SUBSET_NAME, files, (), datasets.MNIST.classes, datasets.MNIST.load
    )

    class Threads(Callback):
        key = "threads"
        seen = []

        def on_epoch_end(self, trainer, epoch, logs):
            self.seen.append((torch.get_num_threads(), trainer.engine.__dict__.get("parallel")))

    torch.set_num_threads(2)
    for engine in sys.argv[2].split(","):  # one after the other, in this process
        Threads.seen.clear()
        fit("lenet5", SUBSET_NAME, cache_dir=sys.argv[1], epochs=1, batch_size=256,
            engine=engine, threads=1, verbose=False, callbacks=[Threads()])
        threads, parallel = Threads.seen[0]
        print(engine, threads, getattr(parallel, "threads", threads), torch.get_num_threads())
    """
)


def test_fit_trains_with_the_threads_asked_for_and_restores_the_count(cache_dir) -> None:
    """Both engines, one after the other in one real process that computes with 2 threads."""
    tests = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", FIT_PROBE, str(cache_dir), "torch,numpy", tests],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    lines = [line.split() for line in result.stdout.splitlines()[-2:]]
    # during training, the engine's own threads, after fit returned
    assert lines == [["torch", "1", "1", "2"], ["numpy", "1", "1", "2"]], result.stdout


HOG = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"


@pytest.mark.skipif(cpu_cores() < 2, reason="a spinning process takes the only core")
def test_a_train_command_says_when_it_leaves_busy_cores_alone(cli, tmp_path, monkeypatch) -> None:
    """With a process spinning on a core, ``train`` uses fewer threads and says so in one
    line (on a quiet machine it uses every core and says nothing)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # set for the tests (conftest.py)
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        status, _, err = cli(
            "train", "lenet5", "--data", "mnist-subset", "--epochs", "1", "--batch-size", "512",
            "--per-class", "20", "--out", tmp_path / "run",
        )  # fmt: skip
    finally:
        hog.kill()
        hog.wait(timeout=30)
    assert status == 0, err
    lines = [line for line in err.splitlines() if line.startswith("threads: ")]
    assert len(lines) == 1, err
    chosen, cores = (int(w) for w in lines[0].split()[1:4:2])
    assert 1 <= chosen < cores == cpu_cores()
    assert "other processes kept" in lines[0]


@pytest.mark.skipif(cpu_cores() < 2, reason="a spinning process takes the only core")
def test_choice_leaves_the_core_a_spinning_process_takes() -> None:
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        start = cpu_snapshot()
        assert start is not None  # Linux: /proc/stat
        choice = choose_threads(start)
    finally:
        hog.kill()
        hog.wait(timeout=30)
    assert choice.busy is not None and choice.busy > 0.5
    assert 1 <= choice.threads <= choice.cores - 1
    assert choice.describe().startswith(f"threads: {choice.threads} of {choice.cores} cores")
