"""Road graphs in numbers: APLS and TOPO of FP32 / FP16 / INT8 next to F1 and mIoU, and graph
extraction time and memory against scene size.

    python benchmarks/graph_bench.py --export demo_run/export --data demo_run/data [--sizes 2048,4096,8192]

1. Every ONNX model in --export on the held-out split of --data (the paper's seeded 7:3 split, as
   the demo trains): F1 and mIoU against the labels, APLS and TOPO of each prediction's road graph
   against its label's graph, and of the FP16/INT8 graphs against FP32's (one pixel = one metre).
2. Extraction on synthetic label masks (boundary style, roads 2x the training scale) of growing
   size, the whole mask at once and by blocks: seconds, graph size, and tracemalloc's peak of the
   extraction itself (from a second run: tracing slows it down).

Prints one JSON object; copy the figures, with device and date, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.data.dataset import load_sample
from sam2ms.data.layouts import discover, paper_split
from sam2ms.data.synth import render_scene
from sam2ms.metrics import RoadMetrics
from sam2ms.roads.extract import BLOCK, mask_to_graph, raster_to_graph
from sam2ms.roads.score import tile_scores
from sam2ms.runtime.probabilities import onnxruntime_probabilities


def precisions(export: Path, data: Path) -> dict:
    _, test = paper_split(discover(data, "folder"), seed=0)
    loaded = [load_sample(s) for s in test]
    images = np.stack([img for img, _ in loaded])
    labels = np.stack([lbl for _, lbl in loaded]).astype(np.float32)
    out, p32 = {}, None
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx"):
        if not (export / name).is_file():
            continue
        t0 = time.perf_counter()
        probs = onnxruntime_probabilities(export / name, images, batch=4)[:, 0]
        acc = RoadMetrics()
        acc.update_batch(probs, labels >= 0.5)
        m = acc.compute()
        row = {
            "images": len(images),
            "f1": m["f1"],
            "miou": m["miou"],
            **{f"{k}_vs_label": v for k, v in tile_scores(labels, probs).items()},
        }
        if p32 is None:
            p32 = probs
        else:
            row.update({f"{k}_vs_fp32": v for k, v in tile_scores(p32, probs).items()})
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = row
    return out


def _peak_traced(run: Callable[[], object]) -> float:
    """Peak Python/numpy allocation of ``run`` in MiB (a traced run: tracing slows Python down)."""
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def texture_mask(size: int, seed: int = 1) -> np.ndarray:
    """What a poorly matched radiometry or an undertrained model gives: a speckle of tens of
    thousands of small components (smoothed noise over a threshold: 39 342 at 2048²).
    """
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 1.2)
    return noise > 0.5 * noise.std()


def extraction(sizes: list[int], kinds: list[str]) -> list[dict]:
    """The whole mask at once (``mask_to_graph``) against the scene path, by blocks of
    ``BLOCK`` pixels with a halo (``raster_to_graph``); time and peak memory beyond the mask; for
    road masks (``road``) and speckled ones (``texture``), whose cost must follow the roads.
    """
    from scipy.ndimage import label as components

    rows = []
    for size, kind in ((size, kind) for kind in kinds for size in sizes):
        if kind == "road":
            label = render_scene(size, size, np.random.default_rng(1), style="boundary", scale=2.0).label
        else:
            label = texture_mask(size)

        def blocks(label: np.ndarray = label) -> Any:
            return raster_to_graph(lambda r, c, h, w: label[r : r + h, c : c + w], *label.shape)

        row: dict[str, Any] = {
            "scene": size,
            "mask": kind,
            "road_pixels": int(label.sum()),
            "components": int(components(label, np.ones((3, 3), bool))[1]),
        }
        for name, run in (("whole", lambda label=label: mask_to_graph(label)), (f"blocks_{BLOCK}", blocks)):
            t0 = time.perf_counter()
            graph = run()
            row[name] = {
                "nodes": graph.number_of_nodes(),
                "edges": graph.number_of_edges(),
                "seconds": round(time.perf_counter() - t0, 2),
                "peak_traced_mib": _peak_traced(run),
            }
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", type=Path)
    p.add_argument("--data", type=Path)
    p.add_argument("--sizes", default="2048,4096,8192")
    p.add_argument("--kinds", default="road,texture", help="masks to extract from: road, texture")
    p.add_argument("--extraction-only", action="store_true", help="skip the models' APLS/TOPO rows")
    args = p.parse_args()
    if not args.extraction_only and (args.export is None or args.data is None):
        p.error("--export and --data are needed for the models' rows (or pass --extraction-only)")
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "device": f"CPU {platform.machine()}",
                "precisions": {} if args.extraction_only else precisions(args.export, args.data),
                "extraction": extraction([int(s) for s in args.sizes.split(",")], args.kinds.split(",")),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
