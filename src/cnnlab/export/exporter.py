"""``export_onnx``: a run, checkpoint or untrained model to a verified ``.onnx`` file.

The file is written only after onnxruntime has reproduced torch on real images; until then
nothing exists at the output path, and the write itself is atomic (temporary file + rename).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import cnnlab
from cnnlab.errors import ConfigError, ModelError
from cnnlab.export.convert import to_onnx
from cnnlab.export.extra import require
from cnnlab.export.failure import one_line
from cnnlab.export.graph import PixelClassifier
from cnnlab.export.metadata import INPUT_NAME, OUTPUT_NAME, OnnxMetadata
from cnnlab.export.runtime import open_session
from cnnlab.export.source import ExportSource, resolve_source, verification_images
from cnnlab.export.verify import ATOL, RTOL, Verification, compare
from cnnlab.fileio import atomic_write_bytes
from cnnlab.inference import compute_logits
from cnnlab.runs import Run

OLDEST_OPSET = 18  # the torch.export-based exporter's oldest opset


@dataclass
class ExportReport:
    """What :func:`export_onnx` did; ``to_dict()`` is ``cnnlab export --json``.

    Attributes:
        output: the file written.
        source: what was exported (``"run runs/lenet5 (best.safetensors)"``).
        model: the registered model name.
        exporter: ``"torch.export"``, or ``"torchscript"`` when it had to fall back.
        fallback_reason: why torch.export was not used (None when it was).
        warnings: the exporter's warnings, one line each.
        opset: ONNX opset of the default domain.
        batchnorm: ``"folded"`` (into the convolutions) or ``"kept"``.
        batchnorm_nodes: BatchNormalization nodes left in the graph.
        metadata: the ``metadata_props`` written (all strings).
        bytes: file size.
        seconds: time to export (capture, translation, optimisation).
        verification: onnxruntime vs torch on the verification batch.
        batch_of_one: the same check on the batch's first image alone.
        versions: torch, onnx, onnxscript and onnxruntime versions used.
    """

    output: str
    source: str
    model: str
    exporter: str
    fallback_reason: str | None
    warnings: list[str]
    opset: int
    batchnorm: str
    batchnorm_nodes: int
    metadata: dict[str, str] = field(repr=False)
    bytes: int
    seconds: float
    verification: Verification
    batch_of_one: Verification = field(repr=False)
    versions: dict[str, str] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["verification"] = self.verification.to_dict()
        document["batch_of_one"] = self.batch_of_one.to_dict()
        return document

    def render(self) -> str:
        """Human-readable lines: what was written, the graph's interface, the check."""
        meta = OnnxMetadata.from_props(self.metadata, self.output)
        assert meta is not None
        c, (h, w) = meta.channels, meta.image_size
        exporter = self.exporter
        if self.fallback_reason:
            exporter += f" (fallback: {self.fallback_reason})"
        lines = [
            f"exported {self.source} to {self.output} ({self.bytes / 1024:.0f} KiB, opset "
            f"{self.opset}, {exporter}, BatchNorm {self.batchnorm}) in {self.seconds:.1f} s",
            f"input {INPUT_NAME!r}: float32 batch x {c} x {h} x {w} pixels in [0, 1]; output "
            f"{OUTPUT_NAME!r}: batch x {len(meta.classes)} logits",
            f"verified: {self.verification.describe()}; batch of one: max |diff| "
            f"{self.batch_of_one.max_abs_diff:.2e}",
        ]
        lines += [f"exporter warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def export_onnx(
    source: str | Path,
    output: str | Path,
    *,
    checkpoint: str = "best",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    model_options: dict[str, Any] | None = None,
    fold_bn: bool = True,
    opset: int | None = None,
    data: str | None = None,
    cache_dir: str | Path | None = None,
    images: int = 8,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> ExportReport:
    """Export a classifier to ONNX and keep the file only if onnxruntime reproduces torch.

    The graph takes float32 pixels in ``[0, 1]``, ``batch x C x H x W`` at the run's stored
    image size (input ``pixels``, dynamic batch), pads and normalises them as the run did, and
    returns ``batch x K`` logits (output ``logits``); ``metadata_props`` describe it.

    Args:
        source: a run directory, a ``.safetensors`` checkpoint or a registered model name
            (an untrained network).
        output: the ``.onnx`` file to write (replaced atomically if it exists).
        checkpoint: a run directory's ``best`` (default) or ``last`` checkpoint.
        input_shape: untrained model: ``(C, H, W)`` (default: the model's own input).
        num_classes: untrained model: outputs (default: the model's).
        model_options: untrained model: model keyword options.
        fold_bn: fold BatchNorm into the preceding convolutions (default) or keep the
            BatchNormalization nodes.
        opset: ONNX opset (18 or newer; default: the exporter's).
        data: verify on this dataset's test split instead of the run's.
        cache_dir: dataset cache.
        images: how many images the verification batch holds (at least 2).
        rtol: relative tolerance per logit.
        atol: absolute tolerance per logit.

    Raises:
        MissingExtraError: onnx, onnxscript or onnxruntime is not installed.
        ConfigError: a bad output path or option.
        CheckpointError: a missing or damaged run or checkpoint.
        ModelError: a model neither exporter can export (naming the layer), or an export
            onnxruntime does not reproduce (naming the largest difference).
    """
    onnx, onnxscript, ort = require()
    output = check_output_path(output)
    _check_options(images, rtol, atol, opset, onnx)
    src = resolve_source(
        source,
        checkpoint=checkpoint,
        input_shape=input_shape,
        num_classes=num_classes,
        model_options=model_options,
    )
    pixels, inputs = verification_images(src, images, data, cache_dir)
    module = PixelClassifier(src.model, src.preprocessing).eval()
    x = pixels.float() / 255.0  # N x C x H x W in [0, 1]
    start = time.perf_counter()
    conversion = to_onnx(module, x[:2], fold_bn=fold_bn, opset=opset, name=src.name)
    seconds = time.perf_counter() - start
    proto = conversion.proto
    actual_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset is not None and actual_opset != opset:
        raise ConfigError(
            f"expected an export at opset {opset}, received opset {actual_opset} from the "
            f"{conversion.exporter} exporter; nothing was written"
        )
    props = _metadata(src, source, conversion.exporter, actual_opset, fold_bn).to_props()
    serialized = _serialize(proto, props, src)
    verification, single = _verify(serialized, src, pixels, inputs, rtol, atol)
    _write(output, serialized)
    return ExportReport(
        output=str(output),
        source=src.description,
        model=src.name,
        exporter=conversion.exporter,
        fallback_reason=conversion.fallback_reason,
        warnings=conversion.warnings,
        opset=actual_opset,
        batchnorm=props["cnnlab.batchnorm"],
        batchnorm_nodes=sum(n.op_type == "BatchNormalization" for n in proto.graph.node),
        metadata=props,
        bytes=len(serialized),
        seconds=seconds,
        verification=verification,
        batch_of_one=single,
        versions={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__,
            "onnxruntime": ort.__version__,
        },
    )


def _metadata(
    src: ExportSource, source: str | Path, exporter: str, opset: int, fold_bn: bool
) -> OnnxMetadata:
    """The description written into the file (:mod:`cnnlab.export.metadata`)."""
    prep, run = src.preprocessing, src.run
    return OnnxMetadata(
        classes=src.classes,
        image_size=prep.image_size,
        channels=prep.channels,
        mean=prep.mean,
        std=prep.std,
        network_input=prep.input_size,
        model=src.spec,
        version=cnnlab.__version__,
        source=str(source) if run is not None else "",
        data=(run.data or "") if run is not None else "",
        data_options=run.data_options if run is not None else {},
        selection=_selection(run),
        exporter=exporter,
        opset=opset,
        batchnorm="folded" if fold_bn else "kept",
    )


def _serialize(proto: Any, props: dict[str, str], src: ExportSource) -> bytes:
    """The file's bytes: ``proto`` with cnnlab's metadata added to the exporter's.

    Raises:
        ModelError: a model over protobuf's 2 GB limit.
    """
    import onnx

    existing = {entry.key: entry.value for entry in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**existing, **props})
    proto.doc_string = f"{src.name} exported by cnnlab {cnnlab.__version__}: {src.description}"
    try:
        return proto.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GB limit
        raise ModelError(
            f"expected a model under ONNX's 2 GB single-file limit, received {src.name} ({exc})"
        ) from None


