"""Training throughput and peak memory of one model at one input size.

    python benchmarks/train_speed.py --model sam2ms_hiera_l --size 1024 --batch 2 --amp bf16 --steps 200

Runs real optimizer steps (AdamW, the full SAM2MS loss without the lossnet unless
--lossnet-weights is given) on synthetic road scenes and prints a JSON line with steps/s,
images/s and peak memory (CUDA allocator peak on a GPU, process peak RSS on the CPU). Append the
result, with device and date, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from datetime import date

import numpy as np
import torch

from sam2ms.data.synth import render_road_scene
from sam2ms.losses import SAM2MSLoss, build_lossnet
from sam2ms.models import create_model
from sam2ms.preprocess import normalize
from sam2ms.train.trainer import AMP_DTYPES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sam2ms_nano")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--amp", default="none", choices=sorted(AMP_DTYPES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--lossnet-weights", default=None)
    args = p.parse_args()

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model(args.model).to(dev).train()
    lossnet = build_lossnet("resnet50", args.lossnet_weights) if args.lossnet_weights else None
    criterion = SAM2MSLoss(lossnet).to(dev)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=args.amp == "fp16")
    scenes = [render_road_scene(args.size, args.size, np.random.default_rng(i)) for i in range(args.batch)]
    x = torch.from_numpy(np.stack([normalize(img) for img, _ in scenes])).to(dev)
    y = torch.from_numpy(np.stack([m for _, m in scenes])[:, None].astype(np.float32)).to(dev)
    dtype = AMP_DTYPES[args.amp]

    def step() -> float:
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
        loss, _ = criterion(logits, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated()
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "device": (
                    torch.cuda.get_device_name()
                    if dev.type == "cuda"
                    else f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
                ),
                "torch": torch.__version__,
                "model": args.model,
                "size": args.size,
                "batch": args.batch,
                "amp": args.amp,
                "steps": args.steps,
                "steps_per_s": args.steps / seconds,
                "images_per_s": args.steps * args.batch / seconds,
                "peak_memory_gib": peak / 2**30,
                "peak_memory_kind": "cuda allocator" if dev.type == "cuda" else "process RSS",
                "loss_first_last": [losses[0], losses[-1]],
            }
        )
    )


if __name__ == "__main__":
    main()
