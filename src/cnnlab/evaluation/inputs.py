"""What an evaluation reads: a run (loaded once) and the data it is measured on.

:class:`DataSelection` is the one description of "which examples" shared by
:func:`~cnnlab.evaluation.evaluate.evaluate`, :func:`~cnnlab.evaluation.ensemble.ensemble`,
``cnnlab confusion`` and :func:`~cnnlab.report.write_report`; :func:`load_split` turns it into
the split of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.dataset import ImageSplit
from cnnlab.data.datasets import load_dataset
from cnnlab.data.selection import keep_classes, parse_classes
from cnnlab.errors import ConfigError, DataError
from cnnlab.runs import Run

SPLITS = ("test", "train")


@dataclass(frozen=True, kw_only=True)
class DataSelection:
    """Which examples a run is measured on.

    Attributes:
        data: dataset spec; None: the one the run was trained on.
        split: ``"test"`` (default) or ``"train"``.
        classes: only these classes (names, or ``"0,1,2"``); None: the run's class selection
            (``--classes`` at training), if any, else all. For a run of all the data's
            classes, the kept examples keep the run's labels (the confusion matrix stays the
            run's).
        stream: image folders: True streams the split from its files, False holds it in
            memory; None: as the run's data was (streamed if it was, else if too large).
        workers: image folders: decoding processes; None: ``min(4, cores)``.

    Raises:
        ConfigError: a split other than test/train, or malformed class names.
    """

    data: str | None = None
    split: str = "test"
    classes: str | Sequence[str] | None = None  # stored as a tuple of names
    stream: bool | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"expected split test or train, received split={self.split!r}")
        names = parse_classes(self.classes)  # "0,1" or a list of names
        object.__setattr__(self, "classes", tuple(names) if names is not None else None)


@dataclass(frozen=True)
class SelectedSplit:
    """A split as a run sees it (what :func:`select_split` returns).

    Attributes:
        spec: the dataset spec.
        dataset: the examples, labelled in the run's classes.
        positions: each example's index in the whole split (None: the whole split, in order).
        classes: the run's classes kept, when a selection keeps fewer than the run has
            (None: all of them).
    """

    spec: str
    dataset: ImageSplit
    positions: torch.Tensor | None = None
    classes: tuple[str, ...] | None = None


def load_split(
    run: Run, selection: DataSelection, cache_dir: str | Path | None = None
) -> tuple[str, ImageSplit]:
    """``(data spec, dataset)`` of :func:`select_split`."""
    chosen = select_split(run, selection, cache_dir)
    return chosen.spec, chosen.dataset


def select_split(
    run: Run, selection: DataSelection, cache_dir: str | Path | None = None
) -> SelectedSplit:
    """The split ``selection`` names, as the run sees it: its own data by default, with the
    run's class selection applied (or ``selection.classes``); an image folder converted as the
    run's was and streamed if the run's was (or as ``selection.stream`` says).

    Raises:
        ConfigError: classes not in the data.
        DataError: the data's classes (after selection) differ from the run's.
    """
    spec = selection.data or run.data
    options = run.data_options_for(spec)
    if selection.stream is not None:
        options["stream"] = selection.stream
    splits = load_dataset(spec, cache_dir, workers=selection.workers, **options)
    classes = selection.classes
    if classes is None and run.meta.selection is not None:
        classes = run.classes  # the run was trained on a selection: test on its classes
    dataset = splits.test if selection.split == "test" else splits.train
    positions, shown = None, None
    if classes is not None:
        kept = keep_classes(dataset, list(classes))  # checks the names
        wanted = torch.tensor([dataset.classes.index(c) for c in kept.classes])
        positions = torch.isin(dataset.labels, wanted).nonzero().flatten()  # in the whole split
        if tuple(dataset.classes) == tuple(run.classes):  # a run of all classes: keep its
            shown = kept.classes if len(kept.classes) < len(run.classes) else None  # labels
            kept = dataset.subset(positions)
        dataset = kept
    if tuple(dataset.classes) != tuple(run.classes):
        raise DataError(
            f"expected data with the run's classes {list(run.classes)}, received {spec} with "
            f"classes {list(dataset.classes)}"
        )
    return SelectedSplit(spec, dataset, positions, shown)
