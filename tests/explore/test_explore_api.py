"""The explorer's JSON API on a real MNIST run: what it returns is what the model computes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from starlette.testclient import TestClient

from cnnlab.analysis import summary
from cnnlab.evaluation.predict import predict
from cnnlab.explore.api import STATIC, create_app
from cnnlab.explore.explorer import Explorer
from cnnlab.explore.target import load_target
from cnnlab.runs import load_run
from cnnlab.viz._tiles import standardise_maps
from cnnlab.viz.cam import class_maps
from explore_helpers import drawing, floats, stroke_of_one, uint8s

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("explore-api")

EXAMPLES = (0, 1, 2)  # a 7, a 2 and a 1 of the MNIST test split


@pytest.fixture(scope="module")
def run(trained_run):
    return load_run(trained_run)


def hook_outputs(model: torch.nn.Module, x: torch.Tensor, names: list[str]):
    """Logits and every named layer's output for ``x``, caught with plain forward hooks."""
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _a, out, name=name: outputs.setdefault(name, out.detach().clone())
        )
        for name in names
    ]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits[0], {name: out[0] for name, out in outputs.items()}


def example_input(run, subset, index: int) -> torch.Tensor:
    """Test example ``index`` converted by the run's own preprocessing. Shape: (1, 1, 32, 32)."""
    return run.preprocessing(subset.test.images[index : index + 1])


def post(client, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_model_info_lists_every_summary_row_in_order(client, run):
    info = client.get("/api/model").json()
    expected = summary(run.model, tuple(run.meta.input_shape)).to_dict()["layers"]
    assert [row["name"] for row in info["layers"]] == [row["name"] for row in expected]
    for row, want in zip(info["layers"], expected):
        for key in ("type", "output_shape", "params", "macs", "receptive_field", "jump", "start"):
            assert row[key] == want[key], (row["name"], key)
    assert info["model"] == "lenet5" and info["trained"] and info["digits"]
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["input_shape"] == [1, 32, 32] and info["image_size"] == [28, 28]
    assert info["conv_layers"] == ["features.0", "features.3", "features.6"]
    assert info["merges"] == []  # LeNet-5 is a chain: every layer reads the one before
    for row in info["layers"][1:]:
        assert row["inputs"] == [{"kind": "layer", "index": row["index"] - 1, "via": []}]


@pytest.mark.parametrize("index", EXAMPLES)
def test_forward_maps_equal_forward_hook_outputs(client, run, subset, index):
    body = {"input": {"kind": "example", "index": index}, "raw": True}
    result = post(client, "/api/forward", body)
    names = [row["name"] for row in result["layers"]]
    logits, outputs = hook_outputs(run.model, example_input(run, subset, index), names)
    for layer in result["layers"]:
        want = outputs[layer["name"]]
        assert layer["shape"] == list(want.shape)
        got = torch.from_numpy(floats(layer["raw"], want.shape).copy())
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=layer["name"])
        if "tiles" in layer:  # the maps as drawn: standardised as in `cnnlab features`
            tiles = uint8s(layer["tiles"], (layer["shown"], *want.shape[1:])).astype(int)
            expected_tiles = standardise_maps(want[: layer["shown"]]).astype(int)
            assert np.abs(tiles - expected_tiles).max() <= 1, layer["name"]
    probabilities = torch.tensor(result["probabilities"], dtype=torch.float64)
    torch.testing.assert_close(probabilities, logits.double().softmax(0), rtol=1e-5, atol=1e-6)
    assert result["prediction"]["index"] == int(logits.argmax())
    assert result["input"]["true_label"] == int(subset.test.labels[index])
    seen = uint8s(result["input"]["seen"], result["input"]["shape"])
    assert np.array_equal(seen[0, 2:30, 2:30], subset.test.images[index, 0].numpy())  # padded 2


