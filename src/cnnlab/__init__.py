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

_API: dict[str, tuple[str, ...]] = {  # defining module -> the names it gives
    "cnnlab.errors": ("CnnlabError",),
    "cnnlab.models": ("create_model", "list_models", "register_model"),
    "cnnlab.data.datasets": ("load_dataset", "fetch_dataset"),
    "cnnlab.training.config": ("TrainConfig",),
    "cnnlab.bridge": ("to_scratch",),
    "cnnlab.bridge.gradcheck": ("check_gradients",),
    "cnnlab.training.run": ("fit", "resume"),
    "cnnlab.runs": ("load_run", "Run", "RunMeta"),
    "cnnlab.training.history": ("History",),
    "cnnlab.evaluation.evaluate": ("evaluate",),
    "cnnlab.evaluation.inputs": ("DataSelection",),
    "cnnlab.report": ("write_report",),
    "cnnlab.evaluation.predict": ("predict",),
    "cnnlab.evaluation.ensemble": ("ensemble",),
    "cnnlab.transfer": ("finetune",),
    "cnnlab.data.augment": ("augment", "Augmenter"),
    "cnnlab.data.augment_spec": ("parse_augment",),
    "cnnlab.analysis": ("summary",),
    "cnnlab.export.exporter": ("export_onnx",),
}

__getattr__, __dir__, __all__ = lazy_api(__name__, globals(), _API)
