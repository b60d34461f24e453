"""`cnnlab summary` and `cnnlab models` from the command line."""

import json

import pytest

from cli_helpers import run_cli

LAYER_KEYS = {
    "name",
    "type",
    "output_shape",
    "params",
    "trainable_params",
    "non_trainable_params",
    "macs",
    "receptive_field",
    "jump",
    "start",
}


def test_json_follows_the_contract_and_seed_000(capsys):
    status, out, _ = run_cli(capsys, "summary", "lenet5", "--json")
    document = json.loads(out)
    assert status == 0
    assert {
        "model",
        "input_shape",
        "layers",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "macs",
        "flops",
    } <= set(document)
    assert all(set(layer) >= LAYER_KEYS for layer in document["layers"])
    params = [layer["params"] for layer in document["layers"] if layer["params"]]
    assert params == [156, 2416, 48120, 10164, 850]
    assert document["flops"] == 2 * document["macs"]


def test_explain_shows_the_seed_arithmetic(capsys):
    status, out, _ = run_cli(capsys, "summary", "lenet5", "--explain")
    assert status == 0
    assert "(32 - 5 + 2*0)/1 + 1 = 28" in out and "5x5x1x6 + 6 = 156" in out


def test_keras_baseline_table_of_seed_003(capsys):
    _, out, _ = run_cli(capsys, "summary", "baseline", "--input", "3,32,32", "--json")
    document = json.loads(out)
    assert document["total_params"] == 198_506 and document["non_trainable_params"] == 12


def test_summary_of_a_run_directory(capsys, trained_run):
    status, out, _ = run_cli(capsys, "summary", trained_run, "--json")
    document = json.loads(out)
    assert status == 0 and document["input_shape"] == [1, 32, 32]
    assert document["trainable_params"] == 61_706


def test_file_callable(capsys, tmp_path):
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))\n"
        "def not_a_model():\n"
        "    return 42\n"
    )
    status, out, _ = run_cli(
        capsys, "summary", f"{tmp_path / 'net.py'}:make", "--input", "3,16,16", "--json"
    )
    assert status == 0 and json.loads(out)["layers"][-1]["receptive_field"] == 5
    status, _, err = run_cli(
        capsys, "summary", f"{tmp_path / 'net.py'}:not_a_model", "--input", "3,16,16"
    )
    assert status == 2 and err.count("\n") == 1 and "nn.Module" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["summary", "resnet8"], "unknown model 'resnet8'"),
        (["summary", "lenet5", "--input", "1,32"], "received input='1,32'"),
        (["summary", "alexnet", "--input", "3,32,32"], "(1 - 3 + 2*0)/2 + 1 = 0"),
        (["summary", "missing.py:make"], "missing.py"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, fragment):
    status, _, err = run_cli(capsys, *argv)
    assert status == 2 and err.count("\n") == 1 and fragment in err


def test_models_lists_parameters_and_macs(capsys):
    status, out, _ = run_cli(capsys, "models", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert status == 0 and rows["lenet5"]["params"] == 61_706 and rows["lenet5"]["macs"] == 416_520
    assert rows["vgg16"]["params"] == 138_357_544