def test_unit_of_a_conv_map_adds_up_to_its_value(client, run, subset):
    names = ["features.0", "features.1", "features.2", "features.3", "features.4", "features.6"]
    _, outputs = hook_outputs(run.model, example_input(run, subset, 0), names)
    x = example_input(run, subset, 0)[0]
    modules = dict(run.model.named_modules())
    generator = torch.Generator().manual_seed(0)
    cases = [("features.0", x, "features.1"), ("features.3", outputs["features.2"], "features.4")]
    for layer, layer_input, relu in cases:
        c, h, w = outputs[layer].shape
        for _ in range(4):
            k, y, xx = (int(torch.randint(n, (1,), generator=generator)) for n in (c, h, w))
            body = {"input": {"kind": "example", "index": 0}, "layer": layer, "channel": k}
            unit = post(client, "/api/unit", {**body, "y": y, "x": xx})
            conv, value = unit["conv"], float(outputs[layer][k, y, xx])
            assert unit["kind"] == "conv" and unit["value"] == pytest.approx(value, abs=1e-5)
            kernel, patch = np.array(conv["kernel"]), np.array(conv["patch"])
            weight = modules[layer].weight[k].detach().double().numpy()
            np.testing.assert_allclose(kernel, weight, rtol=1e-6)
            window = layer_input[:, y : y + 5, xx : xx + 5].double().numpy()  # stride 1, no pad
            np.testing.assert_allclose(patch, window, rtol=1e-6)
            np.testing.assert_allclose(np.array(conv["products"]), kernel * patch, rtol=1e-9)
            assert conv["sum"] == pytest.approx(float((kernel * patch).sum()), rel=1e-9)
            assert conv["bias"] == pytest.approx(float(modules[layer].bias.detach()[k]), rel=1e-6)
            assert conv["z"] == pytest.approx(conv["sum"] + conv["bias"], rel=1e-12)
            assert conv["z"] == pytest.approx(value, rel=1e-4, abs=1e-5)  # the map's value
            (step,) = unit["then"]  # the ReLU right after, on this value alone
            assert step["layer"] == relu and step["type"] == "ReLU"
            assert step["value"] == pytest.approx(float(outputs[relu][k, y, xx]), abs=1e-6)
            assert step["value"] == pytest.approx(max(0.0, value), abs=1e-6)
            field = unit["field"]  # LeNet's C1 sees 5x5 pixels, C3 14x14, from (y, x) on
            size = 5 if layer == "features.0" else 14
            jump = 1 if layer == "features.0" else 2
            assert field["size"] == [size, size]
            assert (field["top"], field["left"]) == (y * jump, xx * jump)
    # C5's maps are 1x1: one unit per channel, seeing 16 input channels of 5x5
    unit = post(client, "/api/unit", {**body, "layer": "features.6", "channel": 7, "y": 0, "x": 0})
    assert len(unit["conv"]["channels"]) == 16
    assert unit["conv"]["z"] == pytest.approx(float(outputs["features.6"][7, 0, 0]), rel=1e-4)


def test_unit_of_a_pool_map_takes_the_max_of_its_window(client, run, subset):
    _, outputs = hook_outputs(run.model, example_input(run, subset, 1), ["features.1"])
    body = {"input": {"kind": "example", "index": 1}, "layer": "features.2"}
    unit = post(client, "/api/unit", {**body, "channel": 3, "y": 6, "x": 5})
    window = outputs["features.1"][3, 12:14, 10:12]
    assert unit["kind"] == "pool" and unit["pool"]["op"] == "max"
    np.testing.assert_allclose(np.array(unit["pool"]["patch"]), window.double().numpy(), rtol=1e-6)
    assert unit["pool"]["result"] == pytest.approx(float(window.max()), rel=1e-6)
    assert unit["value"] == pytest.approx(float(window.max()), rel=1e-6)


