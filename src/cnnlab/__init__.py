"""cnnlab: convolutional neural networks for image classification.

The public API is listed in ``__all__`` and resolved lazily (PEP 562), so ``import cnnlab``
is cheap and ``cnnlab.scratch`` (the NumPy engine) can be imported where torch is absent.

Example:
    >>> import cnnlab
    >>> history = cnnlab.fit("lenet5", "mnist", out="runs/lenet5")  # doctest: +SKIP
    >>> history = cnnlab.resume("runs/lenet5")  # doctest: +SKIP
    >>> cnnlab.evaluate("runs/lenet5").accuracy  # doctest: +SKIP
"""

from __future__ import annotations

from cnnlab._lazy import lazy_api

__version__ = "0.1.0"

_API: dict[str, str] = {
    "CnnlabError": "cnnlab.errors",
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "register_model": "cnnlab.models",
    "load_dataset": "cnnlab.data.datasets",
    "fetch_dataset": "cnnlab.data.datasets",
    "TrainConfig": "cnnlab.training.config",
    "to_scratch": "cnnlab.bridge",
    "check_gradients": "cnnlab.bridge.gradcheck",
    "fit": "cnnlab.training.run",
    "resume": "cnnlab.training.run",
    "load_run": "cnnlab.runs",
    "Run": "cnnlab.runs",
    "RunMeta": "cnnlab.runs",
    "History": "cnnlab.training.history",
    "evaluate": "cnnlab.evaluation.evaluate",
    "DataSelection": "cnnlab.evaluation.inputs",
    "write_report": "cnnlab.report",
    "predict": "cnnlab.evaluation.predict",
    "ensemble": "cnnlab.evaluation.ensemble",
    "finetune": "cnnlab.transfer",
    "augment": "cnnlab.data.augment",
    "Augmenter": "cnnlab.data.augment",
    "parse_augment": "cnnlab.data.augment_spec",
    "summary": "cnnlab.analysis",
    "export_onnx": "cnnlab.export.exporter",
}

__all__ = sorted(_API)


__getattr__, __dir__ = lazy_api(__name__, globals(), _API)
