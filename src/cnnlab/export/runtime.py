"""Running an ``.onnx`` classifier with onnxruntime where cnnlab runs a torch network.

:class:`OnnxClassifier` is onnxruntime behind the ``nn.Module`` interface, and
:func:`load_onnx_run` wraps it in a :class:`~cnnlab.training.run.Run`, so ``predict`` and
``evaluate`` run an exported file through the very code that runs a checkpoint. The graph
takes ``[0, 1]`` pixels (padding and normalisation are inside it), so the run's
:class:`Preprocessing` is only the scaling ``uint8 / 255`` at the file's image size.

A file cnnlab exported describes itself (:mod:`cnnlab.export.metadata`). Any other ONNX
classifier taking one float32 ``N x C x H x W`` batch of ``[0, 1]`` pixels and returning
``N x K`` logits is accepted with its input shape and class names given by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.preprocess import Preprocessing
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.export.extra import RUNTIME_MODULES, require
from cnnlab.export.failure import one_line
from cnnlab.export.metadata import OUTPUT_NAME, OnnxMetadata
from cnnlab.runs import Run, RunMeta

CROP_TTA = ("5crop", "10crop")


def is_onnx_path(value: object) -> bool:
    """True for a path (str or Path) whose name ends in ``.onnx``."""
    return isinstance(value, (str, Path)) and str(value).lower().endswith(".onnx")


def open_session(model: str | Path | bytes, what: str) -> Any:
    """An onnxruntime session (CUDA when onnxruntime has it, else CPU) with as many threads
    as torch uses.

    Raises:
        MissingExtraError: onnxruntime is not installed.
        CheckpointError: onnxruntime cannot load the model (corrupt, truncated, not ONNX).
    """
    (ort,) = require(*RUNTIME_MODULES, purpose="running an ONNX model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types for every load failure
        raise CheckpointError(
            f"expected an ONNX model onnxruntime can load, received {what} ({one_line(str(exc))})"
        ) from None


class OnnxClassifier(nn.Module):
    """An ONNX classifier run by onnxruntime, with the ``nn.Module`` call interface.

    Args:
        session: the onnxruntime ``InferenceSession``.
        input_shape: ``(C, H, W)`` of one image at the graph's input.
        num_classes: logits per image.
        output_name: the graph output holding the logits.

    Shape:
        ``(N, C, H, W)`` float32 pixels in ``[0, 1]`` -> ``(N, num_classes)`` float32 logits.
    """

    def __init__(
        self,
        session: Any,
        input_shape: tuple[int, int, int],
        num_classes: int,
        output_name: str = OUTPUT_NAME,
    ) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = output_name
        self.default_input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shape: ``(N, C, H, W) -> (N, num_classes)``."""
        if tuple(pixels.shape[1:]) != self.default_input_shape:
            raise ConfigError(
                f"expected images of {_shape(self.default_input_shape)} (the ONNX graph's "
                f"input), received a batch of {_shape(pixels.shape[1:])}"
            )
        feed = {self.input_name: pixels.detach().float().cpu().contiguous().numpy()}
        try:
            (logits,) = self.session.run([self.output_name], feed)
        except Exception as exc:  # onnxruntime's own error types (bad shape, bad graph)
            raise ConfigError(
                f"expected an ONNX graph that runs on {_shape(pixels.shape)} float32 pixels, "
                f"received an onnxruntime error ({one_line(str(exc))})"
            ) from None
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ConfigError(
                f"expected N x {self.num_classes} logits (one per class name), received "
                f"output {self.output_name!r} of shape {list(logits.shape)}"
            )
        return torch.from_numpy(logits)


