"""ONNX export, checked against onnxruntime, and onnxruntime in place of torch.

- :func:`export_onnx` (``cnnlab export``): a run, checkpoint or untrained model to an ``.onnx``
  file whose graph takes ``[0, 1]`` pixels and returns logits, verified before it is kept.
- :func:`load_onnx_run`: an ``.onnx`` file as a run that ``predict`` and ``evaluate`` take.

Needs the ``cnnlab[export]`` extra (onnx, onnxscript, onnxruntime; running a file needs
onnxruntime only). Importing this package imports none of them.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_api

_API: dict[str, tuple[str, ...]] = {  # defining module -> the names it gives
    "cnnlab.export.exporter": ("export_onnx", "ExportReport"),
    "cnnlab.export.runtime": ("load_onnx_run", "is_onnx_path", "OnnxClassifier"),
    "cnnlab.export.metadata": ("OnnxMetadata",),
    "cnnlab.export.verify": ("Verification",),
    "cnnlab.export.extra": ("MissingExtraError",),
}

__getattr__, __dir__, __all__ = lazy_api(__name__, globals(), _API)
