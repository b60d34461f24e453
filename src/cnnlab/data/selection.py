"""Selecting classes, and a number of examples per class, from a dataset.

``select(splits, classes=("5", "6"), per_class=10, seed=0)`` keeps the examples of the named
classes (labels renumbered ``0..k-1`` in the dataset's class order; the names are kept, so class
``"5"`` stays ``"5"``), then draws ``per_class`` training examples of each class with a seeded
generator. The test split (and a given validation split) keeps every example of the selected
classes, so a selected run is always tested on all the test images of its classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from cnnlab.data.dataset import DatasetSplits, Split
from cnnlab.errors import ConfigError, expected


def parse_classes(text: str | Sequence[str] | None) -> list[str] | None:
    """``"0,1,2"`` (or a list of names) -> ``["0", "1", "2"]``; None and ``""`` -> None.

    Raises:
        ConfigError: an empty name or a name given twice.
    """
    if text is None or text == "":
        return None
    names = (
        [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    )
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ConfigError(expected("distinct, comma-separated class names", classes=text))
    return names


def keep_classes(data: Split, names: Sequence[str]) -> Split:
    """The examples of the classes ``names``, relabelled in ``data``'s class order.

    Shape:
        ``(N, C, H, W), (N,) -> (M, C, H, W), (M,)`` with labels in ``[0, len(names))``.

    Raises:
        ConfigError: a name that is not one of ``data.classes`` (the message lists them).
    """
    unknown = [n for n in names if n not in data.classes]
    if unknown:
        raise ConfigError(
            f"expected classes among {list(data.classes)}, received classes={list(names)} "
            f"({', '.join(unknown)} not in the data)"
        )
    old = [i for i, c in enumerate(data.classes) if c in names]  # dataset order
    relabel = torch.full((len(data.classes),), -1, dtype=torch.int64)
    relabel[old] = torch.arange(len(old))
    labels = relabel[data.labels]
    index = (labels >= 0).nonzero().flatten()
    kept = tuple(data.classes[i] for i in old)
    return dataclasses.replace(data.subset(index), labels=labels[index], classes=kept)


def sample_per_class(data: Split, per_class: int, seed: int) -> Split:
    """``per_class`` examples of every class, drawn with a generator seeded by ``seed``
    (kept in their original order).

    Raises:
        ConfigError: ``per_class`` < 1, or more than the rarest class has.
    """
    counts = torch.bincount(data.labels, minlength=len(data.classes))
    rarest = int(counts.argmin())
    if per_class < 1 or per_class > int(counts[rarest]):
        raise ConfigError(
            f"expected per_class from 1 to {int(counts[rarest])} (the training examples of the "
            f"rarest class, {data.classes[rarest]!r}), received per_class={per_class}"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(len(data.classes)):
        members = (data.labels == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return data.subset(torch.cat(chosen).sort().values)


def select(
    splits: DatasetSplits,
    classes: Sequence[str] | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """Keep the classes ``classes`` (None: all) and ``per_class`` training examples of each
    (None: all); test and validation splits keep all examples of the kept classes.

    Raises:
        ConfigError: unknown class names, or an impossible ``per_class``.
    """
    if classes is None and per_class is None:
        return splits
    names = list(classes) if classes is not None else list(splits.classes)
    train = keep_classes(splits.train, names)
    if per_class is not None:
        train = sample_per_class(train, per_class, seed)
    val = keep_classes(splits.val, names) if splits.val is not None else None
    return DatasetSplits(splits.name, train=train, test=keep_classes(splits.test, names), val=val)
