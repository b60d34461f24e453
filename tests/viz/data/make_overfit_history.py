"""How lenet5-mnist500-history.json was made: LeNet-5 on 500 real MNIST training digits,
validated on 2000 others, 30 epochs of Adam at a constant 3e-3 (about 4 minutes on 2 busy cores).
The test digits are not used. Run: python tests/viz/data/make_overfit_history.py OUT_DIR
"""

import sys

import torch

from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.datasets import load_dataset
from cnnlab.training.run import fit

if __name__ == "__main__":
    s = load_dataset("mnist")
    order = torch.randperm(len(s.train), generator=torch.Generator().manual_seed(0))
    splits = DatasetSplits(
        "mnist-500",
        train=s.train.subset(order[:500]),
        val=s.train.subset(order[500:2500]),
        test=s.test.subset(torch.arange(2000)),
    )
    fit("lenet5", splits, out=sys.argv[1], epochs=30, schedule="constant", optimizer="adam",
        lr=3e-3, batch_size=32, seed=0)  # fmt: skip
