"""torch eager against onnxruntime on the exported graph, in one process; prints one JSON
document.

    .venv/bin/python benchmarks/onnx_latency.py [--threads N] [--rounds 5]
        [--latency-calls 200] [--batch 256]

For LeNet-5 (1x32x32) and ResNet-18 (3x64x64, 10 classes): each model is exported with
``cnnlab.export.export_onnx`` (verified against torch, as ``cnnlab export`` does), then

* latency: one image at a time (batch 1), ``--latency-calls`` calls per round, median and
  90th percentile of the single calls in milliseconds;
* throughput: batches of ``--batch`` images, images per second, best (least disturbed) round.

torch runs the very module that was exported (padding and normalisation included) under
``torch.inference_mode()``; onnxruntime runs the ``.onnx`` file on its CPU provider with
``intra_op_num_threads`` equal to torch's thread count (``--threads``, default torch's). Rounds
alternate between the two so that machine load hits both alike; each round opens its own
onnxruntime session and closes it before torch runs again, because onnxruntime's worker
threads keep spinning between calls and, in the same process, starve torch's OpenMP threads
(measured: LeNet-5 at batch 1 on 2 threads took 76 ms per call in torch with a session open,
0.64 ms without). The 1-minute load average
before and after, the CPU model and the versions are part of the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cnnlab.export.exporter import export_onnx
from cnnlab.export.graph import PixelClassifier
from cnnlab.export.source import resolve_source
from machine import cpu_name

MODELS = (("lenet5", (1, 32, 32)), ("resnet18", (3, 64, 64)))


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _call_times(fn, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _measure(name: str, shape: tuple[int, int, int], args: argparse.Namespace, folder: Path):
    path = folder / f"{name}.onnx"
    torch.manual_seed(0)  # the same seed builds the same weights for both
    report = export_onnx(name, path, input_shape=shape, num_classes=10, images=2)
    torch.manual_seed(0)
    source = resolve_source(name, input_shape=shape, num_classes=10)
    module = PixelClassifier(source.model, source.preprocessing).eval()
    generator = torch.Generator().manual_seed(0)
    one = torch.rand(1, *shape, generator=generator)
    batch = torch.rand(args.batch, *shape, generator=generator)
    one_np, batch_np = one.numpy(), batch.numpy()

    def torch_run(x: torch.Tensor):
        with torch.inference_mode():
            return module(x)

    latency: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    throughput: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    for _ in range(args.rounds):
        for _ in range(5):  # warm-up: first calls allocate and pick kernels
            torch_run(one)
        torch_run(batch)
        latency["torch"] += _call_times(lambda: torch_run(one), args.latency_calls)
        throughput["torch"].append(args.batch / _call_times(lambda: torch_run(batch), 1)[0])
        # a session per round, closed before torch runs again: onnxruntime's worker threads
        # spin between calls and would take the cores torch's OpenMP threads wait for
        session = _session(path, args.threads)
        for _ in range(5):
            session.run(["logits"], {"pixels": one_np})
        session.run(["logits"], {"pixels": batch_np})
        latency["onnxruntime"] += _call_times(
            lambda s=session: s.run(["logits"], {"pixels": one_np}), args.latency_calls
        )
        throughput["onnxruntime"].append(
            args.batch
            / _call_times(lambda s=session: s.run(["logits"], {"pixels": batch_np}), 1)[0]
        )
        (ort_logits,) = session.run(["logits"], {"pixels": batch_np})
        del session
    same = np.abs(torch_run(batch).numpy() - ort_logits).max()  # same weights, same graph
    result = {
        "input": list(shape),
        "torch_vs_onnxruntime_max_abs_diff": float(same),
        "onnx_bytes": report.bytes,
        "export_max_abs_diff": report.verification.max_abs_diff,
    }
    for runtime in ("torch", "onnxruntime"):
        ms = [t * 1000 for t in latency[runtime]]
        result[runtime] = {
            "batch1_latency_ms_median": statistics.median(ms),
            "batch1_latency_ms_p90": float(np.percentile(ms, 90)),
            f"batch{args.batch}_images_per_s_best": max(throughput[runtime]),
            f"batch{args.batch}_images_per_s_median": statistics.median(throughput[runtime]),
        }
    t, o = result["torch"], result["onnxruntime"]
    result["onnxruntime_speedup"] = {
        "batch1_latency": t["batch1_latency_ms_median"] / o["batch1_latency_ms_median"],
        f"batch{args.batch}_throughput": o[f"batch{args.batch}_images_per_s_best"]
        / t[f"batch{args.batch}_images_per_s_best"],
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-calls", dest="latency_calls", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        models = {name: _measure(name, shape, args, Path(folder)) for name, shape in MODELS}
    document = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "threads": args.threads,
        "rounds": args.rounds,
        "latency_calls_per_round": args.latency_calls,
        "batch": args.batch,
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "models": models,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
