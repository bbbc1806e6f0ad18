"""What every command prints: a JSON summary with ``--json``, else a small table, and the early
check that names the extra a command needs when this host lacks it.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from .deps import require

JSON_HELP = "Print a machine-readable JSON summary on stdout."


def emit(summary: dict[str, Any], as_json: bool, table: list[tuple[str, str]] | None = None) -> None:
    """``summary`` as JSON on stdout, or ``table`` (default: its items) as two columns."""
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=False, box=None)
    for key, value in table or [(k, str(v)) for k, v in summary.items()]:
        t.add_row(key, value)
    Console(markup=False).print(t)  # values are data: a path with [brackets] stays itself


def needs(command: str, *modules: str) -> None:
    """Fail early, naming the extra to install, when ``command`` needs what this host lacks
    (a deployment host has no PyTorch).
    """
    for module in ("torch", "sam2", *modules):
        require(module, f"sam2ms {command}")


def metric_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """Percentages as in the paper's tables (MAE x 100)."""
    order = ("precision", "recall", "f1", "miou", "mdice", "mae", "rlod")
    rows = [(k.upper() if k != "miou" else "mIoU", f"{100 * metrics[k]:.2f}") for k in order if k in metrics]
    if "apls" in metrics:
        rows.append(("APLS", f"{metrics['apls']:.4f} (lowest {metrics['apls_min']:.4f})"))
    if "topo_f1" in metrics:
        rows.append(
            (
                "TOPO P / R / F1",
                f"{metrics['topo_precision']:.4f} / {metrics['topo_recall']:.4f} / {metrics['topo_f1']:.4f}",
            )
        )
    return [*rows, ("images", str(metrics.get("images", "")))]
