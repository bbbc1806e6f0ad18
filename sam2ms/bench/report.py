"""The benchmark report: its versioned JSON Schema, a markdown table and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam2ms.deps import require

from .runner import SCHEMA

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "subject",
        "backend",
        "kind",
        "precision",
        "reference",
        "device",
        "batch",
        "streams",
        "latency_ms",
        "throughput",
        "split_ms",
        "memory_mb",
        "flops_per_tile",
        "mfu",
        "checks_passed",
        "accuracy",
        "vs_reference",
        "vs_best_pytorch",
        "gflops_per_s",
    ],
    "properties": {
        "subject": {"type": "string"},
        "backend": {"type": "string"},
        "precision": {"type": "string"},
        "batch": {"type": "integer", "minimum": 1},
        "streams": {"type": "integer", "minimum": 1},
        "latency_ms": {
            "type": "object",
            "required": ["mean", "p50", "p90", "p99", "min", "max"],
            "additionalProperties": _NUM,
        },
        "throughput": {"type": "object", "required": ["tiles_per_s", "megapixels_per_s"], "additionalProperties": _NUM},
        "split_ms": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["h2d", "compute", "d2h"]}]},
        "memory_mb": {
            "type": "object",
            "required": ["host_rss_increase", "device_peak"],
            "additionalProperties": _NUM_OR_NULL,
        },
        "flops_per_tile": _NUM_OR_NULL,
        "mfu": _NUM_OR_NULL,
        "checks_passed": {"type": ["boolean", "null"]},
        "accuracy": {"type": "object", "required": ["mask_iou", "f1", "max_abs", "f1_vs_label", "reference"]},
        "vs_reference": {
            "oneOf": [{"type": "null"}, {"type": "object", "required": ["throughput", "latency_p50", "subject"]}]
        },
        "vs_best_pytorch": {
            "oneOf": [{"type": "null"}, {"type": "object", "required": ["throughput", "latency_p50", "subject"]}]
        },
        "gflops_per_s": _NUM_OR_NULL,
    },
}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sam2ms bench report",
    "type": "object",
    "required": ["schema", "created", "command", "versions", "host", "model", "tile", "iterations", "rows", "skipped"],
    "properties": {
        "schema": {"const": SCHEMA},
        "tile": {"type": "integer"},
        "rows": {"type": "array", "items": ROW_SCHEMA},
    },
}


def _times(ratio: dict[str, Any] | None) -> str:
    return "—" if ratio is None else f"{ratio['throughput']:.2f}"


def row_label(row: dict[str, Any]) -> str:
    """A row's subject as every table prints it: marked where its checks failed (the artifact's own
    export or calibration checks, or the gate its backend measured), so no table shows a refused
    path as if it could be deployed.
    """
    return str(row["subject"]) + (" (checks FAILED)" if row.get("checks_passed") is False else "")


def markdown(report: dict[str, Any]) -> str:
    """One table row per measurement: throughput against the best PyTorch row of its batch (the
    headline) and against eager FP32, the FLOP rate and its fraction of the device's peak.
    """
    head = (
        "| subject | backend | precision | batch | streams | p50 ms | p90 ms | p99 ms | tiles/s | GFLOP/s "
        "| % of peak | × best PyTorch | × PyTorch FP32 | mask IoU | F1 vs ref |\n|" + " --- |" * 15
    )
    lines = [head]
    best = set()
    for r in report["rows"]:
        lat, thr, acc = r["latency_ms"], r["throughput"], r["accuracy"]
        util = "—" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
        rate = "—" if r.get("gflops_per_s") is None else f"{r['gflops_per_s']:.1f}"
        name = row_label(r)
        if r.get("vs_best_pytorch"):
            best.add(r["vs_best_pytorch"]["subject"])
        lines.append(
            f"| {name} | {r['backend']} | {r['precision']} | {r['batch']} | {r['streams']} | "
            f"{lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {thr['tiles_per_s']:.2f} | "
            f"{rate} | {util} | {_times(r.get('vs_best_pytorch'))} | {_times(r['vs_reference'])} | "
            f"{acc['mask_iou']:.4f} | {acc['f1']:.4f} |"
        )
    for skip in report["skipped"]:  # what could not run here stays in the table, with why
        where = f" at batch {skip['batch']}, {skip['streams']} stream(s)" if "batch" in skip else ""
        why = skip["why"].replace("|", "/")
        lines.append(f"| {skip['subject']} (not run here{where}: {why}) |" + " — |" * 14)
    reference = report["rows"][0]["accuracy"]["reference"] if report["rows"] else "—"
    peak = report["host"].get("cpu_peak")
    peak_note = (
        ""
        if not peak
        else (
            f" CPU peak = {peak['cores']} cores × FLOP/cycle {peak['flop_per_cycle']} × {peak['ghz']} GHz "
            f"= {', '.join(f'{p} {1000 * t:.0f} GFLOP/s' for p, t in peak['tflops'].items())}."
        )
    )
    note = (
        f"\n{report['model']} at {report['tile']}², {report['iterations']} timed batches per stream after "
        f"{report['warmup']} warm-up{', each subject in its own process' if report.get('isolated') else ''}; "
        f"accuracy on {report['accuracy_tiles']} synthetic tiles against {reference}; best PyTorch row per "
        f"batch: {', '.join(sorted(best)) or '—'}; host {report['host']['cpu']}.{peak_note}"
    )
    return "\n".join(lines) + "\n" + note + "\n"


def plot(report: dict[str, Any], path: str | Path) -> Path:
    """Two panels: p50 latency against batch per subject, and best throughput per subject."""
    require("matplotlib", "--plot").use("Agg")
    import matplotlib.pyplot as plt

    from sam2ms.fileio import atomic_write

    rows = report["rows"]
    subjects = list(dict.fromkeys(r["subject"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in subjects:
        mine = sorted((r for r in rows if r["subject"] == s and r["streams"] == 1), key=lambda r: r["batch"])
        if mine:
            left.plot([r["batch"] for r in mine], [r["latency_ms"]["p50"] for r in mine], marker="o", label=s)
    left.set(xlabel="batch (tiles)", ylabel="p50 latency per batch (ms)", title="Latency vs batch (1 stream)")
    left.set_xscale("log", base=2)
    left.legend(fontsize=7)
    best = [max(r["throughput"]["tiles_per_s"] for r in rows if r["subject"] == s) for s in subjects]
    bars = right.barh(subjects, best, color="#4c72b0")
    for bar, s in zip(bars, subjects):
        iou = next(r["accuracy"]["mask_iou"] for r in rows if r["subject"] == s)
        right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" IoU {iou:.3f}", va="center", fontsize=7)
    right.set(xlabel="best throughput (tiles/s)", title="Throughput by artifact/precision")
    right.invert_yaxis()
    fig.suptitle(f"{report['model']} @ {report['tile']}² — {rows[0]['device'] if rows else ''}", fontsize=9)
    fig.tight_layout()
    path = Path(path)

    def save(f: Any) -> None:
        fig.savefig(f, format="png", dpi=110)

    atomic_write(path, save)
    plt.close(fig)
    return path


def save_report(
    report: dict[str, Any],
    *,
    stem: str | Path | None = None,
    json_path: str | Path | None = None,
    markdown_path: str | Path | None = None,
    plot_path: str | Path | None = None,
) -> str:
    """Write whichever of the JSON report, markdown table and plot are asked for (atomically) —
    ``stem`` asks for all three as ``stem.json``, ``stem.md`` and ``stem.png``; returns the table.
    """
    from sam2ms.fileio import atomic_write, write_json

    if stem is not None:
        stem = Path(stem)
        json_path, markdown_path, plot_path = (stem.with_name(stem.name + ext) for ext in (".json", ".md", ".png"))
    table = markdown(report)
    if json_path is not None:
        write_json(json_path, report)
    if markdown_path is not None:
        atomic_write(markdown_path, lambda f: f.write(table.encode()))
    if plot_path is not None:
        plot(report, plot_path)
    return table
