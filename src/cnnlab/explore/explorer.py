"""Everything the page asks of a model, as JSON-ready dictionaries (no web code here).

An :class:`Explorer` holds one :class:`~cnnlab.explore.target.Target` with its summary rows
and wiring, computed once; each request turns an input (drawing, pixels, test example) and a
transform into model input, runs what it needs and returns plain data. Model calls are
serialised by a lock (hooks are per model), so one explorer may serve several threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.data.digits import centre_digit
from cnnlab.data.images import RESAMPLE
from cnnlab.data.prepare_picture import PictureOptions
from cnnlab.errors import CnnlabError, ConfigError, DataError
from cnnlab.explore.encoding import float32_b64, uint8_b64
from cnnlab.explore.inputs import (
    Drawing,
    InputSpec,
    Pixels,
    Transform,
    decode_upload,
    prepare_upload,
    refused,
)
from cnnlab.explore.layers import LayerRow, capture, layer_rows
from cnnlab.explore.structure import Structure, trace_structure
from cnnlab.explore.target import Target
from cnnlab.explore.units import (
    EXPLAINED_POOLS,
    acts_alone,
    elementwise_step,
    explain_conv,
    explain_pool,
    receptive_box,
)
from cnnlab.viz._layers import Layer, choose_layers, model_layers
from cnnlab.viz._tiles import grid_columns, standardise_maps

#: Feature maps sent per layer unless asked otherwise (0 = all).
DEFAULT_MAX_CHANNELS = 64
#: Maps are redrawn while drawing when the model needs fewer MACs than this per image.
LIVE_MAPS_MACS = 200_000_000
#: The image as it is: no shift, rotation or scaling.
NO_TRANSFORM = Transform()


@dataclass
class Prepared:
    """One input as the model takes it.

    Attributes:
        x: model input (transformed, padded, normalised).
        seen: the same in pixel values, what the model sees, clamped to 0..255.
        true_label: index of the true class (test examples only).

    Shape:
        ``x: (1, C, H, W)`` float32; ``seen: (C, H, W)`` uint8.
    """

    x: torch.Tensor
    seen: torch.Tensor
    true_label: int | None = None


@dataclass
class _Examples:
    """The run's test split, or why there is none."""

    images: Any = None
    labels: torch.Tensor | None = None
    data: str | None = None
    reason: str | None = None


