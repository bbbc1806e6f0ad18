"""The ``info`` and ``models`` commands: the model registry and what each model costs. Outside the
``sam2ms.models`` package on purpose: importing that package imports torch, and the CLI must not.
"""

from __future__ import annotations

import typer

from sam2ms.console import JSON_HELP, emit, needs


def info(
    name: str = typer.Argument(..., help="Registered model name (see 'sam2ms models')."),
    size: int = typer.Option(1024, min=32, max=16384, help="Square input size for the FLOP count (multiple of 32)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Parameters (total, trainable) and GFLOPs of a model for one size x size tile."""
    needs("info")
    from .models.stats import model_stats

    s = model_stats(name, size)
    emit(
        s,
        as_json,
        [
            ("model", name),
            ("input", f"{size}x{size}"),
            ("params total", f"{s['params_total'] / 1e6:.2f} M"),
            ("params trainable", f"{s['params_trainable'] / 1e6:.2f} M"),
            ("GFLOPs", f"{s['gflops']:.1f} (torch FLOP counter, 2 per multiply-add)"),
            *[(f"  of which {part}", f"{g:.1f}") for part, g in s["gflops_by_part"].items()],
        ],
    )


def models(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the registered models."""
    needs("models")
    from .models import describe_model, list_models

    rows = {n: describe_model(n) for n in list_models()}
    emit(rows, as_json)
