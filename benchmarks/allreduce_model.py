"""Data-parallel scaling on paper: ring all-reduce time against per-step compute.

For LeNet-5, ResNet-18 and ResNet-50 on 1 to 64 GPUs (8 per machine, so 1 to 8 machines)
and 25, 100 and 400 Gb/s links between machines, the time of one data-parallel training step:

    step = compute / W + all-reduce          (cnnlab's --batch-size is the global batch)
    all-reduce = 2 (W - 1) / W * gradient bytes / bandwidth  +  2 (W - 1) * latency * buckets

The first term of the all-reduce is the ring algorithm's bandwidth cost (each rank sends and
receives 2 (W - 1) / W of the gradients; across machines, each machine's link carries that
much); the second its 2 (W - 1) sequential hops, once per DDP gradient bucket (25 MB). Gradient
bytes are the model's trainable parameters (``cnnlab.analysis.summary``) x 4: DDP all-reduces
float32 gradients, also under autocast. Within one machine the ring runs over the machine's own
fabric (NVLink, PCIe, or shared memory for CPU processes: each case names it).

Per-step compute is measured here where we measure it (LeNet-5, one cnnlab training step on
this CPU) and published elsewhere (ResNets on GPUs, cited in ``PUBLISHED``); each row says which.
Also computed: weak scaling (the per-GPU batch fixed, the global batch growing with W) and, for
both, DDP's overlap of the all-reduce with the backward pass (about 2/3 of the compute).

Prints one JSON document (``--format markdown``: the tables of docs/distributed.md).

    python benchmarks/allreduce_model.py [--format json|markdown] [--lenet-ms MS]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import asdict, dataclass

import torch

from cnnlab.analysis import summary
from cnnlab.models import create_model
from cnnlab.training.config import TrainConfig
from cnnlab.training.engine import TorchEngine

GPUS = (1, 2, 4, 8, 16, 32, 64)
GPUS_PER_MACHINE = 8
LINKS_GBIT = (25, 100, 400)  # between machines, per machine, each direction
NETWORK_LATENCY_S = 10e-6  # per ring hop between machines: an assumption (docs/distributed.md)


@dataclass(frozen=True)
class Fabric:
    """How the devices of one machine reach each other (nominal, per direction)."""

    name: str
    gbit: float
    latency_s: float


NVLINK = Fabric("NVLink 3 (A100 SXM4: 300 GB/s per direction, nominal)", 2400, 5e-6)
PCIE3 = Fabric("PCIe 3.0 x16 (16 GB/s per direction, nominal)", 128, 5e-6)
SHARED_MEMORY = Fabric("CPU processes, gloo over loopback (10 GB/s assumed)", 80, 10e-6)
BUCKET_BYTES = 25 * 2**20  # DDP's default bucket_cap_mb=25
BACKWARD_SHARE = 2 / 3  # of a step's compute: what DDP can overlap the all-reduce with


@dataclass(frozen=True)
class Compute:
    """Per-step compute of one model on one device (at ``batch`` images per step)."""

    model: str
    device: str
    precision: str
    ms_per_image: float
    batch: int  # the per-device batch the number was taken at (weak scaling keeps it)
    global_batch: int  # strong scaling: the --batch-size split over W devices
    source: str  # "measured" or "published"
    citation: str
    fabric: Fabric  # within one machine


PUBLISHED = (
    Compute(
        "resnet18", "NVIDIA TITAN RTX", "fp32", 1.02, 128, 256, "published",
        "github.com/cgnorthcutt/cnn-gpu-benchmarks, README: ImageNet, batch 128, "
        "SECOND-BATCH-TIME 1.02 ms/image (PyTorch, data loading included)", PCIE3,
    ),
    Compute(
        "resnet50", "NVIDIA TITAN RTX", "fp32", 3.52, 64, 256, "published",
        "github.com/cgnorthcutt/cnn-gpu-benchmarks, README: ImageNet, batch 64, "
        "SECOND-BATCH-TIME 3.52 ms/image", PCIE3,
    ),
    Compute(
        "resnet50", "NVIDIA A100 80GB", "AMP (fp16)", 1000 / 2470, 256, 256, "published",
        "github.com/NVIDIA/DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/"
        "README.md: DGX A100, 1 GPU, mixed precision 2470 img/s; configs.yml: batch 256", NVLINK,
    ),
)  # fmt: skip


def measure_lenet5_ms_per_image(batch: int = 128, steps: int = 30) -> float:
    """The fastest of ``steps`` cnnlab training steps (forward, loss, backward, Adam,
    schedule) of LeNet-5 on a batch of 32x32 images on this CPU, per image; the minimum
    because other processes only ever slow a step down."""
    torch.manual_seed(0)
    config = TrainConfig(batch_size=batch)
    engine = TorchEngine(create_model("lenet5"), config, torch.device("cpu"), steps + 5)
    x, y = torch.randn(batch, 1, 32, 32), torch.randint(0, 10, (batch,))
    engine.train()
    times = []
    for i in range(steps + 5):
        started = time.perf_counter()
        engine.forward_loss(x, y)
        engine.step()
        if i >= 5:  # warm-up
            times.append(time.perf_counter() - started)
    return min(times) * 1000 / batch


def gradient_bytes(model: str) -> int:
    """float32 gradients of the trainable parameters."""
    return summary(model).trainable_params * 4


def allreduce_seconds(nbytes: int, gpus: int, link_gbit: float, fabric: Fabric) -> dict:
    """Ring all-reduce of ``nbytes`` over ``gpus`` ranks, 8 per machine: bandwidth and
    latency terms (the machine's fabric within one machine, the link between machines)."""
    if gpus == 1:
        return {"bandwidth": 0.0, "latency": 0.0, "total": 0.0, "over": "none"}
    inside = gpus <= GPUS_PER_MACHINE
    gbit, hop = (fabric.gbit, fabric.latency_s) if inside else (link_gbit, NETWORK_LATENCY_S)
    bandwidth = 2 * (gpus - 1) / gpus * nbytes / (gbit * 1e9 / 8)
    latency = 2 * (gpus - 1) * hop * math.ceil(nbytes / BUCKET_BYTES)
    over = "fabric" if inside else "network"
    return {"bandwidth": bandwidth, "latency": latency, "total": bandwidth + latency, "over": over}


def step_seconds(compute: float, comm: float, overlap: bool) -> float:
    """One step: compute then all-reduce, or the all-reduce hidden behind the backward pass
    as far as it goes (DDP's buckets start as their gradients are ready)."""
    if not overlap:
        return compute + comm
    return max(compute, compute * (1 - BACKWARD_SHARE) + comm)


def scaling_rows(case: Compute, nbytes: int) -> list[dict]:
    """Every GPU count x link for one compute case."""
    strong_one = case.ms_per_image * case.global_batch / 1000  # one GPU, the global batch
    weak_one = case.ms_per_image * case.batch / 1000  # one GPU, its own batch
    rows = []
    for gpus in GPUS:
        for link in LINKS_GBIT:
            comm = allreduce_seconds(nbytes, gpus, link, case.fabric)
            strong_compute = strong_one / gpus
            row = {
                "gpus": gpus,
                "machines": math.ceil(gpus / GPUS_PER_MACHINE),
                "link_gbit": link,
                "allreduce_over": comm["over"],
                "allreduce_ms": comm["total"] * 1000,
                "allreduce_latency_ms": comm["latency"] * 1000,
                "strong": {
                    "global_batch": case.global_batch,
                    "per_gpu_batch": case.global_batch / gpus,
                    "compute_ms": strong_compute * 1000,
                },
                "weak": {"per_gpu_batch": case.batch, "compute_ms": weak_one * 1000},
            }
            for overlap in (False, True):
                key = "overlap" if overlap else "no_overlap"
                strong = step_seconds(strong_compute, comm["total"], overlap)
                weak = step_seconds(weak_one, comm["total"], overlap)
                row["strong"][f"speedup_{key}"] = strong_one / strong
                row["weak"][f"speedup_{key}"] = gpus * weak_one / weak
            rows.append(row)
    return rows


def where_it_stops(case: Compute, nbytes: int, rows: list[dict]) -> dict[str, dict]:
    """Per link: the GPU count of the best strong-scaling speed-up (no overlap), that
    speed-up, its ceiling for W -> infinity across machines (compute over the all-reduce's
    limit 2 x bytes / bandwidth), and the first GPU count whose weak-scaling efficiency falls
    below 50%."""
    strong_one = case.ms_per_image * case.global_batch / 1000
    out = {}
    for link in LINKS_GBIT:
        mine = [r for r in rows if r["link_gbit"] == link]
        best = max(mine, key=lambda r: r["strong"]["speedup_no_overlap"])
        below_half = [r["gpus"] for r in mine if r["weak"]["speedup_no_overlap"] < 0.5 * r["gpus"]]
        out[str(link)] = {
            "best_strong_gpus": best["gpus"],
            "best_strong_speedup": best["strong"]["speedup_no_overlap"],
            "strong_ceiling": strong_one / (2 * nbytes / (link * 1e9 / 8)),
            "weak_efficiency_below_half_at_gpus": below_half[0] if below_half else None,
        }
    return out


def build(lenet_ms: float | None) -> dict:
    measured = lenet_ms if lenet_ms is not None else measure_lenet5_ms_per_image()
    how = (
        "benchmarks/allreduce_model.py: fastest of 30 cnnlab training steps, batch 128, 32x32, Adam"
        if lenet_ms is None
        else "--lenet-ms: a measurement made elsewhere (docs/distributed.md says which)"
    )
    device = f"this CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    lenet = Compute("lenet5", device, "fp32", measured, 128, 128, "measured", how, SHARED_MEMORY)
    cases = []
    for case in (lenet, *PUBLISHED):
        nbytes = gradient_bytes(case.model)
        rows = scaling_rows(case, nbytes)
        cases.append(
            {
                **asdict(case),
                "params": summary(case.model).trainable_params,
                "gradient_bytes": nbytes,
                "rows": rows,
                "where_it_stops": where_it_stops(case, nbytes, rows),
            }
        )
    return {
        "benchmark": "allreduce_model",
        "formula": "step = compute/W + 2(W-1)/W * bytes/bandwidth + 2(W-1) * latency * buckets",
        "gpus_per_machine": GPUS_PER_MACHINE,
        "links_gbit": list(LINKS_GBIT),
        "network_latency_s": NETWORK_LATENCY_S,
        "bucket_bytes": BUCKET_BYTES,
        "backward_share": BACKWARD_SHARE,
        "torch": torch.__version__,
        "cases": cases,
    }


def markdown(report: dict) -> str:
    """One table per compute case: strong-scaling speed-ups per link, then the summary."""
    lines = []
    for case in report["cases"]:
        mb = case["gradient_bytes"] / 1e6
        one_gpu = case["ms_per_image"] * case["global_batch"]
        lines += [
            f"**{case['model']}**, {case['params']:,} parameters = {mb:.3g} MB of gradients; "
            f"compute {case['ms_per_image']:.3g} ms/image on {case['device']}, "
            f"{case['precision']} (**{case['source']}**: {case['citation']}). "
            f"Global batch {case['global_batch']}: {one_gpu:.4g} ms per step on one device. "
            f"Within a machine: {case['fabric']['name']}.",
            "",
            "| devices (machines) | compute/device | all-reduce 25 / 100 / 400 Gb/s "
            "| speed-up 25 / 100 / 400 Gb/s | weak-scaling efficiency 25 / 100 / 400 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for gpus in GPUS:
            rows = [r for r in case["rows"] if r["gpus"] == gpus]
            comm = " / ".join(f"{r['allreduce_ms']:.3g}" for r in rows)
            if rows[0]["allreduce_over"] == "fabric":
                comm = f"{rows[0]['allreduce_ms']:.3g} (in the machine)"
            speed = " / ".join(f"{r['strong']['speedup_no_overlap']:.2f}x" for r in rows)
            weak = " / ".join(f"{r['weak']['speedup_no_overlap'] / gpus:.0%}" for r in rows)
            lines.append(
                f"| {gpus} ({rows[0]['machines']}) | {rows[0]['strong']['compute_ms']:.3g} ms "
                f"| {comm} ms | {speed} | {weak} |"
            )
        stops = case["where_it_stops"]
        lines += [
            "",
            "Best strong-scaling speed-up (devices): "
            + ", ".join(
                f"{s['best_strong_speedup']:.2f}x ({s['best_strong_gpus']}) at {link} Gb/s"
                for link, s in stops.items()
            )
            + "; bandwidth ceiling across machines (compute / (2 x bytes / bandwidth)): "
            + " / ".join(f"{s['strong_ceiling']:.3g}x" for s in stops.values())
            + ".",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("json", "markdown"), default="json")
    parser.add_argument(
        "--lenet-ms",
        type=float,
        help="LeNet-5 ms per image to use instead of measuring (to reproduce a table exactly)",
    )
    args = parser.parse_args()
    report = build(args.lenet_ms)
    print(markdown(report) if args.format == "markdown" else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
