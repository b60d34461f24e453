"""Two or three examples per command, shown at the end of its ``--help``.

:func:`cnnlab.cli.build_parser` attaches them (one place, so a command module need not know);
``tests/cli/test_cli_help.py`` checks that every command has examples and that each example
parses with the command's own parser.
"""

from __future__ import annotations

#: ``command -> ((command line, what it does), ...)``; nested commands as ``"data fetch"``.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "cnnlab": (
        ("cnnlab train lenet5 --data mnist --out runs/lenet5", "train LeNet-5 on MNIST"),
        ("cnnlab evaluate runs/lenet5", "test accuracy, per-class metrics, worst mistakes"),
        ("cnnlab COMMAND --help", "every command's options and examples"),
    ),
    "models": (
        ("cnnlab models", "every registered model: input, parameters, MACs"),
        ("cnnlab models 'resnet*'", "the ResNets only (a shell pattern)"),
    ),
    "summary": (
        ("cnnlab summary lenet5 --explain", "per-layer table and the articles' arithmetic"),
        ("cnnlab summary resnet18 --input 3,64,64 --json", "at another input size, as JSON"),
        ("cnnlab summary mynet.py:build --input 1,28,28", "a model of your own"),
    ),
    "gradcheck": (
        ("cnnlab gradcheck lenet5", "NumPy engine gradients vs finite differences"),
        ("cnnlab gradcheck resnet20 --input 3,16,16 --seed 1", "a smaller input, another seed"),
        ("cnnlab gradcheck conv2d", "one operation"),
    ),
    "data": (
        ("cnnlab data fetch mnist", "download, verify checksums, cache"),
        ("cnnlab data list", "what is cached, and where"),
    ),
    "data fetch": (
        ("cnnlab data fetch mnist", "download MNIST, verify checksums, cache"),
        ("cnnlab data fetch cifar10 --from ~/Downloads/cifar-10-python.tar.gz", "from a file"),
    ),
    "data list": (
        ("cnnlab data list", "the cached datasets and their folder"),
        ("cnnlab data list --json", "the same as JSON"),
    ),
    "show": (
        ("cnnlab show mnist --output digits.png", "a grid of training images"),
        (
            "cnnlab show mnist --augment rotation_range=20,zoom_range=0.1 --output aug.png",
            "augmented versions of each image",
        ),
    ),
    "train": (
        ("cnnlab train lenet5 --data mnist --out runs/lenet5", "the default recipe: 99%"),
        ("cnnlab train --resume runs/lenet5", "continue an interrupted run, bit for bit"),
        ("cnnlab train mynet.py:build --data mnist --out runs/mine", "a model of your own"),
    ),
    "finetune": (
        (
            "cnnlab finetune runs/digits-0-4 --data mnist --classes 5,6,7,8,9 --head-only "
            "--out runs/digits-5-9",
            "a new head for new classes",
        ),
        (
            "cnnlab finetune runs/lenet5 --data photos/ --freeze 2 --out runs/photos",
            "keep the first 2 layers, retrain the rest",
        ),
    ),
    "evaluate": (
        ("cnnlab evaluate runs/lenet5", "loss, accuracy, top-k, per-class metrics, mistakes"),
        ("cnnlab evaluate runs/lenet5 --classes 3,5,8 --json", "only some classes, as JSON"),
        ("cnnlab evaluate runs/lenet5 --tta shift --checkpoint last", "averaged over shifts"),
    ),
    "predict": (
        ("cnnlab predict runs/lenet5 digit.png", "the class of one image"),
        ("cnnlab predict runs/lenet5 photo.jpg --invert --top-k 3", "dark ink on white paper"),
    ),
    "ensemble": (
        ("cnnlab ensemble runs/a runs/b runs/c", "average the probabilities of three runs"),
        ("cnnlab ensemble runs/a runs/b --combine vote --json", "majority vote, as JSON"),
    ),
    "report": (
        ("cnnlab report runs/lenet5 --output report.html", "one self-contained HTML page"),
        ("cnnlab report runs/lenet5 --mistakes 30", "list more mistakes"),
    ),
    "plot": (
        ("cnnlab plot runs/lenet5 --output curves.png", "training and validation curves"),
        ("cnnlab plot runs/lenet5", "to curves.png"),
    ),
    "features": (
        ("cnnlab features runs/lenet5 digit.png", "every layer's feature maps for one image"),
        (
            "cnnlab features runs/lenet5 digit.png --layers conv1 conv2 --output maps.png",
            "two layers only",
        ),
    ),
    "filters": (
        ("cnnlab filters runs/lenet5", "the first layer's kernels"),
        ("cnnlab filters runs/lenet5 --layer conv2 --output conv2.png", "another layer's"),
    ),
    "cam": (
        ("cnnlab cam runs/lenet5 digit.png", "where the network looked (Grad-CAM)"),
        ("cnnlab cam runs/lenet5 digit.png --class 7 --output cam7.png", "for class 7"),
    ),
    "confusion": (
        ("cnnlab confusion runs/lenet5 --output confusion.png", "the test confusion matrix"),
        ("cnnlab confusion runs/lenet5 --normalize", "as shares of each true class"),
    ),
    "export": (
        ("cnnlab export runs/lenet5 --output lenet5.onnx", "a verified ONNX file"),
        ("cnnlab export resnet18 --output r18.onnx --input 3,224,224", "an untrained model"),
    ),
    "recipes": (
        ("cnnlab recipes", "every named recipe, as the train command it amounts to"),
        ("cnnlab recipes mnist-fast", "one recipe: its options, source and measurements"),
        ("cnnlab recipes --json", "all of them as JSON (then: cnnlab train --recipe NAME)"),
    ),
    "explore": (
        ("cnnlab explore runs/lenet5", "a local page: draw a digit, watch every layer"),
        ("cnnlab explore runs/lenet5 --port 8765 --no-browser", "on a fixed port"),
    ),
}


_WIDTH = 96  # characters per line of the examples block


def examples_text(command: str) -> str | None:
    """The ``examples:`` block of ``command``'s help (None: the command has none)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    width = max(len(line) for line, _ in lines)
    aligned = all(width + len(what) <= _WIDTH - 6 for _, what in lines)
    text = ["examples:"]
    for line, what in lines:
        if not what:
            text.append(f"  {line}")
        elif aligned:  # every line fits with its comment beside it
            text.append(f"  {line.ljust(width)}  # {what}")
        else:
            text.append(f"  # {what}\n  {line}")
    return "\n".join(text)