def test_a_drawn_one_is_centred_like_mnist_and_recognised(client):
    ink = stroke_of_one()
    result = post(client, "/api/forward", {"input": drawing(ink), "maps": False})
    seen = uint8s(result["input"]["seen"], result["input"]["shape"])[0, 2:30, 2:30]  # the 28x28
    rows = np.flatnonzero(seen.max(axis=1) > 25)  # MNIST: the digit's box is 20 pixels tall
    assert rows[-1] - rows[0] + 1 == 20
    mass = seen.astype(float) / seen.sum()
    cy = (mass.sum(axis=1) * np.arange(28)).sum()
    cx = (mass.sum(axis=0) * np.arange(28)).sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # centre of mass where MNIST has it
    assert result["prediction"]["class"] == "1"
    moved = np.roll(ink, (-30, -90), axis=(0, 1))  # the same stroke drawn elsewhere
    again = post(client, "/api/forward", {"input": drawing(moved), "maps": False})
    assert again["input"]["seen"] == result["input"]["seen"]


def test_upload_is_decoded_as_predict_decodes_it(client, run, subset, tmp_path):
    digit = subset.test.images[2, 0].numpy()  # a 1, drawn dark on light paper
    path = tmp_path / "paper.png"
    Image.fromarray(255 - np.kron(digit, np.ones((3, 3), dtype=np.uint8))).save(path)
    response = client.post("/api/upload?invert=1&centre=1", content=path.read_bytes())
    assert response.status_code == 200, response.text
    pixels = response.json()
    assert pixels["shape"] == [1, 28, 28]
    result = post(client, "/api/forward", {"input": {"kind": "pixels", **pixels}, "top_k": 3})
    (expected,) = predict(run, [path], top_k=3, invert=True)
    assert [item["class"] for item in result["top_k"]] == expected.classes
    got = [item["probability"] for item in result["top_k"]]
    np.testing.assert_allclose(got, expected.probabilities, rtol=1e-4, atol=1e-6)


def test_shift_moves_the_image_by_whole_pixels(client):
    example = {"kind": "example", "index": 0}
    plain = post(client, "/api/forward", {"input": example, "maps": False})["input"]
    body = {"input": example, "maps": False, "transform": {"shift_x": 3, "shift_y": -2}}
    moved = post(client, "/api/forward", body)["input"]
    a = uint8s(plain["seen"], plain["shape"])[0, 2:30, 2:30]  # the 28x28 image inside padding
    b = uint8s(moved["seen"], moved["shape"])[0, 2:30, 2:30]
    assert np.array_equal(b[:-2, 3:], a[2:, :-3])
    assert not b[:, :3].any() and not b[-2:].any()  # what comes in is background


def test_cam_equals_cnnlab_cam(client, run, subset, tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(subset.test.images[0, 0].numpy()).save(path)
    for target in (None, 3):
        body = {"input": {"kind": "example", "index": 0}}
        result = post(client, "/api/cam", body if target is None else {**body, "class": target})
        maps = class_maps(run, path, target=target)
        assert result["layer"] == maps.layer.name == "features.4"
        assert result["target"] == maps.target
        for key, want in (("cam", maps.cam), ("saliency", maps.saliency)):
            got = uint8s(result[key], result["shape"]).astype(int)
            assert np.abs(got - (want * 255).round().numpy()).max() <= 1, key


def test_filters_are_the_conv_weights(client, run):
    result = client.get("/api/filters?layer=features.3").json()
    weight = dict(run.model.named_modules())["features.3"].weight.detach()
    assert result["shape"] == [16, 6, 5, 5] and result["layer"] == "features.3"
    assert np.array_equal(floats(result["weights"], result["shape"]), weight.numpy())
    assert client.get("/api/filters").json()["layer"] == "features.0"


def test_parity_of_the_numpy_engine_per_layer(client, run, subset):
    result = post(client, "/api/parity", {"input": {"kind": "example", "index": 0}})
    names = [row.name for row in summary(run.model, (1, 32, 32)).layers]
    assert [layer["name"] for layer in result["layers"]] == names
    for layer in result["layers"]:
        assert layer["max_abs"] > 0
        assert layer["max_abs_diff"] <= 1e-4 * max(1.0, layer["max_abs"]), layer
    logits, _ = hook_outputs(run.model, example_input(run, subset, 0), [])
    assert result["numpy"]["prediction"]["index"] == int(logits.argmax())
    assert result["logits_max_abs_diff"] <= 1e-4 * max(1.0, float(logits.abs().max()))


def test_a_checkpoint_file_is_a_target(trained_run, cache_dir):
    checkpoint = trained_run / "best.safetensors"
    explorer = Explorer(load_target(checkpoint), cache_dir=cache_dir)
    info = explorer.info()
    assert info["trained"] and info["checkpoint"] == str(checkpoint)
    assert explorer.examples()["count"] == 1000  # its test split, named by the checkpoint


def test_examples_list_the_test_labels(client, subset):
    examples = client.get("/api/examples").json()
    assert examples["available"] and examples["count"] == len(subset.test)
    assert examples["labels"] == subset.test.labels.tolist()


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (5, 5)).save(buffer, format="PNG")
    return buffer.getvalue()