def _verify(
    serialized: bytes,
    src: ExportSource,
    pixels: torch.Tensor,
    inputs: str,
    rtol: float,
    atol: float,
) -> tuple[Verification, Verification]:
    """onnxruntime on the exported bytes against cnnlab's torch inference, on the batch and
    on its first image alone.

    Shape:
        ``pixels (N, C, H, W)`` uint8.

    Raises:
        ModelError: the logits or classes differ (one line, the largest difference).
    """
    session = open_session(serialized, f"the exported {src.name}")
    reference = compute_logits(src.model, pixels, src.preprocessing)
    x = pixels.float() / 255.0  # N x C x H x W in [0, 1]
    batch = compare(reference, _run(session, x, src.name), inputs, rtol, atol)
    batch.check()
    alone = f"{inputs}, first image alone"
    single = compare(reference[:1], _run(session, x[:1], src.name), alone, rtol, atol)
    single.check()
    return batch, single


def _run(session: Any, pixels: torch.Tensor, name: str) -> Any:
    """onnxruntime's logits for ``pixels``; a graph that cannot run them is a one-line error
    (e.g. a batch size the exporter fixed).

    Shape:
        ``(N, C, H, W) -> (N, K)``.
    """
    try:
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixels.numpy()})
    except Exception as exc:  # onnxruntime's own error types
        raise ModelError(
            f"expected the exported {name} to run a batch of {pixels.shape[0]} in onnxruntime, "
            f"received an error ({one_line(str(exc))}); nothing was written"
        ) from None
    return logits


