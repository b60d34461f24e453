"""``cnnlab report RUN``: one self-contained HTML page about a run.

The page leads with the results: the test accuracy, the training curves, the confusion matrix,
per-class precision/recall/F1 and a gallery of the misclassified test images with the highest
loss; then the network's summary table (trainable and frozen parameters); then, last, the
run's configuration: the options set for this run first, the defaults apart. Pictures are
embedded as base64 PNG ``data:`` URIs and the styles are inline, so the file opens anywhere
without a network or the run directory.

This module composes: :mod:`cnnlab.evaluation` measures (on a split loaded once, whose images
also fill the gallery), :mod:`cnnlab.analysis` gives the network table, :mod:`cnnlab.viz` draws.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.data.dataset import ImageSplit
from cnnlab.evaluation.evaluate import EvaluationReport, evaluate_split
from cnnlab.evaluation.inputs import DataSelection, select_split
from cnnlab.fileio import atomic_write_text
from cnnlab.runs import CONFIG_FILE, CURVES, Run, ThreadsUsed, as_run, read_run_config

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;text-align:center;
font-size:12px}.gallery img{image-rendering:pixelated;border:1px solid #ccc}
.headline{font-size:1.15em;margin-bottom:0}h3{font-size:1em}summary{cursor:pointer}
"""


