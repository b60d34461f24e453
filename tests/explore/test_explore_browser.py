"""The page in a real browser: Debian's Chromium, driven by Python playwright.

The real server runs as ``cnnlab explore RUN --port P --no-browser`` in a subprocess (with the
MNIST subset registered, for the test examples); every wait is bounded and the server is
stopped whatever happens. Where no Chromium is installed the test says so in one line.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explore_helpers import free_port, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUBSET_CLI = Path(__file__).parents[1] / "subset_cli.py"
IDLE = "() => state.last !== null && !queue.busy && queue.pending === null"
WAIT_MS = 60_000


def paper_digit(subset, folder: Path) -> Path:
    """Test example 1 (a 2) as a PNG of a dark digit on light paper, three times larger."""
    digit = subset.test.images[1, 0].numpy()
    path = folder / "paper-2.png"
    Image.fromarray(255 - np.kron(digit, np.ones((3, 3), dtype=np.uint8))).save(path)
    return path


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_draw_a_one_see_every_layer_and_explain_a_unit(trained_run, cache_dir, subset, tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    argv = [str(SUBSET_CLI), str(cache_dir), "explore", str(trained_run), "--port", str(port)]
    server = start_server([*argv, "--no-browser"])
    errors: list[str] = []
    try:
        with urllib.request.urlopen(server.url + "api/model", timeout=30) as response:
            info = json.loads(response.read())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=WAIT_MS
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(WAIT_MS)
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url)
                page.wait_for_function(IDLE)

                # one panel per summary layer, in the summary's order, named as there
                names = page.eval_on_selector_all(
                    "[data-layer]", "e => e.map(x => x.dataset.layer)"
                )
                assert names == [row["name"] for row in info["layers"]]

                # draw a "1" with the mouse: one stroke, top to bottom
                box = page.locator("[data-testid=draw]").bounding_box()
                x, top, bottom = box["x"] + box["width"] * 0.5, box["y"] + 30, box["y"] + 210
                page.mouse.move(x, top)
                page.mouse.down()
                for step in range(1, 25):
                    page.mouse.move(x + step * 0.4, top + (bottom - top) * step / 24)
                page.mouse.up()
                page.wait_for_function(IDLE)
                page.wait_for_function("() => queue.pending === null && !queue.busy")
                prediction = page.inner_text("[data-testid=prediction]")
                shown = page.evaluate("state.last.prediction.class")
                assert prediction.split()[0] == shown == "1", prediction
                ink = page.evaluate(
                    "Array.from(bytesOf(state.last.input.seen)).reduce((a, b) => a + b, 0)"
                )
                assert ink > 0  # the model saw the stroke
                page.screenshot(path=tmp_path / "drawn-one.png")

                # click a unit of C1 (channel 2, the middle of its tile): its explanation
                canvas = page.locator("[data-layer='features.0'] canvas.tiles")
                tiles = canvas.bounding_box()
                grid_w = 6 * 29 - 1  # six 28x28 maps, one pixel apart
                canvas.click(
                    position={
                        "x": (2 * 29 + 14.5) / grid_w * tiles["width"],
                        "y": 14.5 / 28 * tiles["height"],
                    }
                )
                explanation = page.locator("[data-layer='features.0'] [data-testid=explanation]")
                explanation.wait_for(state="visible")
                page.wait_for_function(
                    '() => document.querySelector("[data-testid=explanation] .check") !== null'
                )
                text = explanation.inner_text()
                assert "channel 2" in text and "unit y 14, x 14" in text
                for part in ("kernel", "input patch", "products", "bias", "max(0, z)", "✓"):
                    assert part in text, (part, text)
                page.screenshot(path=tmp_path / "unit.png")

                # a test example with its true label
                page.click("#input-tabs [data-tab=example]")
                page.wait_for_function("() => state.last.input.true_class !== null")
                page.wait_for_function(IDLE)
                assert "true class 7" in page.inner_text("[data-testid=prediction]")
                page.screenshot(path=tmp_path / "example.png")

                # an upload: a test "2" scanned dark on light paper, inverted on the server
                page.click("#input-tabs [data-tab=upload]")
                page.check("#invert")
                page.set_input_files("[data-testid=upload]", paper_digit(subset, tmp_path))
                page.wait_for_function("() => state.source === 'upload' && state.pixels !== null")
                page.wait_for_function(IDLE)
                page.wait_for_function("() => state.last.input.true_class === null")
                assert page.inner_text("[data-testid=prediction]").split()[0] == "2"
                page.screenshot(path=tmp_path / "upload.png")
            finally:
                browser.close()
    finally:
        server.stop()
    assert not errors, errors