class Explorer:
    """The model side of ``cnnlab explore``.

    Args:
        target: the model and how to feed it.
        cache_dir: dataset cache for the run's test split (default: cnnlab's).

    Raises:
        ModelError: the model cannot take its own input shape.
    """

    def __init__(self, target: Target, cache_dir: str | Path | None = None) -> None:
        self.target = target
        self.cache_dir = cache_dir
        self.summary, self.rows = layer_rows(target.model, target.input_shape)
        self.structure: Structure = trace_structure(target.model, target.input_shape, self.rows)
        # the layers as cnnlab.viz names them (one per module, its first call), for Grad-CAM
        self.viz_layers: list[Layer] = model_layers(target.model, target.input_shape)
        self.lock = threading.RLock()
        self._examples: _Examples | None = None
        self._twin: Any = None

    # ---- model information ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Model, classes, input, every summary row with its wiring, and the merges."""
        t, prep = self.target, self.target.preprocessing
        totals = self.summary.to_dict()
        totals.pop("layers")
        totals["model"] = t.name
        convs = [row.name for row in self.rows if row.kind == "conv" and row.call == 0]
        return {
            "model": t.name,
            "source": t.source,
            "trained": t.trained,
            "checkpoint": str(t.run.checkpoint) if t.run is not None else None,
            "data": t.run.data if t.run is not None else None,
            "classes": list(t.classes),
            "digits": t.digits,
            "channels": prep.channels,
            "image_size": list(prep.image_size),
            "input_shape": list(t.input_shape),
            "preprocessing": prep.to_dict(),
            "summary": totals,
            "layers": [self._row_info(row) for row in self.rows],
            "merges": [m.to_dict() for m in self.structure.merges],
            "conv_layers": list(dict.fromkeys(convs)),
            "cam_layers": self._cam_layer_names(),
            "top_k": min(10, len(t.classes)),
            "max_channels": DEFAULT_MAX_CHANNELS,
            "live_maps": self.summary.macs < LIVE_MAPS_MACS,
        }

    def _row_info(self, row: LayerRow) -> dict[str, Any]:
        sources = self.structure.inputs.get(row.index, [])
        if row.kind == "conv" and row.module.padding_mode == "zeros":
            explain = "conv"
        elif isinstance(row.module, EXPLAINED_POOLS):
            explain = "pool"
        elif acts_alone(row):
            explain = "elementwise"
        else:
            explain = "value"
        return {
            **row.info.to_dict(),
            "index": row.index,
            "call": row.call,
            "depth": row.info.depth,
            "kind": row.kind,
            "explain": explain if row.spatial else None,
            "inputs": [s.to_dict() for s in sources],
        }

    def _cam_layer_names(self) -> list[str]:
        from cnnlab.viz.cam import has_maps

        return [layer.name for layer in self.viz_layers if has_maps(layer)]

    def row(self, layer: Any, call: Any = 0) -> LayerRow:
        """The summary row named ``layer`` (its ``call``-th call), or with index ``layer``.

        Raises:
            ConfigError: no such row (the message lists the first valid names).
        """
        if isinstance(layer, int) and not isinstance(layer, bool):
            if 0 <= layer < len(self.rows):
                return self.rows[layer]
            raise refused(f"a layer index from 0 to {len(self.rows) - 1}", layer=layer)
        if not isinstance(call, int) or isinstance(call, bool) or call < 0:
            raise refused("call as a whole number of at least 0", call=call)
        for row in self.rows:
            if row.name == layer and row.call == call:
                return row
        names = list(dict.fromkeys(row.name for row in self.rows))
        shown = ", ".join(names[:12]) + (f", ... {len(names) - 12} more" if len(names) > 12 else "")
        what = "a layer named as in `cnnlab summary`" + (f" (call {call})" if call else "")
        raise ConfigError(f"expected {what} ({shown}), received layer={layer!r}")

    # ---- inputs -----------------------------------------------------------------------------
    def examples(self) -> dict[str, Any]:
        """The test split's size and labels (for picking an example), or why there is none."""
        with self.lock:
            found = self._example_split()
        if found.reason is not None:
            return {"available": False, "reason": found.reason, "count": 0, "labels": []}
        assert found.labels is not None
        return {
            "available": True,
            "data": found.data,
            "count": int(found.labels.numel()),
            "labels": found.labels.tolist(),
        }

    def _example_split(self) -> _Examples:
        if self._examples is not None:
            return self._examples
        run = self.target.run
        if run is None:
            self._examples = _Examples(reason="an untrained model has no test split")
            return self._examples
        from cnnlab.evaluation.inputs import DataSelection, load_split

        try:
            spec, split = load_split(run, DataSelection(), cache_dir=self.cache_dir)
        except CnnlabError as exc:
            self._examples = _Examples(reason=f"the run's test split cannot be loaded: {exc}")
            return self._examples
        self._examples = _Examples(split, split.labels.cpu(), spec)
        return self._examples

    def _stored_image(self, spec: InputSpec) -> tuple[torch.Tensor, int | None]:
        """The input at the stored size of the run's images, and its true label if known.

        Shape:
            ``-> (C, h, w)`` uint8, ``(h, w) = preprocessing.image_size``.
        """
        prep = self.target.preprocessing
        if isinstance(spec, Drawing):
            if self.target.digits:
                return torch.from_numpy(centre_digit(spec.ink, prep.image_size))[None], None
            size = (prep.image_size[1], prep.image_size[0])
            grey = np.asarray(Image.fromarray(spec.ink).resize(size, RESAMPLE, reducing_gap=None))
            return torch.from_numpy(grey.copy())[None].repeat(prep.channels, 1, 1), None
        if isinstance(spec, Pixels):
            wanted = (prep.channels, *prep.image_size)
            if tuple(spec.image.shape) != wanted:
                raise ConfigError(
                    f"expected pixels of shape {list(wanted)} (the run's images), "
                    f"received shape={list(spec.image.shape)}"
                )
            return spec.image, None
        found = self._example_split()
        if found.reason is not None:
            raise DataError(
                f"expected a run with a test split for examples, received {found.reason}"
            )
        assert found.labels is not None
        count = int(found.labels.numel())
        if spec.index >= count:
            raise refused(f"an example index from 0 to {count - 1}", index=spec.index)
        index = torch.tensor([spec.index])
        return found.images.take(index)[0].cpu(), int(found.labels[spec.index])

    def prepare(self, spec: InputSpec, transform: Transform = NO_TRANSFORM) -> Prepared:
        """Turn an input into model input, as the run's training data was converted.

        Raises:
            ConfigError / DataError: pixels of the wrong shape, an example that does not
                exist, a shift larger than the image.
        """
        prep = self.target.preprocessing
        with self.lock:
            image, label = self._stored_image(spec)
        h, w = prep.image_size
        if abs(transform.shift_x) > w or abs(transform.shift_y) > h:
            raise ConfigError(
                f"expected shifts within the image ({w}x{h} pixels), received "
                f"shift_x={transform.shift_x:g}, shift_y={transform.shift_y:g}"
            )
        x = prep(transform.apply(image.float())[None])  # 1 x C x H x W
        mean = torch.tensor(prep.mean).view(-1, 1, 1) * 255.0
        std = torch.tensor(prep.std).view(-1, 1, 1) * 255.0
        seen = (x[0] * std + mean).clamp(0, 255).round().to(torch.uint8)
        return Prepared(x, seen, label)

    def upload(self, data: bytes, invert: bool = False, centre: bool = False) -> dict[str, Any]:
        """Decode an uploaded image file to the run's stored size (see
        :func:`~cnnlab.explore.inputs.decode_upload`); ``centre`` gives a digit run's upload
        MNIST's centring, exactly as ``cnnlab predict`` prepares it
        (:func:`~cnnlab.explore.inputs.prepare_upload`).

        Returns:
            ``{"shape": [C, H, W], "data": base64 uint8}``, ready to send back as pixels.
        """
        prep = self.target.preprocessing
        if centre and self.target.digits:  # as cnnlab predict prepares a digit picture
            options = PictureOptions(1, prep.image_size, digits=True, invert=invert)
            image = prepare_upload(data, options)
        else:
            image = decode_upload(data, prep.channels, prep.image_size, invert)
        return {"shape": list(image.shape), "data": uint8_b64(image)}

    def _input_payload(self, prepared: Prepared) -> dict[str, Any]:
        label = prepared.true_label
        return {
            "shape": list(prepared.seen.shape),
            "seen": uint8_b64(prepared.seen),
            "true_label": label,
            "true_class": self.target.classes[label] if label is not None else None,
        }

    def _ranking(self, logits: torch.Tensor, top_k: int) -> dict[str, Any]:
        classes = self.target.classes
        probabilities = logits.double().softmax(0)
        top = probabilities.topk(min(top_k, len(classes)))
        ranked = [
            {"index": int(i), "class": classes[int(i)], "probability": float(p)}
            for p, i in zip(top.values, top.indices)
        ]
        return {"probabilities": probabilities.tolist(), "top_k": ranked, "prediction": ranked[0]}

    # ---- forward ------------------------------------------------------------------------------
    def forward(
        self,
        spec: InputSpec,
        transform: Transform = NO_TRANSFORM,
        *,
        maps: bool = True,
        layers: list[int] | None = None,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        raw: bool = False,
        top_k: int | None = None,
    ) -> dict[str, Any]:
        """Probabilities and, with ``maps``, every row's output (or the rows ``layers``).

        Each layer with ``C x H x W`` output gets its first ``max_channels`` maps (0: all),
        each standardised as in ``cnnlab features`` and sent as uint8 tiles; any other output
        (and ``C x 1 x 1`` maps, which standardised on their own would all be one colour) is
        sent as float32 values. ``raw`` adds every row's full output as float32.
        """
        start = time.perf_counter()
        prepared = self.prepare(spec, transform)
        chosen = self.rows if layers is None else [self.rows[i] for i in layers]
        with self.lock:
            model_start = time.perf_counter()
            with capture(chosen if maps else []) as captured, torch.no_grad():
                logits = self.target.model(prepared.x)[0]
            model_seconds = time.perf_counter() - model_start
        result: dict[str, Any] = {
            "input": self._input_payload(prepared),
            **self._ranking(logits, top_k or min(10, len(self.target.classes))),
            "transform": transform.to_dict(),
        }
        if maps:
            result["layers"] = [
                self._layer_payload(row, captured.outputs.get(row.index), max_channels, raw)
                for row in chosen
            ]
        result["seconds"] = {"model": model_seconds, "total": time.perf_counter() - start}
        return result

    @staticmethod
    def _layer_payload(
        row: LayerRow, output: torch.Tensor | None, max_channels: int, raw: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"index": row.index, "name": row.name, "call": row.call}
        if output is None:  # a row whose module returned no tensor
            return {**payload, "shape": None}
        value = output[0].float()
        payload["shape"] = list(value.shape)
        if value.dim() == 3 and value.shape[1] * value.shape[2] > 1:
            channels = value.shape[0]
            shown = channels if max_channels == 0 else min(channels, max_channels)
            payload.update(
                channels=channels,
                shown=shown,
                columns=grid_columns(shown),
                tiles=uint8_b64(standardise_maps(value[:shown])),
            )
        else:
            flat = value.flatten()
            payload.update(
                values=float32_b64(flat),
                min=float(flat.min()) if flat.numel() else 0.0,
                max=float(flat.max()) if flat.numel() else 0.0,
            )
        if raw:
            payload["raw"] = float32_b64(value)
        return payload

    # ---- one unit -----------------------------------------------------------------------------
    def unit(
        self, spec: InputSpec, transform: Transform, row: LayerRow, channel: int, y: int, x: int
    ) -> dict[str, Any]:
        """The numbers behind unit ``(channel, y, x)`` of a row with ``C x H x W`` maps: its
        value, receptive field, and what computes it (:mod:`cnnlab.explore.units`).

        Raises:
            ConfigError: a row without maps, or a unit outside them.
        """
        if not row.spatial:
            raise ConfigError(
                f"expected a layer with CxHxW maps for a unit, received layer={row.name!r} "
                f"with output shape {list(row.output_shape)}"
            )
        c, h, w = row.output_shape
        for key, value, size in (("channel", channel, c), ("y", y, h), ("x", x, w)):
            if not 0 <= value < size:
                raise refused(f"{key} from 0 to {size - 1}", **{key: value})
        prepared = self.prepare(spec, transform)
        with self.lock, torch.no_grad(), capture(self.rows, [row.index]) as captured:
            self.target.model(prepared.x)
        value = float(captured.outputs[row.index][0, channel, y, x])
        sources = self.structure.inputs.get(row.index, [])
        source = sources[0] if sources else None
        result: dict[str, Any] = {
            "layer": row.name,
            "index": row.index,
            "call": row.call,
            "type": type(row.module).__name__,
            "channel": channel,
            "y": y,
            "x": x,
            "value": value,
            "field": receptive_box(row.info.field, y, x, self.target.input_shape[1:]),
            "source": self._source_payload(source),
            "kind": "value",
        }
        layer_input = captured.inputs.get(row.index)
        if layer_input is not None and layer_input.dim() == 4:
            if row.kind == "conv" and row.module.padding_mode == "zeros":
                result.update(
                    kind="conv", conv=explain_conv(row.module, layer_input[0], channel, y, x)
                )
            elif row.kind == "pool":
                pool = explain_pool(row.module, layer_input[0], channel, y, x)
                if pool:
                    result.update(kind="pool", pool=pool)
            elif acts_alone(row):
                z = float(layer_input[0, channel, y, x])
                result.update(
                    kind="elementwise", step=elementwise_step(row.module, channel, z, value)
                )
        result["then"] = self._then(row, captured.outputs, channel, y, x)
        return result

    def _source_payload(self, source: Any) -> dict[str, Any] | None:
        if source is None:
            return None
        name = self.rows[source.index].name if source.kind == "layer" else None
        return {**source.to_dict(), "name": name}

    def _then(
        self, row: LayerRow, outputs: dict[int, torch.Tensor], channel: int, y: int, x: int
    ) -> list[dict[str, Any]]:
        """The layers right after ``row`` that act on the unit's value alone (BatchNorm,
        activation), each with its formula and output at the same unit."""
        steps = []
        current = row
        while True:
            following = [
                self.rows[i]
                for i in self.structure.consumers(current.index)
                if acts_alone(self.rows[i]) and self.rows[i].output_shape == row.output_shape
            ]
            if not following or following[0].index not in outputs:
                return steps
            step_row = following[0]
            z = float(outputs[current.index][0, channel, y, x])
            value = float(outputs[step_row.index][0, channel, y, x])
            steps.append(
                {
                    "layer": step_row.name,
                    "index": step_row.index,
                    **elementwise_step(step_row.module, channel, z, value),
                }
            )
            current = step_row

    # ---- Grad-CAM, filters, parity ------------------------------------------------------------
    def cam(
        self, spec: InputSpec, transform: Transform, target: Any = None, layer: str | None = None
    ) -> dict[str, Any]:
        """Grad-CAM and gradient saliency (:func:`cnnlab.viz.cam.grad_cam`) for ``target``
        (class name or index; default the predicted class) at ``layer`` (default
        :func:`cnnlab.viz.cam.cam_layer`)."""
        from cnnlab.viz.cam import cam_layer, class_index, grad_cam, has_maps

        classes = self.target.classes
        index = None if target is None else class_index(classes, target)
        prepared = self.prepare(spec, transform)
        with self.lock:
            table = self.viz_layers
            if layer is None:
                chosen = cam_layer(table)
            else:
                (chosen,) = choose_layers(
                    table, [layer], has_maps, "a layer with maps larger than 1x1"
                )
            heat, saliency, logits = grad_cam(self.target.model, prepared.x, chosen, index)
        ranking = self._ranking(logits, len(classes))
        explained = ranking["prediction"]["index"] if index is None else index
        return {
            "layer": chosen.name,
            "target": explained,
            "target_class": classes[explained],
            "shape": list(heat.shape),
            "cam": uint8_b64((heat * 255).round().clamp(0, 255).to(torch.uint8)),
            "saliency": uint8_b64((saliency * 255).round().clamp(0, 255).to(torch.uint8)),
            **ranking,
        }

    def filters(self, layer: str | None = None) -> dict[str, Any]:
        """The kernels of a conv layer (:func:`cnnlab.viz.filters.conv_filters`; default the
        first conv layer) as float32, ``(out, in / groups, kH, kW)``."""
        from cnnlab.viz.filters import conv_filters

        source = self.target.run if self.target.run is not None else self.target.model
        with self.lock:
            found = conv_filters(source, layer)
        weight = found.weight
        return {
            "layer": found.layer.name,
            "shape": list(weight.shape),
            "weights": float32_b64(weight),
            "max_abs": float(weight.abs().max()) if weight.numel() else 0.0,
            "rgb": found.rgb,
        }

    def parity(self, spec: InputSpec, transform: Transform = NO_TRANSFORM) -> dict[str, Any]:
        """The same input through the NumPy engine: the largest absolute difference from
        torch per layer, and both engines' predictions.

        Raises:
            UnsupportedOpError: the model uses an op the NumPy engine lacks (named).
        """
        from cnnlab.explore.parity import compare, numpy_twin

        prepared = self.prepare(spec, transform)
        with self.lock:
            if self._twin is None:
                self._twin = numpy_twin(self.target.model)
            start = time.perf_counter()
            with capture(self.rows) as captured, torch.no_grad():
                logits = self.target.model(prepared.x)
            torch_seconds = time.perf_counter() - start
            found = compare(self._twin, prepared.x, self.rows, captured.outputs, logits)
        numpy_rank = self._ranking(torch.from_numpy(found.logits.astype(np.float64)), 1)
        torch_rank = self._ranking(logits[0], 1)
        return {
            "layers": [
                {**item.to_dict(), "name": self.rows[item.index].name} for item in found.layers
            ],
            "logits_max_abs_diff": found.logits_max_abs_diff,
            "numpy": {"prediction": numpy_rank["prediction"], "seconds": found.seconds},
            "torch": {"prediction": torch_rank["prediction"], "seconds": torch_seconds},
        }
