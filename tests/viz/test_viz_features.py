"""Feature maps: seed 000's standardisation, one tile per channel, hooks, `cnnlab features`."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.analysis import summary
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run
from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnlab.viz import feature_maps, plot_features
from cnnlab.viz._layers import capture_outputs, model_layers
from cnnlab.viz._tiles import grid_columns, standardise_maps, tile, tile_origins
from pictures import colourmap_share, grey_levels, read_png


def seed_000(x: np.ndarray) -> np.ndarray:
    """The seed's code for one map, verbatim."""
    x = x.copy()
    x -= x.mean()
    x /= x.std()
    x *= 64
    x += 128
    return np.clip(x, 0, 255).astype("uint8")


def hooks_of(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_standardisation_is_seed_000s():
    maps = torch.randn(5, 7, 9) * 3 + 1
    maps[2] = 4.0  # a constant (dead) map: the seed would divide by 0
    ours = standardise_maps(maps)
    assert ours.dtype == np.uint8 and ours.shape == (5, 7, 9)
    for c in (0, 1, 3, 4):
        theirs = seed_000(maps[c].double().numpy())
        assert np.abs(ours[c].astype(int) - theirs.astype(int)).max() <= 1  # rounding of .5
    assert (ours[2] == 128).all()


def test_tiles_one_per_map_in_row_order():
    maps = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = tile(maps, columns=2)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    origins = tile_origins(5, 2, 2, 3)
    assert origins == [(0, 0), (0, 4), (3, 0), (3, 4), (6, 0)]
    for k, (r, c) in enumerate(origins):
        np.testing.assert_array_equal(grid[r : r + 2, c : c + 3], maps[k])
    assert np.isnan(grid[6:8, 4:7]).all() and np.isnan(grid[2]).all()  # empty cell, gap row
    assert [grid_columns(n) for n in (1, 6, 16, 64, 256)] == [1, 6, 16, 16, 32]


def test_every_conv_and_pool_layer_one_tile_per_channel(trained_run, digit):
    found = feature_maps(load_run(trained_run), digit)
    shapes = {row.name: row.output_shape for row in summary("lenet5").layers}
    # features.6's 120 maps are 1x1 and carry no picture
    assert [f.layer.name for f in found] == ["features.0", "features.2", "features.3", "features.5"]
    for f in found:
        assert tuple(f.maps.shape) == shapes[f.layer.name]
        grid = tile(standardise_maps(f.maps).astype(float), grid_columns(len(f.maps)))
        h, w = f.maps.shape[1:]
        tiles = [t for r, c in tile_origins(len(f.maps), grid_columns(len(f.maps)), h, w)
                 if not np.isnan(t := grid[r : r + h, c : c + w]).any()]  # fmt: skip
        assert len(tiles) == f.maps.shape[0]


def test_maps_are_the_layer_outputs_and_hooks_are_removed(trained_run, digit):
    run = load_run(trained_run)
    before = hooks_of(run.model)
    found = feature_maps(run, digit, layers=["features.1", "features.0"])
    assert hooks_of(run.model) == before == 0
    assert [f.layer.name for f in found] == ["features.1", "features.0"]
    torch.testing.assert_close(found[0].maps, torch.relu(found[1].maps))  # ReLU of the conv


def test_hooks_are_removed_when_the_forward_fails(trained_run):
    run = load_run(trained_run)
    layers = model_layers(run.model, (1, 32, 32))
    with pytest.raises(RuntimeError), capture_outputs(layers):
        assert hooks_of(run.model) == len(layers)
        run.model(torch.zeros(1, 3, 32, 32))  # wrong channels
    assert hooks_of(run.model) == 0


def test_unknown_and_flat_layers_list_the_valid_names(trained_run, digit):
    for bad in ("conv1", "classifier.0"):
        with pytest.raises(ConfigError) as info:
            feature_maps(load_run(trained_run), digit, layers=["features.0", bad])
        message = str(info.value)
        assert f"received layer='{bad}'" in message
        assert "features.0, features.1, features.2" in message and "features.7" in message
        assert "classifier" not in message.split("received")[0]


def test_cli_features(trained_run, digit, tmp_path, cli, png):
    out = tmp_path / "maps.png"
    status, stdout, _ = cli("features", trained_run, digit, "--output", out)
    assert status == 0 and str(out) in stdout
    width, height = png(out)
    assert width > 1000 and height > 800
    pixels = read_png(out)
    assert colourmap_share(pixels, "viridis") > 0.2  # the map tiles
    assert grey_levels(pixels) > 64  # the input panel: the digit as the model sees it
    status, _, _ = cli(
        "features", trained_run, digit, "--layers", "features.3", "--output", tmp_path / "one.png"
    )
    width, height = png(tmp_path / "one.png")
    assert status == 0 and height < 600  # input and one layer only


def test_cli_features_bad_input(trained_run, run_copy, digit, tmp_path, cli, one_line_error):
    out = tmp_path / "x.png"
    status, _, err = cli("features", trained_run, digit, "--layers", "fc", "--output", out)
    one_line_error(status, err, "received layer='fc'", "features.0")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 30)
    status, _, err = cli("features", trained_run, tmp_path / "broken.png", "--output", out)
    one_line_error(status, err, "broken.png", "cannot be decoded")
    (tmp_path / "empty").mkdir()
    status, _, err = cli("features", tmp_path / "empty", digit, "--output", out)
    one_line_error(status, err, "expected a run directory")
    # a checkpoint whose conversion makes images the model cannot take (4x4 instead of 32x32)
    ckpt = load_checkpoint(run_copy / "best.safetensors")
    prep = {**ckpt.meta["preprocessing"], "image_size": [4, 4], "input_size": [4, 4]}
    save_checkpoint(run_copy / "tiny.safetensors", Checkpoint(ckpt.model_state,
                    {**ckpt.meta, "preprocessing": prep}))  # fmt: skip
    status, _, err = cli("features", run_copy / "tiny.safetensors", digit, "--output", out)
    one_line_error(status, err, "expected an image the model can take", "1x4x4")
    assert not out.exists()


def test_rgb_and_odd_images_are_converted_as_training_data(trained_run, digit, tmp_path):
    rgb = tmp_path / "big-rgb.jpg"
    Image.open(digit).convert("RGB").resize((56, 56)).save(rgb)
    found = feature_maps(load_run(trained_run), rgb, layers=["features.0"])
    assert tuple(found[0].maps.shape) == (6, 28, 28)
    pixels = read_png(plot_features(load_run(trained_run), rgb, tmp_path / "rgb.png"))
    assert colourmap_share(pixels, "viridis") > 0.2
