"""The Triton lane's overhead: ``sam2ms-infer --triton`` against the local ONNX Runtime lane, same model,
tile and batch, in one run.

    python benchmarks/triton_bench.py --model demo_run/export/model.onnx [--batch 4] [--requests 40] [--rounds 3]

Serves the model with nvidia-pytriton's tritonserver (its Python backend runs the same ONNX Runtime
session; ``make triton-venv``, tools/triton_server.py), then times one lane of each backend — local
ONNX Runtime, Triton over HTTP, Triton over gRPC — on the same batch of synthetic windows, in
interleaved rounds so that the host's drift falls on all three alike; checks that the logits are
equal; prints one JSON object: tiles/s and p50/p99 per request of each, and each remote lane's
ratio to the local one and its added milliseconds per request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.accuracy import parity_tiles
from sam2ms.preprocess import model_input
from sam2ms.runtime.backends import BackendOptions, Lane, open_model
from sam2ms.runtime.backends.base import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from triton_server import serve


def _time(lane: Lane, batch: np.ndarray, requests: int) -> list[float]:
    seconds = []
    for _ in range(requests):
        t0 = time.perf_counter()
        lane.infer(batch)
        seconds.append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="An exported model.onnx with its sidecar.")
    p.add_argument("--batch", type=int, default=4, help="Windows per request (the demo's: 4).")
    p.add_argument("--requests", type=int, default=40, help="Requests per lane and round.")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    tile = int(json.loads(Path(f"{args.model}.json").read_text())["tile"])
    with serve(args.model.resolve(), "sam2ms") as server:
        lanes: dict[str, Any] = {
            "onnxruntime (local)": open_model(args.model, "onnxruntime"),
            "triton http": open_model(args.model, "auto", BackendOptions(triton_url=server.http)),
            "triton grpc": open_model(args.model, "auto", BackendOptions(triton_url=server.grpc)),
        }
        try:
            info = lanes["onnxruntime (local)"].info
            batch = model_input(parity_tiles(tile, args.batch, seed=3), info.input_format)
            outputs = {name: backend.lanes(1)[0].infer(batch) for name, backend in lanes.items()}  # warm-up
            reference = outputs["onnxruntime (local)"]
            same = {name: bool(np.array_equal(out, reference)) for name, out in outputs.items()}
            seconds: dict[str, list[float]] = {name: [] for name in lanes}
            for _ in range(args.rounds):
                for name, backend in lanes.items():
                    seconds[name] += _time(backend.lanes(1)[0], batch, args.requests)
        finally:
            for backend in lanes.values():
                backend.close()
    rows = {}
    for name, times in seconds.items():
        ms = np.array(times) * 1e3
        rows[name] = {
            "tiles_per_s": round(args.batch * len(times) / sum(times), 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "logits_equal_local": same[name],
        }
    local = rows["onnxruntime (local)"]
    for row in rows.values():
        row["throughput_vs_local"] = round(row["tiles_per_s"] / local["tiles_per_s"], 3)
        row["added_p50_ms"] = round(row["p50_ms"] - local["p50_ms"], 2)
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "model": str(args.model),
                "tile": tile,
                "batch": args.batch,
                "requests": args.requests * args.rounds,
                "server": "nvidia-pytriton 0.7.0 (tritonserver 2.51, Python backend running ONNX Runtime), same host",
                "lanes": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
