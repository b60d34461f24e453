"""``cnnlab explore``: a local web page to look inside a network, as a thin client of a JSON API.

Draw a digit, upload an image or pick a test example, and see the top-k probabilities (live
while drawing), every layer's feature maps in the summary's order (Inception branches and
residual additions as such), the numbers behind any conv unit (kernel, patch, products, sum,
bias, activation), Grad-CAM and saliency, the filters, and the NumPy engine's parity.

Public API (resolved lazily: the web packages are imported only when a server is built)::

    serve(run_or_model, host="127.0.0.1", port=8765, open_browser=True)   cnnlab explore RUN
    Explorer(load_target(run_or_model))   the model side, JSON-ready dictionaries
    create_app(explorer)                  the Starlette application (page + /api/...)

The API is documented in ``docs/explore-api.md``; the page lives in ``static/`` (no CDN).
"""

from __future__ import annotations

from cnnlab._lazy import lazy_api

_API: dict[str, tuple[str, ...]] = {  # defining module -> the names it gives
    "cnnlab.explore.server": ("serve",),
    "cnnlab.explore.api": ("create_app",),
    "cnnlab.explore.explorer": ("Explorer",),
    "cnnlab.explore.target": ("Target", "load_target"),
}

__getattr__, __dir__, __all__ = lazy_api(__name__, globals(), _API)
