"""Pictures (matplotlib is imported only inside this package).

Every picture command of the CLI has a Python face here, resolved lazily (PEP 562) so that
``import cnnlab.viz`` stays cheap. Pictures take results: a loaded run
(``run = cnnlab.load_run(path)``) or an evaluation (``report = cnnlab.evaluate(path)``); they
compute only what one picture needs of one image (maps, Grad-CAM), never an evaluation::

    plot_run(run_dir, output="curves.png")                cnnlab plot RUN
    plot_history(history, path, title="")                 (what training writes as curves.png)
    PlotCurves(path, epochs, title="")                    the callback that writes it
    overfitting_epoch(history) / best_epoch(history)
    plot_features(run, image, output, layers, invert)     cnnlab features RUN IMAGE
    feature_maps(run, image, layers, invert) -> [FeatureMaps]
    plot_filters(run_or_model, output, layer)             cnnlab filters RUN
    conv_filters(run_or_model, layer) -> Filters
    plot_cam(run, image, output, target, layer, invert)   cnnlab cam RUN IMAGE
    class_maps(run, image, target, layer, invert) -> ClassMaps;  grad_cam(model, x, layer)
    plot_confusion(report, output, normalize=False)       cnnlab confusion RUN
"""

from __future__ import annotations

from cnnlab._lazy import lazy_api

_API: dict[str, tuple[str, ...]] = {  # defining module -> the names it gives
    "cnnlab.viz.plots": (
        "best_epoch",
        "overfitting_epoch",
        "plot_history",
        "plot_run",
        "PlotCurves",
    ),
    "cnnlab.viz.features": ("FeatureMaps", "feature_maps", "plot_features"),
    "cnnlab.viz.filters": ("Filters", "conv_filters", "plot_filters"),
    "cnnlab.viz.cam": ("ClassMaps", "class_maps", "grad_cam", "plot_cam"),
    "cnnlab.viz.confusion": ("plot_confusion",),
}

__getattr__, __dir__, __all__ = lazy_api(__name__, globals(), _API)
