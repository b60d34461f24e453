"""What cnnlab writes into an exported model's ``metadata_props`` and reads back.

Every value is a string (ONNX metadata is a string map); structured values are JSON. The keys
are namespaced ``cnnlab.*`` so they never collide with other tools' entries. Any runtime can
read them, e.g. onnxruntime's ``session.get_modelmeta().custom_metadata_map``::

    cnnlab.format         "cnnlab-onnx/1"
    cnnlab.version        the cnnlab version that exported the file
    cnnlab.classes        JSON list of class names, index = logit position
    cnnlab.image_size     JSON [H, W]: the size the graph's input has (the run's stored size)
    cnnlab.channels       "1" (grey-scale) or "3" (RGB)
    cnnlab.normalization  JSON {"mean": [...], "std": [...]} on [0, 1] pixels, inside the graph
    cnnlab.network_input  JSON [H, W] the network sees after the graph's zero padding
    cnnlab.input          JSON {"name", "layout", "dtype", "range", "shape"}
    cnnlab.output         JSON {"name", "shape"}
    cnnlab.model          JSON {"name", "num_classes", "in_channels", "kwargs"}
    cnnlab.source         the run or checkpoint exported ("" for an untrained model)
    cnnlab.data           the dataset spec the run was trained on ("" if none)
    cnnlab.data_options   JSON options that reproduce the run's data (image folders)
    cnnlab.selection      JSON class selection of the run, or "null"
    cnnlab.exporter       "torch.export" or "torchscript" (the fallback)
    cnnlab.opset          the ONNX opset of the default domain
    cnnlab.batchnorm      "folded" or "kept"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import CheckpointError

FORMAT = "cnnlab-onnx/1"
PREFIX = "cnnlab."
INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"
LAYOUT = "NCHW"


@dataclass(frozen=True)
class OnnxMetadata:
    """The description of an exported classifier (see the module docstring for the keys).

    Attributes:
        classes: class names, index = logit position.
        image_size: ``(H, W)`` of the graph's input.
        channels: 1 or 3.
        mean: per-channel mean on ``[0, 1]`` pixels (applied inside the graph).
        std: per-channel standard deviation on ``[0, 1]`` pixels.
        network_input: ``(H, W)`` after the graph's zero padding.
        model: the registry spec of the network.
        version: cnnlab version that exported it.
        source: the run or checkpoint exported, ``""`` for an untrained model.
        data: the run's dataset spec (``""`` if none).
        data_options: ``load_dataset`` options reproducing the run's data.
        selection: the run's class selection, if any.
        exporter: ``"torch.export"`` or ``"torchscript"``.
        opset: ONNX opset of the default domain.
        batchnorm: ``"folded"`` or ``"kept"``.
    """

    classes: tuple[str, ...]
    image_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    network_input: tuple[int, int]
    model: dict[str, Any]
    version: str
    source: str = ""
    data: str = ""
    data_options: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] | None = None
    exporter: str = "torch.export"
    opset: int = 0
    batchnorm: str = "folded"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image at the graph's input."""
        return (self.channels, *self.image_size)

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries (all strings)."""
        c, (h, w) = self.channels, self.image_size
        values: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "classes": list(self.classes),
            "image_size": list(self.image_size),
            "channels": str(c),
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "network_input": list(self.network_input),
            "input": {
                "name": INPUT_NAME,
                "layout": LAYOUT,
                "dtype": "float32",
                "range": [0.0, 1.0],
                "shape": ["batch", c, h, w],
            },
            "output": {"name": OUTPUT_NAME, "shape": ["batch", len(self.classes)]},
            "model": self.model,
            "source": self.source,
            "data": self.data,
            "data_options": self.data_options,
            "selection": self.selection,
            "exporter": self.exporter,
            "opset": str(self.opset),
            "batchnorm": self.batchnorm,
        }
        return {
            PREFIX + key: value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()
        }

    @classmethod
    def from_props(cls, props: dict[str, str], path: str) -> OnnxMetadata | None:
        """Read the entries back; None for a file without cnnlab metadata (a foreign file).

        Raises:
            CheckpointError: cnnlab metadata that is incomplete or not valid JSON.
        """
        if props.get(PREFIX + "format") is None:
            return None
        if props[PREFIX + "format"] != FORMAT:
            raise CheckpointError(
                f"expected ONNX metadata format {FORMAT}, received "
                f"{props[PREFIX + 'format']!r} in {path}"
            )
        try:
            get = {key[len(PREFIX) :]: value for key, value in props.items()}
            norm = json.loads(get["normalization"])
            return cls(
                classes=tuple(str(c) for c in json.loads(get["classes"])),
                image_size=_pair(json.loads(get["image_size"])),
                channels=int(get["channels"]),
                mean=tuple(float(v) for v in norm["mean"]),
                std=tuple(float(v) for v in norm["std"]),
                network_input=_pair(json.loads(get["network_input"])),
                model=dict(json.loads(get["model"])),
                version=get["version"],
                source=get.get("source", ""),
                data=get.get("data", ""),
                data_options=dict(json.loads(get.get("data_options", "{}"))),
                selection=json.loads(get.get("selection", "null")),
                exporter=get.get("exporter", ""),
                opset=int(get.get("opset", "0")),
                batchnorm=get.get("batchnorm", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"expected complete cnnlab metadata in {path}, received a damaged entry "
                f"({type(exc).__name__}: {exc})"
            ) from None


def _pair(values: list[int]) -> tuple[int, int]:
    h, w = values
    return int(h), int(w)