def png_data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def image_png(image: torch.Tensor, scale: int = 3) -> bytes:
    """A stored uint8 image as PNG bytes, enlarged ``scale`` times (nearest neighbour).

    Shape:
        ``(C, H, W)`` uint8, C in {1, 3}.
    """
    array = image.permute(1, 2, 0).numpy().astype(np.uint8)  # H x W x C
    picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f'<td class="n">{value:.4f}</td>'
        if isinstance(value, int):
            return f'<td class="n">{value:,}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure_png(draw: Any) -> bytes:
    """Bytes of a PNG a viz function writes to a path (``draw(path)``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return path.read_bytes()


def _curves_png(run: Run, monitor: str) -> bytes | None:
    """The curves drawn from the run's history (marking the checkpoint ``monitor`` chose, as
    today's ``curves.png`` does), else the run's stored ``curves.png``."""
    if run.history is not None and run.history.epoch:
        from cnnlab.viz.plots import plot_history

        title = f"{run.meta.model.name} on {run.data}"
        return _figure_png(lambda p: plot_history(run.history, p, title=title, monitor=monitor))
    if run.path.is_dir() and (run.path / CURVES).is_file():
        return (run.path / CURVES).read_bytes()
    return None


def _summary_rows(run: Run) -> tuple[list[list[Any]], str]:
    from cnnlab.analysis import summary

    s = summary(run.model, run.meta.input_shape)
    rows = [
        [
            layer.name,
            layer.type,
            "x".join(map(str, layer.output_shape)) if layer.output_shape else "",
            layer.trainable_params,
            layer.non_trainable_params,
            layer.macs,
        ]
        for layer in s.layers
    ]
    totals = (
        f"Total params {s.total_params:,} &middot; trainable {s.trainable_params:,} &middot; "
        f"non-trainable (frozen or running statistics) {s.non_trainable_params:,} &middot; "
        f"MACs {s.macs:,}"
    )
    return rows, totals


def option_text(value: Any) -> str:
    """A configuration value as a person writes it: ``none`` for null or empty, lists
    comma-separated, objects as ``key=value``, numbers and words as they are."""
    if value is None or value == "" or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(option_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={option_text(v)}" for k, v in value.items())
    return str(value)


def _configuration(config: dict[str, Any], threads: ThreadsUsed | None) -> list[str]:
    """The configuration section: the options set for this run, then the threads the
    checkpoint was trained with, then the defaults apart."""
    trained = [] if threads is None else [f"<p>Trained with {html.escape(threads.describe())}.</p>"]
    if not config:
        return [
            "<h2>Configuration</h2>",
            "<p>(a checkpoint file: no run configuration)</p>",
            *trained,
        ]
    defaults = config_defaults()
    chosen = [[k, option_text(v)] for k, v in config.items() if defaults.get(k, ...) != v]
    kept = [[k, option_text(v)] for k, v in config.items() if defaults.get(k, ...) == v]
    parts = ["<h2>Configuration</h2>", "<h3>Set for this run</h3>"]
    parts.append(_table(["option", "value"], chosen) if chosen else "<p>(only defaults)</p>")
    parts += trained
    if kept:
        parts += [
            f"<details><summary>The {len(kept)} options left at their defaults</summary>",
            _table(["option", "default"], kept),
            "</details>",
        ]
    return parts


def config_defaults() -> dict[str, Any]:
    """Each training option's default (a fresh :class:`TrainConfig`'s values)."""
    from cnnlab.training.config import TrainConfig

    return TrainConfig().to_dict()


def _headline(report: EvaluationReport, run: Run) -> str:
    top = " &middot; ".join(f"top-{k} {v:.2%}" for k, v in report.top_k.items() if k != 1)
    epoch = f" (epoch {run.meta.epoch})" if run.meta.epoch is not None else ""
    return (
        f"<p class='headline'>{html.escape(report.split.capitalize())} accuracy "
        f"<b>{report.accuracy:.2%}</b> &middot; loss {report.loss:.4f}"
        + (f" &middot; {top}" if top else "")
        + f"</p><p>{report.examples:,} images of {html.escape(report.data)} "
        f"({html.escape(report.split)} split), checkpoint "
        f"{html.escape(Path(report.checkpoint).name)}{epoch}</p>"
    )


def build_report_html(
    run: Run,
    report: EvaluationReport,
    split: ImageSplit,
    positions: torch.Tensor | None = None,
) -> str:
    """The page's HTML for a loaded run, its evaluation and the evaluated split (in memory or
    streamed: only the pictures of the listed mistakes are read).

    Args:
        positions: each example's index in the whole split, when ``split`` is a class
            selection of it (the mistakes name examples by that index).
    """
    title = html.escape(f"{run.meta.model.name} run {run.path}")
    config: dict[str, Any] = {}
    if run.path.is_dir() and (run.path / CONFIG_FILE).is_file():
        config = read_run_config(run.path).get("config", {})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
        _headline(report, run),
    ]
    curves = _curves_png(run, config.get("monitor", "val_accuracy"))
    if curves is not None:
        parts += [
            "<h2>Training curves</h2>",
            f"<img alt='curves' style='max-width:100%' src='{png_data_uri(curves)}'>",
        ]
    from cnnlab.viz.confusion import plot_confusion

    confusion = _figure_png(lambda p: plot_confusion(report, p))  # the evaluation above
    parts += [
        "<h2>Confusion matrix</h2>",
        f"<img alt='confusion matrix' style='max-width:100%' src='{png_data_uri(confusion)}'>",
        "<h2>Per-class metrics</h2>",
        _table(
            ["class", "precision", "recall", "F1", "support"],
            [
                [r["class"], r["precision"], r["recall"], r["f1"], r["support"]]
                for r in report.per_class
            ],
        ),
        f"<h2>The {len(report.mistakes)} worst mistakes</h2>",
        f"<p>Misclassified {html.escape(report.split)} images with the highest loss "
        "(-log p(true class)); # is the image's index in the split.</p>",
        "<div class='gallery'>",
    ]
    local = {int(p): i for i, p in enumerate(positions.tolist())} if positions is not None else {}
    rows = [local.get(m["index"], m["index"]) for m in report.mistakes]
    pictures = split.take(torch.tensor(rows, dtype=torch.int64))
    for m, picture in zip(report.mistakes, pictures):
        uri = png_data_uri(image_png(picture))
        parts.append(
            f"<figure><img alt='#{m['index']}' src='{uri}'><figcaption>#{m['index']}<br>true "
            f"<b>{html.escape(m['true'])}</b>, predicted <b>{html.escape(m['predicted'])}</b> "
            f"({m['probability']:.0%})<br>loss {m['loss']:.2f}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.append("<h2>Network</h2>")
    if run.meta.finetune is not None:
        info = run.meta.finetune
        parts.append(
            f"<p>Fine-tuned from {html.escape(info.source)} (classes "
            f"{html.escape(', '.join(info.source_classes))}), freeze "
            f"<b>{html.escape(info.freeze)}</b>.</p>"
        )
    layer_rows, totals = _summary_rows(run)
    parts += [
        _table(["layer", "type", "output", "trainable", "non-trainable", "MACs"], layer_rows),
        f"<p>{totals}</p>",
        *_configuration(config, run.meta.threads),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(
    run: str | Path | Run,
    output: str | Path = "report.html",
    *,
    selection: DataSelection | None = None,
    mistakes: int = 24,
    cache_dir: str | Path | None = None,
) -> Path:
    """Evaluate ``run`` on its test split (or ``selection``'s) and write the self-contained
    HTML page. The split is loaded once: the evaluation and the gallery share it.

    Args:
        run: run directory, checkpoint file or loaded run.
        selection: the data, split and classes (:class:`DataSelection`); default the run's own
            data, test split, with its class selection.
        mistakes: how many of the worst misclassified images the gallery shows.
        cache_dir: dataset cache (default ``~/.cache/cnnlab``).

    Returns:
        The file written (atomically).
    """
    run = as_run(run)
    selection = selection or DataSelection()
    chosen = select_split(run, selection, cache_dir)
    report = evaluate_split(
        run,
        chosen.dataset,
        data=chosen.spec,
        split=selection.split,
        mistakes=mistakes,
        positions=chosen.positions,
        selected_classes=chosen.classes,
    )
    html_text = build_report_html(run, report, chosen.dataset, chosen.positions)
    atomic_write_text(output, html_text)
    return Path(output)
