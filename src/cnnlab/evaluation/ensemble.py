"""Ensembles: several trained runs voting on the same split (seed 002: 1-2% for several times
the compute, a competition trick rather than a production one).

Combine rules:

- ``mean-prob``: average the members' softmax probabilities (the usual rule);
- ``mean-logit``: average their logits, then softmax;
- ``vote``: each member votes for its top class; ties go to the class with the higher mean
  probability. A vote has no probability, so its loss is reported as None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.documents import field_values
from cnnlab.errors import ConfigError
from cnnlab.evaluation.inputs import DataSelection, load_split
from cnnlab.inference import compute_logits, image_batches
from cnnlab.runs import Run, as_run

COMBINE_RULES = ("mean-prob", "mean-logit", "vote")


@dataclass
class EnsembleReport:
    """What :func:`ensemble` returns; ``to_dict()`` is ``cnnlab ensemble --json``."""

    data: str
    split: str
    examples: int
    combine: str
    accuracy: float
    loss: float | None
    members: list[dict[str, Any]]

    @property
    def gain(self) -> float:
        """Ensemble accuracy minus the best member's."""
        return self.accuracy - max(m["accuracy"] for m in self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            **field_values(self, "data", "split", "examples", "combine", "accuracy", "loss"),
            "gain_over_best_member": self.gain,
            "members": self.members,
        }

    def render(self) -> str:
        lines = [f"{self.data} {self.split} split, {self.examples} examples"]
        for m in self.members:
            lines.append(f"  member {m['run']}: accuracy {m['accuracy']:.4%}  loss {m['loss']:.4f}")
        loss = f"  loss {self.loss:.4f}" if self.loss is not None else ""
        lines.append(
            f"ensemble ({self.combine}, {len(self.members)} members): accuracy "
            f"{self.accuracy:.4%}{loss}"
        )
        lines.append(self._compared_to_best())
        return "\n".join(lines)

    def _compared_to_best(self) -> str:
        """The ensemble against its best member, in plain words (a loss is called one)."""
        best = max(self.members, key=lambda m: m["accuracy"])
        named = f"the best member ({best['run']}, {best['accuracy']:.2%})"
        points = abs(self.gain) * 100
        if points < 0.005:
            return f"the same accuracy as {named}: the ensemble gains nothing"
        if self.gain > 0:
            return f"{points:.2f} points better than {named}"
        return (
            f"{points:.2f} points WORSE than {named}: this ensemble loses accuracy; use the "
            f"best member alone"
        )


def check_members(runs: Sequence[Run], tolerance: float = 0.01) -> None:
    """Members must share classes and preprocessing: the same stored size, input size and
    channels, and normalisation constants within ``tolerance`` (on the 0-1 pixel scale:
    members trained on the same data with other seeds hold out other validation images, so
    their statistics differ in the fourth decimal; each member still applies its own).

    Raises:
        ConfigError: fewer than two members, the same run (or a copy of it) twice, or the first
            difference found, naming both runs.
    """
    if len(runs) < 2:
        raise ConfigError(f"expected at least 2 runs for an ensemble, received {len(runs)}")
    seen: dict[Path, Run] = {}
    for run in runs:
        file = Path(run.checkpoint).resolve()
        if file in seen:
            raise ConfigError(
                f"expected different runs in an ensemble, received the same checkpoint twice "
                f"({seen[file].path} and {run.path}: {file})"
            )
        seen[file] = run
    first = runs[0]
    for other in runs[1:]:
        if other.classes != first.classes:
            raise ConfigError(
                f"expected ensemble members with the same classes, received {first.path} with "
                f"classes {list(first.classes)} and {other.path} with {list(other.classes)}"
            )
        a, b = first.preprocessing.to_dict(), other.preprocessing.to_dict()
        for key in a:
            close = key in ("mean", "std") and all(
                abs(x - y) <= tolerance for x, y in zip(a[key], b[key])
            )
            if a[key] != b[key] and not close:
                raise ConfigError(
                    f"expected ensemble members with the same preprocessing, received "
                    f"{first.path} with {key}={a[key]} and {other.path} with {key}={b[key]}"
                )
    for i, run in enumerate(runs):
        for earlier in runs[:i]:
            if _same_weights(earlier, run):
                raise ConfigError(
                    f"expected different runs in an ensemble, received two with identical "
                    f"weights ({earlier.path} and {run.path}: a copy of one run)"
                )


def _same_weights(a: Run, b: Run) -> bool:
    one, two = a.model.state_dict(), b.model.state_dict()
    return one.keys() == two.keys() and all(
        one[k].shape == two[k].shape and torch.equal(one[k], two[k]) for k in one
    )


def combine_logits(logits: Sequence[torch.Tensor], rule: str) -> tuple[torch.Tensor, bool]:
    """Combine the members' logits into scores whose argmax is the ensemble's prediction.

    Returns:
        ``(scores, scores_are_log_probabilities)``.

    Shape:
        ``M x (N, K) -> (N, K)``.
    """
    stacked = torch.stack(list(logits))  # M x N x K
    if rule == "mean-prob":
        return stacked.softmax(2).mean(0).clamp_min(1e-30).log(), True
    if rule == "mean-logit":
        return stacked.mean(0).log_softmax(1), True
    if rule == "vote":
        votes = F.one_hot(stacked.argmax(2), stacked.shape[2]).sum(0).double()  # N x K
        return votes + 1e-3 * stacked.softmax(2).mean(0).double(), False  # ties: mean prob
    raise ConfigError(f"expected combine in {', '.join(COMBINE_RULES)}, received combine={rule!r}")


def ensemble(
    runs: Sequence[str | Path | Run],
    *,
    selection: DataSelection | None = None,
    combine: str = "mean-prob",
    batch_size: int = 1000,
    cache_dir: str | Path | None = None,
) -> EnsembleReport:
    """Evaluate every member and their combination on the same split.

    Args:
        runs: run directories, checkpoints or loaded runs.
        selection: the data, split and classes (:class:`DataSelection`); default the first
            member's data (with its class selection), test split.
        combine: ``mean-prob``, ``mean-logit`` or ``vote``.
        cache_dir: dataset cache (default ``~/.cache/cnnlab``).

    Raises:
        ConfigError: an unknown rule, or members that differ in classes or preprocessing.
    """
    if combine not in COMBINE_RULES:
        raise ConfigError(
            f"expected combine in {', '.join(COMBINE_RULES)}, received combine={combine!r}"
        )
    selection = selection or DataSelection()
    members = [as_run(r) for r in runs]
    check_members(members)
    spec, dataset = load_split(members[0], selection, cache_dir)
    labels = dataset.labels
    chunks: list[list[torch.Tensor]] = [[] for _ in members]
    for batch in image_batches(dataset, batch_size):  # one pass: a streamed split decodes once
        for member, member_chunks in zip(members, chunks):
            member_chunks.append(
                compute_logits(member.model, batch, member.preprocessing, batch_size)
            )
    logits = [torch.cat(c) for c in chunks]
    rows = [
        {
            "run": str(m.path),
            "checkpoint": str(m.checkpoint),
            "accuracy": (z.argmax(1) == labels).double().mean().item(),
            "loss": F.cross_entropy(z, labels).item(),
        }
        for m, z in zip(members, logits)
    ]
    scores, are_log_probs = combine_logits(logits, combine)
    return EnsembleReport(
        data=spec,
        split=selection.split,
        examples=len(dataset),
        combine=combine,
        accuracy=(scores.argmax(1) == labels).double().mean().item(),
        loss=F.nll_loss(scores.float(), labels).item() if are_log_probs else None,
        members=rows,
    )
