"""What guarding against hostile files costs, and what it saves: prints one JSON document.

- ``mnist_hash_seconds``: checking the cached MNIST files by content (SHA-256 of 55 MB, what
  every load of ``mnist`` now does); skipped when MNIST is not in the cache
  (``cnnlab data fetch mnist``).
- ``sparse_refusal_seconds``: refusing a 64 GB sparse ``.safetensors`` file (huge declared
  header; and a valid header declaring 64 GB of tensors).
- ``decode``: seconds, and how far the process's peak memory rose (MB; a lower bound of what
  decoding allocated, since memory the imports freed is reused), of decoding a 9000x9000 image
  into a 28x28 input, or refusing it, each in a fresh process (a 28x28 PNG for comparison).
- ``checkpoint_load_seconds``: loading a checkpoint of a ResNet-sized model (about 45 MB of
  weights) with its SHA-256 check, and the same file without the recorded hash.

Usage: ``python benchmarks/hostile_files.py`` (a quiet machine gives steadier numbers).
"""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DECODE = """
import resource, sys, time
from cnnlab.data.images import load_image
from cnnlab.errors import DataError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_image(sys.argv[1], 1, (28, 28), max_megapixels=float(sys.argv[2]))
    outcome = "decoded"
except DataError:
    outcome = "refused"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome, seconds, (peak - before) / 1024)
"""


def best_of(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def mnist_hash() -> float | None:
    from cnnlab.data.datasets import MNIST, default_cache_dir
    from cnnlab.data.sources import check_cached

    folder = Path(default_cache_dir()) / "mnist"
    if not all((folder / f.name).is_file() for f in MNIST.files):
        return None
    assert check_cached(folder, MNIST.files) == []
    return round(best_of(lambda: check_cached(folder, MNIST.files)), 3)


def sparse_refusals(folder: Path) -> dict[str, float]:
    from cnnlab.errors import CheckpointError
    from cnnlab.training.checkpoint import load_checkpoint

    size = 64 * 2**30
    header = folder / "huge-header.safetensors"
    with header.open("wb") as handle:
        handle.write(struct.pack("<Q", 2**40))
        handle.truncate(size)
    entry = {"model.w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}
    document = json.dumps({"format": "cnnlab-checkpoint", "version": 1, "meta": {}, "training": {}})
    text = json.dumps({**entry, "__metadata__": {"cnnlab": document}}).encode()
    tensor = folder / "huge-tensor.safetensors"
    with tensor.open("wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        handle.truncate(8 + len(text) + size)

    def refuse(path: Path) -> None:
        try:
            load_checkpoint(path)
        except CheckpointError:
            return
        raise AssertionError(f"{path} was accepted")

    return {
        "huge_header": round(best_of(lambda: refuse(header)), 4),
        "huge_tensor": round(best_of(lambda: refuse(tensor)), 4),
    }


def decode(folder: Path) -> dict[str, dict[str, object]]:
    from PIL import Image

    png, jpeg, small = folder / "big.png", folder / "big.jpg", folder / "small.png"
    Image.new("L", (9000, 9000), 30).save(png)
    Image.new("RGB", (9000, 9000), (200, 30, 30)).save(jpeg, quality=90)
    Image.new("L", (28, 28), 30).save(small)
    out = {}
    for name, path, budget in (
        ("png_28_baseline", small, 40),
        ("png_9000_refused", png, 40),
        ("png_9000_allowed", png, 100),
        ("jpeg_9000_draft", jpeg, 40),
    ):
        result = subprocess.run(
            [sys.executable, "-c", DECODE, str(path), str(budget)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        outcome, seconds, added = result.stdout.split()
        out[name] = {
            "outcome": outcome,
            "file_kb": round(path.stat().st_size / 1024),
            "seconds": round(float(seconds), 3),
            "peak_mb_added": round(float(added)),
        }
    return out


def checkpoint_load(folder: Path) -> dict[str, float]:
    import torch

    from cnnlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    state = {f"layer{i}.weight": torch.randn(512, 512, 3, 3) for i in range(5)}  # ~47 MB
    path = folder / "big.safetensors"
    save_checkpoint(path, Checkpoint(state, {}))
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    document = json.loads(header["__metadata__"]["cnnlab"])
    del document["tensor_sha256"]
    header["__metadata__"]["cnnlab"] = json.dumps(document)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    old = folder / "old.safetensors"
    old.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])
    return {
        "megabytes": round(len(raw) / 2**20, 1),
        "with_sha256": round(best_of(lambda: load_checkpoint(path)), 3),
        "without_sha256": round(best_of(lambda: load_checkpoint(old)), 3),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cnnlab-hostile-") as tmp:
        folder = Path(tmp)
        result = {
            "mnist_hash_seconds": mnist_hash(),
            "sparse_refusal_seconds": sparse_refusals(folder),
            "decode": decode(folder),
            "checkpoint_load_seconds": checkpoint_load(folder),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
