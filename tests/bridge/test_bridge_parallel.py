"""The NumPy engine on two threads (cnnlab.scratch.parallel): the same weights on one thread and
on two, bitwise, run after run; within float tolerance of a whole-batch step; networks with
BatchNorm or dropout run whole; the grad mode is per thread."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from cnnlab.bridge import to_scratch
from cnnlab.bridge.engine import NumpyEngine
from cnnlab.data.preprocess import fit_preprocessing
from cnnlab.models import create_model
from cnnlab.scratch import no_grad
from cnnlab.scratch.grad_mode import is_grad_enabled
from cnnlab.scratch.parallel import DataParallel, can_split, shard_bounds
from cnnlab.training.config import TrainConfig

BATCH, STEPS = 128, 6


def _batches(subset):
    prep = fit_preprocessing(subset.train, (1, 32, 32))
    for step in range(STEPS):
        index = torch.arange(step * BATCH, (step + 1) * BATCH - 3)  # 125: uneven halves
        yield prep(subset.train.images[index]), subset.train.labels[index]


def _train(subset, threads: int, shards: int | None = None) -> dict[str, np.ndarray]:
    """Weights after STEPS steps of the NumPy engine (Adam, one-cycle) on real digits."""
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1)
    engine = NumpyEngine(model, TrainConfig(epochs=1, batch_size=BATCH), STEPS, threads=threads)
    if shards is not None:
        engine.parallel = DataParallel(engine.net, threads, shards=shards)
    assert engine.parallel.threads == threads
    engine.train()
    for x, y in _batches(subset):
        engine.forward_loss(x, y)
        engine.step()
    weights = {k: v.numpy().copy() for k, v in engine.model_state().items()}
    engine.parallel.close()
    return weights


def test_two_threads_give_bitwise_the_weights_of_one_thread_run_after_run(subset) -> None:
    one = _train(subset, threads=1)
    two = _train(subset, threads=2)
    again = _train(subset, threads=2)
    whole = _train(subset, threads=1, shards=1)
    for key, value in one.items():
        assert two[key].tobytes() == value.tobytes(), key
        assert again[key].tobytes() == value.tobytes(), key
        # a whole-batch step sums the gradients in another order: float tolerance
        np.testing.assert_allclose(whole[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    assert any(whole[k].tobytes() != one[k].tobytes() for k in one)  # shards did run


def test_sharded_gradients_equal_the_whole_batch_gradients(subset) -> None:
    torch.manual_seed(1)
    model = create_model("lenet5", num_classes=10, in_channels=1)
    x = next(_batches(subset))[0].numpy()
    grad_out = np.random.default_rng(0).standard_normal((len(x), 10)).astype(np.float32)
    whole, sharded = to_scratch(model), DataParallel(to_scratch(model), threads=2)
    assert sharded.shards == 2
    np.testing.assert_allclose(sharded.forward(x), whole.forward(x), rtol=1e-5, atol=1e-6)
    whole.backward(grad_out, needs_input_grad=False)
    sharded.backward(grad_out)
    theirs = dict(whole.named_parameters())
    for name, p in sharded.net.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name].grad, rtol=1e-4, atol=1e-5, err_msg=name)
    assert all(p.grad is None for p in sharded.replicas[1].parameters())  # summed, then dropped
    sharded.close()


def test_replicas_share_the_weights_the_optimizer_updates(subset) -> None:
    torch.manual_seed(2)
    engine = NumpyEngine(
        create_model("lenet5", num_classes=10, in_channels=1), TrainConfig(), 10, threads=2
    )
    x, y = next(_batches(subset))
    engine.forward_loss(x, y)
    engine.step()
    replica = dict(engine.parallel.replicas[1].named_parameters())
    for name, p in engine.net.named_parameters():
        assert replica[name].data is p.data, name
    engine.load_model_state(copy.deepcopy(engine.model_state()))  # resume loads in place
    for name, p in engine.net.named_parameters():
        assert replica[name].data is p.data, name
    engine.parallel.close()


def test_inference_on_two_threads_equals_one_thread(subset) -> None:
    torch.manual_seed(3)
    model = create_model("lenet5", num_classes=10, in_channels=1)
    prep = fit_preprocessing(subset.train, (1, 32, 32))
    engines = [NumpyEngine(copy.deepcopy(model), TrainConfig(), 10, threads=t) for t in (1, 2)]
    one, two = (e.logits(subset.test.images[:300], prep) for e in engines)
    assert one.shape == (300, 10)
    assert torch.equal(one, two)
    expected = model.eval()(prep(subset.test.images[:300]))
    torch.testing.assert_close(two, expected, rtol=1e-4, atol=1e-4)
    for engine in engines:
        engine.parallel.close()


def _with_dropout(p: float) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.Dropout(p))


@pytest.mark.parametrize(
    ("model", "splits"),
    [
        (lambda: create_model("resnet20", num_classes=10), False),  # BatchNorm
        (lambda: _with_dropout(0.5), False),
        (lambda: _with_dropout(0.0), True),  # no random numbers drawn
    ],
)
def test_batch_statistics_and_dropout_run_whole(model, splits: bool) -> None:
    net = to_scratch(model())
    assert can_split(net) is splits
    parallel = DataParallel(net, threads=2)
    assert parallel.shards == (2 if splits else 1)
    assert parallel.threads == parallel.shards and len(parallel.replicas) == parallel.shards
    parallel.close()


def test_shard_bounds_cover_the_batch_in_order() -> None:
    assert shard_bounds(125, 2) == [(0, 63), (63, 125)]
    assert shard_bounds(128, 2) == [(0, 64), (64, 128)]
    assert shard_bounds(10, 2) == [(0, 10)]  # too small to split
    assert shard_bounds(128, 1) == [(0, 128)]


def test_grad_mode_is_per_thread() -> None:
    seen: list[bool] = []
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with no_grad():
            inside.set()
            leave.wait(timeout=10)
        seen.append(is_grad_enabled())

    worker = threading.Thread(target=other)
    worker.start()
    assert inside.wait(timeout=10)
    assert is_grad_enabled()  # this thread is not inside no_grad()
    with no_grad():
        leave.set()
        worker.join(timeout=10)
        assert not is_grad_enabled()  # the other thread leaving did not switch this one
    assert is_grad_enabled() and seen == [True]