def check_output_path(output: str | Path) -> Path:
    """The output path, checked before any work: an ``.onnx`` name in a folder this process
    can create files in (missing folders are created when the file is written).

    Raises:
        ConfigError: another suffix, an existing folder, or a place that cannot be written.
    """
    path = Path(output)
    if path.suffix.lower() != ".onnx":
        raise ConfigError(f"expected --output ending in .onnx, received {path}")
    if path.is_dir():
        raise ConfigError(f"expected --output to name a file, received the folder {path}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(
            f"expected --output inside a folder, received {path} ({folder} is a file)"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cnnlab-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"expected a writable --output path, received {path} ({folder}: {exc.strerror})"
        ) from None
    return path


def _check_options(images: int, rtol: float, atol: float, opset: int | None, onnx: Any) -> None:
    if images < 2:
        raise ConfigError(f"expected at least 2 verification images, received images={images}")
    if rtol < 0 or atol < 0:
        raise ConfigError(f"expected tolerances >= 0, received rtol={rtol}, atol={atol}")
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not OLDEST_OPSET <= opset <= newest:
        raise ConfigError(
            f"expected --opset from {OLDEST_OPSET} to {newest} (what the torch.export exporter "
            f"and the installed onnx support), received opset={opset}"
        )


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ConfigError(f"expected a writable --output path, received {path} ({exc})") from None


def _selection(run: Run | None) -> dict[str, Any] | None:
    """The class selection a run was trained on, as its metadata stores it (None: all)."""
    if run is None or run.meta.selection is None:
        return None
    return run.meta.selection.to_dict()
