"""The ``bench`` command (``sam2ms bench``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from sam2ms.deps import require
from sam2ms.errors import UsageError


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} {text}: comma-separated integers, e.g. {flag} 1,2,4") from None
    return values


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def bench_command(
    models: list[Path] = typer.Argument(..., metavar="MODEL...", help="engine.plan, model*.onnx and/or a .pt"),
    batch: str = typer.Option("1", help="Batch sizes, comma-separated (e.g. 1,2,4,8)."),
    streams: str = typer.Option("1", help="Concurrent streams/lanes, comma-separated (e.g. 1,2)."),
    iterations: int = typer.Option(20, min=1, help="Timed batches per stream and configuration."),
    warmup: int = typer.Option(3, min=1, help="Untimed batches per stream and shape first (at least 1)."),
    backend: str = typer.Option("auto", help="auto (every installed backend that runs each file) or some of "
                                             "tensorrt,onnxruntime,openvino."),
    openvino_precision: str = typer.Option("fp32,bf16", help="OpenVINO precisions (bf16 where this CPU has it)."),
    reference: Optional[Path] = typer.Option(None, help="Checkpoint for the PyTorch reference (default: the one "
                                                        "the models' sidecars name)."),
    torch: str = typer.Option("auto", "--torch", help="PyTorch variants: auto (FP32 and the fastest PyTorch offers "
                                                     "here: bf16 autocast where native, fp16/bf16 on GPUs, "
                                                     "torch.compile) or some of fp32,fp16,bf16,compile."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Each subject in its own process, so that "
                                 "one runtime's busy thread pools cannot slow the next."),
    accuracy_tiles: int = typer.Option(4, min=1, help="Synthetic tiles for accuracy against the reference."),
    threads: Optional[int] = typer.Option(None, min=1, max=1024, help="CPU threads for ONNX Runtime and PyTorch."),
    seed: int = typer.Option(0, min=0, help="Seed of the synthetic tiles."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Also measure each TensorRT plan replayed from "
                                                                "CUDA graphs (trtexec --useCudaGraph)."),
    unverified: bool = typer.Option(False, "--unverified", help="Also measure ONNX files that have no sidecar "
                                                                "(nothing vouches for them)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report here ('-': stdout)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the markdown table here."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write latency/throughput plots (PNG) here."),
) -> None:
    """Latency, throughput, memory and accuracy of models against the PyTorch reference."""
    from rich.console import Console

    from .report import save_report
    from .runner import BenchOptions, run_bench

    if plot_out is not None and plot_out.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot_out}: give a .png path")
    if plot_out is not None:
        require("matplotlib", "--plot")  # before minutes of measuring, not after
    console = Console(stderr=True, log_path=False, markup=False)
    opts = BenchOptions(models=models, batches=_ints(batch, "--batch"), streams=_ints(streams, "--streams"),
                        iterations=iterations, warmup=warmup, backend=backend, reference=reference,
                        torch_variants=_words(torch),
                        accuracy_tiles=accuracy_tiles, threads=threads, seed=seed, cuda_graph=cuda_graph,
                        isolate=isolate, openvino_precisions=_words(openvino_precision), unverified=unverified)
    report = run_bench(opts, log=lambda m: console.log(m))
    to_stdout = json_out is not None and str(json_out) == "-"
    table = save_report(report, json_path=None if to_stdout else json_out, markdown_path=markdown_out,
                        plot_path=plot_out)
    typer.echo(json.dumps(report, indent=2) if to_stdout else table)