def load_onnx_run(
    path: str | Path,
    *,
    input_shape: Sequence[int] | None = None,
    classes: str | Sequence[str] | None = None,
    tta: str = "none",
    require_metadata: bool = False,
) -> Run:
    """An ONNX file as a :class:`Run` that ``predict`` and ``evaluate`` take.

    Args:
        path: the ``.onnx`` file.
        input_shape: ``(C, H, W)`` for a file without cnnlab metadata whose input shape is
            not fixed in the graph (for a cnnlab file it must agree with its metadata).
        classes: class names (comma-separated or a sequence) for a file without cnnlab
            metadata (for a cnnlab file they must agree with its metadata).
        tta: the test-time augmentation it will be evaluated with; crop modes are refused
            (their crops are cut from the padded image, which only the graph sees).
        require_metadata: refuse files without cnnlab metadata (``evaluate`` needs the
            dataset the file names).

    Raises:
        ConfigError: not an ``.onnx`` path, a crop TTA mode, or a foreign file whose input
            shape or class names are missing or do not fit the graph.
        CheckpointError: a missing, corrupt or non-classifier file.
        MissingExtraError: onnxruntime is not installed.
    """
    if not is_onnx_path(path):
        raise ConfigError(
            f"expected an .onnx file with --input/--classes, received {path} (runs and "
            "checkpoints carry their own input shape and class names)"
        )
    if tta in CROP_TTA:
        raise ConfigError(
            f"expected --tta none, flip or shift for an ONNX model, received tta={tta!r} (crops "
            "are cut from the padded network input, which only the graph sees)"
        )
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"expected an ONNX model file, received {path} (no such file)")
    session = open_session(path, str(path))
    metadata = OnnxMetadata.from_props(session.get_modelmeta().custom_metadata_map, str(path))
    names = _class_names(classes)
    if metadata is None and require_metadata:
        raise ConfigError(
            f"expected an ONNX file exported by cnnlab (with its metadata), received {path} "
            "(no cnnlab metadata; `cnnlab predict` takes such files with --input and --classes)"
        )
    if metadata is None:
        shape, names = _foreign_description(session, path, input_shape, names)
        model_spec: dict[str, Any] = {
            "name": path.name,
            "num_classes": len(names),
            "in_channels": shape[0],
        }
        data_meta: dict[str, Any] = {}
    else:
        shape, names = _own_description(metadata, path, input_shape, names)
        model_spec = metadata.model
        data_meta = {"data": metadata.data or None, "data_options": metadata.data_options}
        if metadata.selection is not None:
            data_meta["selection"] = metadata.selection
    output = _output_name(session)
    c, h, w = shape
    scaling = Preprocessing((0.0,) * c, (1.0,) * c, (h, w), (h, w), c)  # uint8 -> [0, 1]
    meta = {
        "model": model_spec,
        "classes": list(names),
        "preprocessing": scaling.to_dict(),
        "input_shape": list(shape),
        **data_meta,
    }
    model = OnnxClassifier(session, shape, len(names), output)
    return Run(path, path, model, RunMeta.from_dict(meta, path), None)


def _class_names(classes: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if classes is None:
        return None
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    names = [n.strip() for n in names]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"expected distinct, non-empty class names, received {classes!r}")
    return tuple(names)


def _own_description(
    metadata: OnnxMetadata,
    path: Path,
    input_shape: Sequence[int] | None,
    names: tuple[str, ...] | None,
) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    """A cnnlab file's input shape and classes; the caller's must agree with them."""
    shape = metadata.input_shape
    if input_shape is not None and tuple(input_shape) != shape:
        raise ConfigError(
            f"expected --input {','.join(map(str, shape))} (the input {path} was exported "
            f"for), received {','.join(map(str, input_shape))}"
        )
    if names is not None and names != metadata.classes:
        raise ConfigError(
            f"expected the classes {path} was exported with ({','.join(metadata.classes)}), "
            f"received --classes {','.join(names)}"
        )
    return shape, metadata.classes


def _foreign_description(
    session: Any,
    path: Path,
    input_shape: Sequence[int] | None,
    names: tuple[str, ...] | None,
) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    """Input shape and classes of a file without cnnlab metadata: from the graph where it
    fixes them, else from the caller; one line saying everything that is missing."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
        described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise CheckpointError(
            f"expected an image classifier with one float32 N x C x H x W input, received "
            f"{path} with inputs: {described}"
        )
    graph_dims = inputs[0].shape[1:]
    fixed = tuple(graph_dims) if all(isinstance(d, int) for d in graph_dims) else None
    missing = []
    if input_shape is None and fixed is None:
        missing.append(f"--input C,H,W (its input {inputs[0].name!r} is {inputs[0].shape})")
    if names is None:
        missing.append("--classes NAMES (comma-separated, one per logit)")
    if missing:
        raise ConfigError(
            f"expected {' and '.join(missing)} for {path}, which has no cnnlab metadata, "
            "received none"
        )
    shape = tuple(int(v) for v in (input_shape or fixed))  # type: ignore[union-attr]
    if fixed is not None and shape != fixed:
        raise ConfigError(
            f"expected --input {','.join(map(str, fixed))} (fixed in {path}'s graph), "
            f"received {','.join(map(str, shape))}"
        )
    if shape[0] not in (1, 3):
        raise ConfigError(
            f"expected an input of 1 (grey-scale) or 3 (RGB) channels, received {_shape(shape)}"
        )
    return shape, names  # type: ignore[return-value]


def _output_name(session: Any) -> str:
    """The output called ``logits``, else the only output."""
    outputs = [o.name for o in session.get_outputs()]
    if OUTPUT_NAME in outputs:
        return OUTPUT_NAME
    if len(outputs) == 1:
        return outputs[0]
    raise CheckpointError(
        f"expected one output or one named {OUTPUT_NAME!r}, received outputs {outputs}"
    )


def _shape(dims: Sequence[int]) -> str:
    return " x ".join(str(int(d)) for d in dims)
