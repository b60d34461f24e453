"""Training throughput of LeNet-5 on MNIST with and without augmentation; prints one JSON
document.

    .venv/bin/python benchmarks/augment_throughput.py [--steps 150] [--rounds 5] [--threads N]

Both settings run the real training step (:meth:`cnnlab.training.loop.Trainer._train_step`:
index the uint8 batch, augment, pad and normalise, forward, backward, Adam) on the full MNIST
training set. Rounds alternate (plain, augmented, plain, ...) so that load from other processes
hits both alike; the median round is reported. The augmentation is the issue's: rotation,
shifts, shear, zoom and horizontal flip (one ``grid_sample`` per batch). A third number times
the augmentation alone on a batch, and the machine's load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from cnnlab.data.augment import Augmenter
from cnnlab.data.datasets import load_dataset
from cnnlab.models import create_model
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import Trainer
from cnnlab.training.network_start import choose_preprocessing

AUGMENT = (
    "rotation_range=15,width_shift_range=0.1,height_shift_range=0.1,shear_range=10,"
    "zoom_range=0.1,horizontal_flip"
)


def images_per_second(trainer: Trainer, steps: int, batch: int, offset: int) -> float:
    """Run ``steps`` training steps on consecutive batches; images per second."""
    n = len(trainer.train_labels)
    started = time.perf_counter()
    for step in range(steps):
        start = ((offset + step) * batch) % (n - batch)
        indices = torch.arange(start, start + batch)
        trainer._train_step(indices, trainer.train_split.take(indices), batch)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per setting")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--augment", default=AUGMENT)
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    splits = load_dataset(args.data)
    config = TrainConfig(batch_size=args.batch, device="cpu")
    augmenter = Augmenter(args.augment)
    trainers = {}
    for name, aug in (("plain", None), ("augmented", augmenter)):
        model = create_model("lenet5", num_classes=10, in_channels=1)
        prep = choose_preprocessing(model, splits)
        trainers[name] = Trainer(model, splits, prep, config, torch.device("cpu"), augmenter=aug)
        trainers[name].model.train()
        images_per_second(trainers[name], 20, args.batch, 0)  # warm-up
    load_before = os.getloadavg()[0]
    rates: dict[str, list[float]] = {"plain": [], "augmented": []}
    for r in range(args.rounds):
        for name, trainer in trainers.items():
            rates[name].append(images_per_second(trainer, args.steps, args.batch, r * args.steps))
    batch = splits.train.images[: args.batch]
    started = time.perf_counter()
    for _ in range(200):
        augmenter(batch)
    augment_ms = (time.perf_counter() - started) / 200 * 1000
    plain, augmented = (statistics.median(rates[k]) for k in ("plain", "augmented"))
    print(
        json.dumps(
            {
                "benchmark": "augment_throughput",
                "model": "lenet5",
                "data": args.data,
                "batch_size": args.batch,
                "augment": augmenter.spec.to_string(),
                "steps_per_round": args.steps,
                "rounds": args.rounds,
                "plain_images_per_s": round(plain, 1),
                "augmented_images_per_s": round(augmented, 1),
                "throughput_loss": round(1 - augmented / plain, 4),
                "augment_only_ms_per_batch": round(augment_ms, 3),
                "rounds_images_per_s": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
                "torch_threads": torch.get_num_threads(),
                "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