EXAMPLE = {"kind": "example", "index": 0}
BAD_REQUESTS = [
    ("post", "/api/forward", b"{not json", 400, "invalid JSON"),
    ("post", "/api/forward", [1, 2], 400, "body as a JSON object"),
    ("post", "/api/forward", {"input": EXAMPLE, "colour": 1}, 400, "colour"),
    ("post", "/api/forward", {"input": {"kind": "video"}}, 400, "input.kind"),
    ("post", "/api/forward", {"input": {"kind": "example", "index": 10**6}}, 400, "index"),
    ("post", "/api/forward", {"input": {"kind": "example", "index": -1}}, 400, "index"),
    (
        "post",
        "/api/forward",
        {"input": {"kind": "drawing", "width": 4, "height": 4, "data": "AAAA"}},
        400,
        "16 bytes",
    ),
    (
        "post",
        "/api/forward",
        {"input": {"kind": "drawing", "width": 2, "height": 2, "data": "not base64!"}},
        400,
        "base64",
    ),
    (
        "post",
        "/api/forward",
        {"input": {"kind": "pixels", "shape": [3, 28, 28], "data": "A" * 3136}},
        400,
        "shape",
    ),
    ("post", "/api/forward", {"input": EXAMPLE, "transform": {"scale": 100}}, 400, "scale"),
    ("post", "/api/forward", {"input": EXAMPLE, "transform": {"shift_x": 40}}, 400, "shift"),
    ("post", "/api/forward", {"input": EXAMPLE, "transform": {"skew": 2}}, 400, "skew"),
    ("post", "/api/forward", {"input": EXAMPLE, "layers": ["nope"]}, 400, "nope"),
    ("post", "/api/unit", {"input": EXAMPLE, "layer": "features.9"}, 400, "features.9"),
    (
        "post",
        "/api/unit",
        {"input": EXAMPLE, "layer": "features.0", "channel": 6, "y": 0, "x": 0},
        400,
        "channel",
    ),
    (
        "post",
        "/api/unit",
        {"input": EXAMPLE, "layer": "classifier.0", "channel": 0, "y": 0, "x": 0},
        400,
        "CxHxW",
    ),
    ("post", "/api/cam", {"input": EXAMPLE, "class": "cat"}, 400, "cat"),
    ("post", "/api/cam", {"input": EXAMPLE, "layer": "classifier.0"}, 400, "classifier.0"),
    ("get", "/api/filters?layer=features.1", None, 400, "conv layer"),
    ("post", "/api/upload", b"not an image at all", 400, "cannot be decoded"),
    ("post", "/api/upload", b"", 400, "0 bytes"),
    ("post", "/api/upload?invert=maybe", _png_bytes(), 400, "invert"),
    ("get", "/api/forward", None, 405, "GET /api/forward"),
    ("get", "/api/nothing", None, 404, "/api/nothing"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "fragment"), BAD_REQUESTS)
