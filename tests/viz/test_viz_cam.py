"""Grad-CAM and saliency: a known answer, real digits, the layer choice, `cnnlab cam`."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import Field
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run
from cnnlab.viz import class_maps, grad_cam, plot_cam
from cnnlab.viz._layers import Layer, model_layers
from cnnlab.viz.cam import cam_layer, class_index, project_to_input
from pictures import colourmap_share, grey_levels, read_png


class Spotter(nn.Module):
    """conv 3x3 (padded) -> ReLU -> global average pool -> linear: Grad-CAM's home ground."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0  # channel 0: the pixel itself
            self.conv.weight[1, 0, 1, 1] = -1.0  # channel 1: its negative
            self.fc.weight.copy_(torch.eye(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def test_grad_cam_known_answer():
    """Class 0's score is the mean of the positive pixels: its Grad-CAM is those pixels."""
    model = Spotter().train()
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1:3, 5:7] = 2.0  # a bright patch top right
    x[0, 0, 6, 1] = 1.0  # a dimmer pixel bottom left
    layer = Layer("relu", model.relu, (2, 8, 8), Field((3.0, 3.0), (1.0, 1.0), (0.0, 0.0)))
    cam, saliency, logits = grad_cam(model, x, layer, target=0)
    assert int(logits.argmax()) == 0
    torch.testing.assert_close(cam, x[0, 0] / 2)  # normalised to a maximum of 1
    torch.testing.assert_close(saliency, (x[0, 0] > 0).float())  # d score / d pixel = 1/64
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # weights' gradients untouched
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_maps_are_placed_at_their_receptive_field_centres():
    heat = torch.zeros(3, 3)
    heat[1, 2] = 1.0
    placed = project_to_input(heat, Field((5.0, 5.0), (2.0, 2.0), (4.0, 4.0)), (12, 12))
    assert placed.shape == (12, 12)
    assert placed[6, 8] == 1.0 and placed.argmax() == 6 * 12 + 8  # unit (1, 2) -> pixel (6, 8)
    assert placed[6, 7] == pytest.approx(0.5) and placed[6, 10] == 0  # bilinear, fades out


def test_default_layer_is_the_rectified_last_spatial_conv(trained_run):
    run = load_run(trained_run)
    layers = model_layers(run.model, (1, 32, 32))
    chosen = cam_layer(layers)
    assert chosen.name == "features.4"  # ReLU of features.3; features.6's maps are 1x1
    assert isinstance(chosen.module, nn.ReLU) and chosen.output_shape == (16, 10, 10)


def test_real_digits_heat_on_and_around_the_digit(trained_run, subset):
    """On 100 real test digits the heat lies on and around the strokes, not in the empty space.

    LeNet-5's last spatial conv sees 14x14 pixels per unit at a 10x10 grid, so its Grad-CAM is
    coarse: it often lights the pixels beside a stroke (edge detectors, and the absence of ink
    there is evidence too) about as much as the stroke itself. So: per image, the mean heat
    within 3 pixels of the ink beats the rest (measured: 99 of 100, 4.6 times on average); on
    average ink pixels get more than the background (1.8 times). Saliency follows the strokes
    themselves (at least 2.7 times the background's in every image).
    """
    run = load_run(trained_run)
    n = 100
    x = run.preprocessing(subset.test.images[:n])
    ink = F.pad(subset.test.images[:n, 0].float(), (2, 2, 2, 2)) > 127
    near = F.max_pool2d(ink[:, None].float(), 7, stride=1, padding=3)[:, 0] > 0
    layer = cam_layer(model_layers(run.model, (1, 32, 32)))
    maps = [grad_cam(run.model, x[i : i + 1], layer) for i in range(n)]
    cam = torch.stack([m[0] for m in maps])
    saliency = torch.stack([m[1] for m in maps])

    def mean_over(heat, mask):
        return (heat * mask).sum((1, 2)) / mask.sum((1, 2))

    assert (mean_over(cam, near) > mean_over(cam, ~near)).float().mean() >= 0.95
    assert mean_over(cam, near).mean() > 3 * mean_over(cam, ~near).mean()
    assert mean_over(cam, ink).mean() > 1.5 * mean_over(cam, ~ink).mean()
    assert (mean_over(saliency, ink) > 2 * mean_over(saliency, ~ink)).float().mean() >= 0.95


def test_class_maps_for_the_predicted_and_a_chosen_class(trained_run, digit):
    run = load_run(trained_run)
    predicted = class_maps(run, digit)
    assert predicted.target == predicted.predicted == 7
    assert predicted.probabilities.sum().item() == pytest.approx(1.0)
    assert predicted.cam.shape == predicted.saliency.shape == (32, 32)
    assert predicted.cam.max() == 1.0 and predicted.cam.min() >= 0
    other = class_maps(run, digit, target="1")
    assert other.target == 1 and other.predicted == 7
    assert not torch.equal(other.cam, predicted.cam)
    assert class_maps(run, digit, layer="features.2").layer.name == "features.2"


def test_class_names_and_indices():
    classes = ("cat", "dog", "fox")
    assert [class_index(classes, c) for c in ("dog", 2, "0")] == [1, 2, 0]
    for bad in ("cow", 3, "-1", "1.0"):
        with pytest.raises(ConfigError, match=r"expected a class of the run \(cat, dog, fox\)"):
            class_index(classes, bad)


def test_cli_cam(trained_run, digit, tmp_path, cli, png):
    out = tmp_path / "cam.png"
    status, stdout, _ = cli("cam", trained_run, digit, "--output", out)
    assert status == 0 and str(out) in stdout
    width, height = png(out)
    assert width > 2 * height > 600
    pixels = read_png(out)
    assert colourmap_share(pixels, "inferno") > 0.02  # the saliency panel and its bar
    # Grad-CAM's hot region: red, at half strength over the black background of the digit
    assert colourmap_share(pixels, "jet", 0.8, 1.0, alpha=0.5) > 0.001
    assert grey_levels(pixels) > 64  # the digit as the model sees it
    status, _, _ = cli(
        "cam", trained_run, digit, "--class", "3", "--layer", "features.1", "--output", out
    )
    assert status == 0


def test_cli_cam_bad_input(trained_run, digit, tmp_path, cli, one_line_error):
    out = tmp_path / "cam.png"
    status, _, err = cli("cam", trained_run, digit, "--class", "11", "--output", out)
    one_line_error(status, err, "expected a class of the run (0, 1, 2", "class='11'")
    status, _, err = cli("cam", trained_run, digit, "--layer", "features.6", "--output", out)
    one_line_error(status, err, "received layer='features.6'", "features.4, features.5")
    status, _, err = cli("cam", trained_run, tmp_path / "nope.png", "--output", out)
    one_line_error(status, err, "nope.png", "no such file")
    status, _, err = cli("cam", tmp_path / "missing", digit, "--output", out)
    one_line_error(status, err, "no such path")
    assert not out.exists()


def test_plot_cam_api(trained_run, digit, tmp_path):
    run = load_run(trained_run)
    pixels = read_png(plot_cam(run, digit, tmp_path / "a.png", target=2))
    assert colourmap_share(pixels, "inferno") > 0.02
