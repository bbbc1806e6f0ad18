"""The GPU suite of ``sam2ms bench``: the PyTorch engine of SAM2MS-T and -L at 1024² on a GPU.

    python benchmarks/gpu_suite.py --out /tmp/gpu_suite [--plan deploy/engine.plan] [--torch LIST]

For ``sam2ms_hiera_t`` and ``sam2ms_hiera_l`` (random weights: sizes and speed do not depend on
them), eager against captured (issue 26): eager FP32 (the reference), BF16 autocast eager, BF16
replayed from CUDA graphs, the same in channels-last memory, and ``torch.compile``'s
reduce-overhead mode (its own CUDA graphs), at batches 1 and 4, with latency percentiles,
throughput, the H2D/compute/D2H split, peak device memory and MFU, in one run per model.
``--plan`` adds a TensorRT plan of the same model and tile (where TensorRT is installed).
Writes ``bench-<model>.json/.md/.png`` under --out and prints the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sam2ms.bench.options import BenchOptions
from sam2ms.bench.report import save_report
from sam2ms.bench.runner import run_bench
from sam2ms.errors import UsageError
from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint

MODELS = ("sam2ms_hiera_t", "sam2ms_hiera_l")
VARIANTS = ("fp32", "bf16", "bf16+graph", "bf16+graph+cl", "bf16+reduce-overhead")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--batch", default="1,4")
    p.add_argument("--torch", default=",".join(VARIANTS), help="PyTorch variants (sam2ms bench --torch)")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--plan", type=Path, action="append", default=[], help="TensorRT plan(s) to add (per model)")
    p.add_argument("--only", choices=MODELS)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_suite.py needs a CUDA GPU visible to torch")
    for name in MODELS:
        if args.only and name != args.only:
            continue
        torch.manual_seed(0)
        ckpt = save_checkpoint(args.out / name / "random.pt", create_model(name), image_size=args.tile, epoch=0, step=0)
        plans = [plan for plan in args.plan if name in plan.name]
        try:
            report = run_bench(
                BenchOptions(
                    models=[ckpt, *plans],
                    batches=[int(b) for b in args.batch.split(",")],
                    iterations=args.iterations,
                    warmup=3,
                    reference=ckpt,
                    torch_variants=args.torch.split(","),
                    accuracy_tiles=2,
                )
            )
        except UsageError as exc:
            raise SystemExit(str(exc)) from None
        table = save_report(report, stem=args.out / f"bench-{name}")
        print(f"## {name} @ {args.tile}² on {report['rows'][0]['device']}\n\n{table}")


if __name__ == "__main__":
    main()
