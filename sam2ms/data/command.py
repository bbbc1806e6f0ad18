"""The ``synth`` command: a seeded synthetic road dataset in the folder layout."""

from __future__ import annotations

from pathlib import Path

import typer

from sam2ms.console import JSON_HELP, emit
from sam2ms.errors import UsageError


def synth(
    out: Path = typer.Argument(..., help="Output folder (images/ + masks/ layout)."),
    count: int = typer.Option(100, min=1, help="Number of scenes."),
    size: int = typer.Option(1024, min=32, help="Scene side in pixels."),
    seed: int = typer.Option(0, min=0, help="Seed: the same seed gives the same files."),
    style: str = typer.Option("boundary", help="Label style: boundary (road surface) or centerline."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write a synthetic road dataset (curved roads, junctions, trees and shadows) in the folder layout."""
    from .synth import LABEL_STYLES, write_synthetic_dataset

    if style not in LABEL_STYLES:
        raise UsageError(f"--style {style}: use one of {', '.join(LABEL_STYLES)}")
    write_synthetic_dataset(out, count, size, seed, style)  # type: ignore[arg-type]
    emit({"out": str(out), "count": count, "size": size, "seed": seed, "style": style, "layout": "folder"}, as_json)