def test_bad_requests_are_refused_with_one_json_line(client, method, path, body, status, fragment):
    if isinstance(body, bytes):
        response = client.request(method, path, content=body)
    else:
        response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert "\n" not in error and "Traceback" not in error and fragment in error, error
    assert error.startswith("expected"), error
    # and the server goes on serving
    assert client.post("/api/forward", json={"input": EXAMPLE, "maps": False}).status_code == 200


def test_oversized_upload_is_refused_before_it_is_read(client):
    from cnnlab.explore.api import MAX_UPLOAD_BYTES

    response = client.post("/api/upload", content=b"\0" * (MAX_UPLOAD_BYTES + 1))
    assert response.status_code == 413
    assert "at most" in response.json()["error"]


def test_page_and_its_files_are_served_without_other_origins(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="draw"' in page.text
    assert 'data-testid="upload"' in page.text and 'data-testid="prediction"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    files = sorted(path.name for path in STATIC.iterdir() if path.name != "index.html")
    assert len(files) >= 3
    for name in files:
        assert f'"/static/{name}"' in page.text  # every file is used by the page
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and len(response.content) > 1000
        assert "http://" not in response.text and "https://" not in response.text  # no CDN


def test_maps_beyond_the_channel_limit_on_request(client):
    body = {"input": EXAMPLE, "layers": ["features.6"], "max_channels": 0}
    (layer,) = post(client, "/api/forward", body)["layers"]
    assert layer["name"] == "features.6" and layer["shape"] == [120, 1, 1]
    assert len(base64.b64decode(layer["values"])) == 120 * 4  # 1x1 maps: one value each
    (layer,) = post(client, "/api/forward", {**body, "layers": ["features.3"], "max_channels": 5})[
        "layers"
    ]
    assert layer["shown"] == 5 and layer["channels"] == 16
    assert len(base64.b64decode(layer["tiles"])) == 5 * 10 * 10


def test_grey_levels_survive_bilinear_identity(client):
    """Scale 1, no shift, no rotation leaves the image exactly as it was (no resampling)."""
    example = {"kind": "example", "index": 1}
    plain = post(client, "/api/forward", {"input": example, "maps": False})
    body = {"input": example, "maps": False, "transform": {"scale": 1.0, "rotate": 0}}
    assert post(client, "/api/forward", body)["input"]["seen"] == plain["input"]["seen"]
    rotated = post(client, "/api/forward", {**body, "transform": {"rotate": 90}})
    a = uint8s(plain["input"]["seen"], (1, 32, 32))[0].astype(float)
    b = uint8s(rotated["input"]["seen"], (1, 32, 32))[0].astype(float)
    expected = np.rot90(a)  # counter-clockwise, about the image centre
    assert F.mse_loss(torch.tensor(b), torch.tensor(expected.copy())) < 1.0


def _strict(text: str):
    """``text`` parsed as strict JSON (as a browser's ``JSON.parse``): NaN or Infinity fail."""

    def refuse(constant: str):
        raise AssertionError(f"{constant} in the response: not strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_values_reach_the_page_as_null(trained_run, cache_dir):
    """A model computing NaN (a first-layer bias and a class bias set to NaN) is still shown:
    the responses are strict JSON, the probabilities and the unit's value ``null``."""
    explorer = Explorer(load_target(trained_run), cache_dir=cache_dir)
    modules = dict(explorer.target.model.named_modules())
    head = [m for m in modules.values() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        modules["features.0"].bias[0] = float("nan")
        head.bias[3] = float("nan")
    example = {"kind": "example", "index": 0}
    with TestClient(create_app(explorer)) as client:
        forward = client.post("/api/forward", json={"input": example, "maps": False})
        unit_body = {"input": example, "layer": "features.0", "channel": 0, "y": 3, "x": 4}
        unit = client.post("/api/unit", json=unit_body)
    assert forward.status_code == 200 and unit.status_code == 200, (forward.text, unit.text)
    result = _strict(forward.text)
    assert result["probabilities"] == [None] * 10  # softmax over a NaN logit
    assert result["prediction"]["probability"] is None
    assert _strict(unit.text)["value"] is None
