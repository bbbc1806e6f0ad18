"""The ``bench`` command (``sam2ms bench``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sam2ms.deps import require
from sam2ms.errors import UsageError

from .options import TORCH_VARIANT_HELP


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} {text}: comma-separated integers, e.g. {flag} 1,2,4") from None
    return values


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _words(text))
    except ValueError:
        raise UsageError(f"{flag} {text}: comma-separated numbers, e.g. {flag} 0.5,0.9") from None


def bench_command(
    models: list[Path] | None = typer.Argument(
        None,
        metavar="MODEL...",
        help="engine.plan, model*.onnx and/or a .pt (with --pipeline: at most one, else the synthetic engine)",
    ),
    batch: str = typer.Option(
        "", help="Batch sizes, comma-separated (e.g. 1,2,4,8); default 1, and with --pipeline 4 (sam2ms-infer's)."
    ),
    streams: str = typer.Option("1", help="Concurrent streams/lanes, comma-separated (e.g. 1,2)."),
    iterations: int = typer.Option(20, min=1, help="Timed batches per stream and configuration."),
    warmup: int = typer.Option(3, min=1, help="Untimed batches per stream and shape first (at least 1)."),
    backend: str = typer.Option(
        "auto", help="auto (every installed backend that runs each file) or some of tensorrt,onnxruntime,openvino."
    ),
    openvino_precision: str = typer.Option("fp32,bf16", help="OpenVINO precisions (bf16 where this CPU has it)."),
    reference: Path | None = typer.Option(
        None, help="Checkpoint for the PyTorch reference (default: the one the models' sidecars name)."
    ),
    torch: str = typer.Option(
        "auto",
        "--torch",
        help="PyTorch variants: auto (FP32 and the fastest PyTorch offers "
        "here: bf16 autocast where native, fp16/bf16 on GPUs and "
        "bf16 replayed from CUDA graphs, torch.compile) or a list of "
        f"{TORCH_VARIANT_HELP}.",
    ),
    isolate: bool = typer.Option(
        True,
        "--isolate/--in-process",
        help="Each subject in its own process, so that one runtime's busy thread pools cannot slow the next.",
    ),
    accuracy_tiles: int = typer.Option(4, min=1, help="Synthetic tiles for accuracy against the reference."),
    threads: int | None = typer.Option(None, min=1, max=1024, help="CPU threads for ONNX Runtime and PyTorch."),
    seed: int = typer.Option(0, min=0, help="Seed of the synthetic tiles."),
    cuda_graph: bool = typer.Option(
        False,
        "--cuda-graph",
        help="Also measure each TensorRT plan replayed from CUDA graphs (trtexec --useCudaGraph).",
    ),
    unverified: bool = typer.Option(
        False, "--unverified", help="Also measure ONNX files that have no sidecar (nothing vouches for them)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here ('-': stdout)."),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="Write the markdown table here."),
    plot_out: Path | None = typer.Option(None, "--plot", help="Write latency/throughput plots (PNG) here."),
    pipeline: bool = typer.Option(
        False,
        "--pipeline",
        help="Measure the tiled pipeline instead: host capacity "
        "(a free synthetic engine on 1 and all cores), its efficiency against engines of "
        "known speed, per-stage seconds and each thread's busy fraction.",
    ),
    engine_load: str = typer.Option(
        "0.5,0.9", help="--pipeline: synthetic engines at these fractions of the measured host capacity."
    ),
    engine_ms: str = typer.Option("", help="--pipeline: also synthetic engines of these ms per tile per lane."),
    engine_gil_fraction: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="--pipeline: each engine row again "
        "with the engine holding the GIL this fraction of each batch (as "
        "PyTorch's launch-bound lanes do).",
    ),
    scenes: int = typer.Option(8, min=1, max=1000, help="--pipeline: synthetic scenes."),
    scene_size: int = typer.Option(4096, min=64, max=65536, help="--pipeline: their side in pixels."),
    tile: int = typer.Option(1024, min=32, max=16384, help="--pipeline: the synthetic engine's tile."),
    io: str = typer.Option("png", help="--pipeline: png | tif (tiled GeoTIFF in, COG out)."),
    workers: int = typer.Option(2, min=1, max=64, help="--pipeline: decoder threads."),
    single: int = typer.Option(
        6144, min=0, max=65536, help="--pipeline: also the engines over one scene of this side (0: not)."
    ),
    cores: str = typer.Option("", help="--pipeline: core counts for the free engine (default: 1 and all)."),
    work: Path = typer.Option(Path("pipeline_bench"), help="--pipeline: folder for the scenes (kept for reuse)."),
) -> None:
    """Latency, throughput, memory and accuracy of models against the PyTorch reference; with
    --pipeline, what the tiled pipeline delivers around an engine.
    """
    from rich.console import Console

    from .options import BenchOptions
    from .report import save_report
    from .runner import run_bench

    if plot_out is not None and plot_out.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot_out}: give a .png path")
    if plot_out is not None:
        require("matplotlib", "--plot")  # before minutes of measuring, not after
    console = Console(stderr=True, log_path=False, markup=False)
    if pipeline:
        from .pipeline import PipelineBenchOptions, pipeline_markdown, run_pipeline_bench

        if models and len(models) > 1:
            raise UsageError("--pipeline: give at most one MODEL (none: the synthetic engine)")
        popts = PipelineBenchOptions(
            work=work,
            model=models[0] if models else None,
            scenes=scenes,
            size=scene_size,
            tile=tile,
            io=io,
            batch=_ints(batch or "4", "--batch")[0],
            streams=_ints(streams, "--streams")[0],
            workers=workers,
            loads=_floats(engine_load, "--engine-load"),
            engine_ms=_floats(engine_ms, "--engine-ms"),
            gil_fraction=engine_gil_fraction,
            single=single,
            **({"cores": tuple(_ints(cores, "--cores"))} if cores else {}),
        )
        preport = run_pipeline_bench(popts, log=lambda m: console.log(m))
        ptable = pipeline_markdown(preport)
        _save_text(json_out, json.dumps(preport, indent=2))
        _save_text(markdown_out, ptable)
        typer.echo(json.dumps(preport, indent=2) if json_out is not None and str(json_out) == "-" else ptable)
        return
    if not models:
        raise UsageError("bench: give at least one MODEL (or --pipeline)")
    opts = BenchOptions(
        models=models,
        batches=_ints(batch or "1", "--batch"),
        streams=_ints(streams, "--streams"),
        iterations=iterations,
        warmup=warmup,
        backend=backend,
        reference=reference,
        torch_variants=_words(torch),
        accuracy_tiles=accuracy_tiles,
        threads=threads,
        seed=seed,
        cuda_graph=cuda_graph,
        isolate=isolate,
        openvino_precisions=_words(openvino_precision),
        unverified=unverified,
    )
    report = run_bench(opts, log=lambda m: console.log(m))
    to_stdout = json_out is not None and str(json_out) == "-"
    table = save_report(
        report, json_path=None if to_stdout else json_out, markdown_path=markdown_out, plot_path=plot_out
    )
    typer.echo(json.dumps(report, indent=2) if to_stdout else table)


def _save_text(path: Path | None, text: str) -> None:
    if path is not None and str(path) != "-":
        from sam2ms.fileio import atomic_write

        atomic_write(path, lambda f: f.write(text.encode()))
