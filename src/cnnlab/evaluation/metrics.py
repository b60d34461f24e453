"""Classification metrics computed from logits and labels (plain torch, no side effects)."""

from __future__ import annotations

import torch


def confusion_matrix(
    predicted: torch.Tensor, target: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts of (true class, predicted class) pairs.

    Shape:
        ``(N,), (N,) -> (num_classes, num_classes)`` int64; row = true, column = predicted.
    """
    index = target.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def precision_recall_f1(matrix: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Classes never predicted get precision 0, classes never present recall 0 (as scikit-learn's
    ``zero_division=0``).

    Shape:
        ``(K, K) -> {"precision", "recall", "f1": (K,) float64, "support": (K,) int64}``.
    """
    matrix = matrix.double()
    true_positive = matrix.diagonal()
    predicted = matrix.sum(0)
    actual = matrix.sum(1)
    precision = torch.where(predicted > 0, true_positive / predicted.clamp_min(1), 0.0)
    recall = torch.where(actual > 0, true_positive / actual.clamp_min(1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.long()}


def top_k_accuracy(logits: torch.Tensor, target: torch.Tensor, k: int) -> float:
    """Share of examples whose true class is among the ``k`` highest logits.

    Shape:
        ``(N, K), (N,) -> float``; ``k`` is capped at ``K``.
    """
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == target.unsqueeze(1)).any(1).double().mean().item()


def worst_mistakes(
    log_probs: torch.Tensor, target: torch.Tensor, classes: tuple[str, ...], count: int = 10
) -> list[dict[str, object]]:
    """The ``count`` misclassified examples with the highest loss, worst first: their index in
    the split, true and predicted class, loss (``-log p(true)``), the probability given to the
    predicted class and to the true one.

    Shape:
        ``(N, K) log-probabilities, (N,) -> list of at most count dicts``.
    """
    predicted = log_probs.argmax(1)
    losses = -log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    wrong = (predicted != target).nonzero().flatten()
    order = wrong[losses[wrong].argsort(descending=True)][:count]
    return [
        {
            "index": int(i),
            "true": classes[int(target[i])],
            "predicted": classes[int(predicted[i])],
            "loss": float(losses[i]),
            "probability": float(log_probs[i, predicted[i]].exp()),
            "true_probability": float(log_probs[i, target[i]].exp()),
        }
        for i in order.tolist()
    ]
