"""The ``infer`` command, shared by ``sam2ms infer`` and the ``sam2ms-infer`` alias. Imports no torch
(unless ``--backend torch`` or ``--check-against`` asks for the PyTorch reference).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from sam2ms.errors import CheckFailed, Sam2msError, UsageError
from sam2ms.geo.inputs import names_one_raster
from sam2ms.geo.raster_options import BANDS, PERCENTILES, SCALE, STATS, STRETCH, radiometry_from

from .blocks import DEFAULT_BLOCK


def infer_command(
    model: Path = typer.Argument(
        ..., metavar="MODEL", help="engine.plan (with its .json sidecar), model.onnx, or a .pt checkpoint."
    ),
    source: str = typer.Argument(
        ...,
        metavar="INPUT",
        help="An image/scene or a folder of them (PNG, JPEG, TIFF, "
        "GeoTIFF, VRT mosaic); a GDAL path or URL (/vsis3/, "
        "s3://, gs://, https://); @list.txt; or a STAC "
        "Item/ItemCollection .json.",
    ),
    stac_asset: str | None = typer.Option(
        None, "--stac-asset", help="The asset of each STAC item to read (default: the item's only raster asset)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (mirrors INPUT's sub-folders)."),
    tile: int | None = typer.Option(None, help="Tile size; must match the model's (default: from the sidecar)."),
    overlap: int | None = typer.Option(
        None, help="Overlap between windows in pixels, blended with a cosine ramp (default: tile/8)."
    ),
    batch: int = typer.Option(4, help="Windows per batch (across files)."),
    streams: int = typer.Option(1, help="Concurrent lanes (CUDA streams + execution contexts for TensorRT)."),
    workers: int = typer.Option(2, help="Decode/preprocess threads."),
    threshold: float = typer.Option(0.5, help="Probability threshold for the binary mask."),
    fmt: str = typer.Option(
        "png",
        "--format",
        help="png | tif (Cloud-Optimized GeoTIFF keeping CRS, transform "
        "and the nodata mask; needs [geo]); geojson | graphml: short "
        "for png --graph geojson|graphml.",
    ),
    graph: str | None = typer.Option(
        None,
        "--graph",
        help="Also write each scene's road graph: geojson | "
        "graphml (in the input's CRS; with --format tif "
        "read back from the COG by blocks). Needs [geo].",
    ),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write uint8 probability maps."),
    backend: str = typer.Option(
        "auto",
        help="auto | tensorrt | onnxruntime | openvino | torch (auto: by the file; "
        "an FP32/FP16 .onnx runs on OpenVINO on x86-64 CPUs where it is "
        "installed, and any .onnx with --precision bf16; INT8 files and "
        "--providers cuda|tensorrt on ONNX Runtime)",
    ),
    precision: str = typer.Option(
        "fp32",
        help="OpenVINO: fp32 | bf16 (BF16 needs native support and a passed "
        "accuracy gate); a .pt checkpoint: fp32 | fp16 | bf16 autocast.",
    ),
    device: str = typer.Option("CPU", help="OpenVINO device: CPU | GPU | NPU."),
    providers: str | None = typer.Option(None, help="ONNX Runtime providers, e.g. cuda,cpu (default cpu)."),
    threads: int | None = typer.Option(
        None, help="ONNX Runtime / OpenVINO / PyTorch CPU threads (default: all cores)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Skip inputs whose outputs already exist."),
    check_against: Path | None = typer.Option(None, help="PyTorch checkpoint to compare the model with."),
    check_tiles: int = typer.Option(8, help="Tiles for --check-against."),
    bands: str | None = BANDS,
    stretch: str | None = STRETCH,
    percentiles: str | None = PERCENTILES,
    scale: str | None = SCALE,
    stats: Path | None = STATS,
    cuda_graph: bool = typer.Option(
        False,
        "--cuda-graph",
        help="TensorRT: capture each batch size's execution once into a CUDA graph and replay it.",
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Run on Ray Data ([ray]): 'local' starts Ray on this machine, 'auto' "
        "joins the cluster it belongs to, or ray://HOST:10001.",
    ),
    block: int = typer.Option(
        DEFAULT_BLOCK,
        help="With --ray: scenes larger than this many pixels a side are cut into blocks of it (the unit of work).",
    ),
    ray_actors: int | None = typer.Option(
        None, help="With --ray: model actors (default: autoscale from 1 to the cluster's GPUs, or CPU slots)."
    ),
    ray_gpus_per_actor: float | None = typer.Option(
        None, help="With --ray: GPUs per model actor (default: 1 where the cluster has GPUs, else 0)."
    ),
    ray_cpus_per_actor: float = typer.Option(1.0, help="With --ray: CPUs per model actor (give --threads alike)."),
    max_pixels: int | None = typer.Option(
        None,
        "--max-pixels",
        help="Largest image decoded whole (PNG/JPEG inputs) or output held "
        "whole (png/geojson/graphml), in pixels (default: what fits in "
        "half the memory available).",
    ),
    triton: str | None = typer.Option(
        None,
        "--triton",
        metavar="URL",
        help="Run on a Triton Inference Server (http://HOST:8000 or grpc://HOST:8001; [triton]); "
        "MODEL is the artifact it serves, whose sidecar the served model must match.",
    ),
    served_model: str = typer.Option("sam2ms", "--model", help="With --triton: the served model's name."),
    unverified: bool = typer.Option(
        False,
        "--unverified",
        help="Run an ONNX that has no sidecar, with what its graph says (nothing vouches for it; the summary says so).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout."),
) -> None:
    """Tiled inference over tiles or whole scenes; writes masks and a JSON summary."""
    from .backends import BackendOptions, open_model
    from .pipeline import InferOptions
    from .ray_pipeline import RayOptions

    # every number is checked before the model is opened (a bad one costs no model load)
    how = BackendOptions(
        precision=precision,
        threads=threads,
        providers=tuple(providers.split(",")) if providers else None,
        device=device,
        tile=tile,
        eager_kernels=check_against is not None,
        cuda_graph=cuda_graph,
        unverified=unverified,
        triton_url=triton,
        triton_model=served_model,
    ).validate()
    asked = InferOptions(
        source=source,
        out=output,
        overlap=overlap,
        batch=batch,
        streams=streams,
        workers=workers,
        threshold=threshold,
        fmt=fmt,
        probabilities=probabilities,
        graph=graph,
        resume=resume,
        stac_asset=stac_asset,
        max_pixels=max_pixels,
        check_tiles=check_tiles,
    ).check_flags()
    ray_opts = RayOptions(
        address=None if ray == "local" else ray,
        actors=ray_actors,
        gpus_per_actor=ray_gpus_per_actor,
        cpus_per_actor=ray_cpus_per_actor,
        block=block,
        backend=backend,
        model=replace(how, eager_kernels=False),  # each actor runs; only this process compares
    ).validate()
    engine = open_model(model, backend, how)
    reference = None
    try:
        radiometry = radiometry_from(bands, stretch, percentiles, scale, stats, engine.info.radiometry)
        opts = replace(asked, radiometry=radiometry).validate(engine.info)
        if check_against is not None:  # opened (and so checked) before the first tile runs
            reference = open_model(check_against, "torch", BackendOptions(tile=engine.info.tile))
        if ray is None:
            from .pipeline import run_inference

            summary = _with_progress("infer (windows)", functools.partial(run_inference, engine, opts), quiet)
        else:
            from .ray_pipeline import run_inference_ray

            run = functools.partial(run_inference_ray, model, opts, ray_opts, engine.info)
            summary = _with_progress("infer on Ray (blocks)", run, quiet)
        if reference is not None:
            from .check import check_against as check

            summary["check"] = check(
                engine,
                reference,
                source,
                overlap=opts.overlap or 0,
                batch=opts.batch,
                limit=opts.check_tiles,
                radiometry=opts.radiometry,
                stac_asset=opts.stac_asset,
                max_pixels=opts.max_pixels,
            ).to_json()
    finally:
        engine.close()
        if reference is not None:
            reference.close()
    single_failed = bool(summary["failures"]) and names_one_raster(source)
    if as_json or not single_failed:  # one INPUT that failed: its reason is the one line to print
        _report(summary, as_json)
    if summary.get("check") and not summary["check"]["passed"]:
        raise CheckFailed("check against PyTorch failed: " + "; ".join(summary["check"]["failures"]))
    if single_failed:
        raise UsageError(summary["failures"][0]["error"])
    if summary["failures"]:
        done = f"the other {summary['files']} were written" if summary["files"] else "none was written"
        raise Sam2msError(f"{summary['failed']} input(s) failed (listed above); {done}")


def _with_progress(label: str, run: Callable[..., dict[str, Any]], quiet: bool) -> dict[str, Any]:
    """``run(progress=..., on_start=...)`` under a progress bar of its units (files, or Ray's
    blocks), or bare with --quiet.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if quiet:
        return run()
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True)
    ) as bar:
        task = bar.add_task(label, total=None)
        return run(progress=lambda n: bar.advance(task, n), on_start=lambda total: bar.update(task, total=total))


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    # plain lines: messages are data ("sam2ms[geo]" must stay itself) and one line each, whatever the width
    if summary["model"].get("unverified"):
        model = summary["model"].get("model") or summary["model"].get("path")
        typer.echo(
            f"unverified: {model} ran without a sidecar: nothing checked that it is the model exported, nor its parity",
            err=True,
        )
    for failure in summary["failures"]:
        typer.echo(f"failed: {failure['error']}", err=True)
    st = summary["stage_seconds"]
    typer.echo(
        f"{summary['files']} file(s), {summary['tiles']} tiles in {summary['seconds']:.2f} s: "
        f"{summary['tiles_per_s']:.2f} tiles/s, {summary['megapixels_per_s']:.2f} MP/s "
        f"(decode {st['decode']:.2f} s, infer {st['infer']:.2f} s, blend {st['blend']:.2f} s, "
        f"write {st['write']:.2f} s); skipped {summary['skipped_existing']}, failed {summary['failed']}"
    )
    if "check" in summary:
        c = summary["check"]
        typer.echo(
            f"check vs PyTorch on {c['tiles']} tiles: max |dp| {c.get('max_abs', float('nan')):.2e}, "
            f"mask IoU {c.get('mask_iou', float('nan')):.5f}, F1 {c.get('f1', float('nan')):.4f}, "
            f"mIoU {c.get('miou', float('nan')):.4f}, APLS {c.get('apls', float('nan')):.4f}, "
            f"TOPO F1 {c.get('topo_f1', float('nan')):.4f} "
            f"-> {'ok' if c['passed'] else 'FAILED'}"
        )
