"""The rules of several processes that need no process group (how batches are shared, seeds,
epoch totals, launch options) and every refusal the command line gives before or without
starting processes. The runs themselves: test_distributed_runs.py."""

import json
import socket

import pytest
import torch

from cnnlab.training.distributed import Distributed, local_batches, rank_seed
from cnnlab.training.launch import oversubscription, worker_argv
from cnnlab.training.loop import EpochTotals, epoch_order
from cnnlab.training.run import restarted_run


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_the_shares_of_every_global_batch_make_up_the_batch(world):
    order = epoch_order(10, seed=3, epoch=1)  # batches of 4, 4 and 2: ranks 2 and 3 get none
    per_rank = [local_batches(order, 4, Distributed(rank, world)) for rank in range(world)]
    for step, batch in enumerate(order.split(4)):
        rebuilt = torch.empty_like(batch)
        for rank, (shares, _) in enumerate(per_rank):
            share, global_size = shares[step]
            assert global_size == len(batch)
            rebuilt[rank::world] = share
        assert torch.equal(rebuilt, batch)
    for shares, share_size in per_rank:
        # what the rank's split decodes: its shares laid end to end, split by the share size
        laid = torch.cat([share for share, _ in shares])
        assert [p.tolist() for p in laid.split(share_size)] == [
            share.tolist() for share, _ in shares if len(share)
        ]
    assert [len(shares[-1][0]) for shares, _ in per_rank] == [
        len(range(rank, 2, world)) for rank in range(world)
    ]


def test_one_process_takes_whole_batches():
    order = epoch_order(10, seed=0, epoch=0)
    shares, share_size = local_batches(order, 4, Distributed())
    assert share_size == 4
    assert [s.tolist() for s, _ in shares] == [b.tolist() for b in order.split(4)]


def test_every_rank_has_its_own_seed_derived_from_the_run_seed():
    seeds = [rank_seed(7, rank) for rank in range(8)]
    assert len(set(seeds)) == 8
    assert seeds == [rank_seed(7, rank) for rank in range(8)]
    assert rank_seed(8, 0) != seeds[0]


def test_one_process_context_passes_everything_through():
    ctx = Distributed()
    assert ctx.is_main and not ctx.active
    assert ctx.decide(lambda: 5) == 5 and ctx.main_first(lambda: 6) == 6
    assert ctx.broadcast({"a": 1}) == {"a": 1} and ctx.all_gather(3) == [3]
    assert ctx.sum([1.5, 2.0]) == [1.5, 2.0]
    rows = torch.arange(6.0).reshape(3, 2)
    assert ctx.gather_rows(rows, lambda part: part * 2).tolist() == (rows * 2).tolist()
    ctx.check_same("options", {"lr": 1})
    ctx.barrier()


def test_epoch_totals_add_up_and_round_trip_through_a_checkpoint_entry():
    totals = EpochTotals()
    totals.add(0.5, 30, 64)
    totals.add(0.25, 50, 64)
    assert totals.loss == pytest.approx((0.5 * 64 + 0.25 * 64) / 128)
    assert totals.accuracy == 80 / 128
    totals.seconds = 1.25
    entry = totals.to_dict()
    assert set(entry) == {"loss_sum", "correct", "seen", "seconds"}  # the checkpoint's keys
    assert EpochTotals.from_dict(json.loads(json.dumps(entry))) == totals


def test_the_workers_run_the_command_line_without_the_launch_options():
    argv = ["train", "lenet5", "--nproc", "2", "--max-restarts=1", "--port", "0", "--lr", "1"]
    assert worker_argv(argv) == ["train", "lenet5", "--lr", "1"]
    with pytest.raises(Exception, match="spelled in full"):
        worker_argv(["train", "lenet5", "--npr", "2"])


def test_oversubscription_is_named_only_beyond_the_cores():
    assert oversubscription(2, 2) is None
    assert oversubscription(3, 2).startswith("3 training processes on 2 CPU cores")


def test_a_run_records_its_world_size(trained_run):
    meta = json.loads((trained_run / "config.json").read_text())["meta"]
    assert meta["world_size"] == 1 and "torchelastic_run_id" not in meta


def test_only_a_restart_of_the_job_that_started_a_run_continues_it(run_copy):
    config = json.loads((run_copy / "config.json").read_text())
    config["meta"]["torchelastic_run_id"] = "job-a"
    (run_copy / "config.json").write_text(json.dumps(config))
    assert restarted_run(run_copy, Distributed(restart_count=1, run_id="job-a"))
    assert not restarted_run(run_copy, Distributed(restart_count=0, run_id="job-a"))
    assert not restarted_run(run_copy, Distributed(restart_count=1, run_id="job-b"))
    assert not restarted_run(run_copy.parent / "none", Distributed(restart_count=1, run_id="a"))


# ---- refusals, one line each -------------------------------------------------------------------
TRAIN = ("train", "lenet5", "--data", "mnist-subset", "--epochs", "1")


def test_nproc_below_one_is_refused(cli, expect_error, tmp_path):
    status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--nproc", "0")
    expect_error(status, err, "expected --nproc of at least 1 process, received 0")
    assert not (tmp_path / "run").exists()


def test_sync_bn_is_refused_on_the_cpu(cli, expect_error, tmp_path):
    on_cpu = (*TRAIN, "--sync-bn", "--device", "cpu")
    status, _, err = cli(*on_cpu, "--out", tmp_path / "run")
    expect_error(status, err, "expected --sync-bn only on CUDA", "with device cpu")
    status, _, err = cli(*on_cpu, "--out", tmp_path / "run", "--nproc", "2")
    expect_error(status, err, "expected --sync-bn only on CUDA")
    assert not (tmp_path / "run").exists()


def test_the_numpy_engine_is_refused_on_several_processes(cli, expect_error, tmp_path):
    status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--engine", "numpy", "--nproc", "2")
    expect_error(status, err, "received --engine numpy with 2 processes")


def test_a_global_batch_smaller_than_the_processes_is_refused(cli, expect_error, tmp_path):
    status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--batch-size", "1", "--nproc", "2")
    expect_error(status, err, "expected a global --batch-size of at least the 2 processes")


def test_a_port_in_use_is_refused(cli, expect_error, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--nproc", "2", "--port", port)
    expect_error(status, err, f"received --port {port}, which is in use")


def test_launch_options_need_nproc(cli, expect_error, tmp_path):
    status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--max-restarts", "1")
    expect_error(status, err, "expected --max-restarts and --port only with --nproc")


def test_nproc_inside_torchrun_is_refused(cli, expect_error, tmp_path, monkeypatch):
    torchrun_env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    for name, value in torchrun_env.items():
        monkeypatch.setenv(name, value)
    status, _, err = cli(*TRAIN, "--out", tmp_path / "run", "--nproc", "2")
    expect_error(status, err, "expected --nproc only outside torchrun")


def test_an_existing_run_is_refused_before_any_process_starts(cli, expect_error, run_copy):
    status, _, err = cli(*TRAIN, "--out", run_copy, "--nproc", "2")
    expect_error(status, err, "which holds a run")


def test_resuming_on_another_world_size_is_refused_naming_both(cli, expect_error, run_copy):
    status, _, err = cli("train", "--resume", run_copy, "--nproc", "2")
    expect_error(status, err, "expected world size 1 to resume", "received world size 2")
