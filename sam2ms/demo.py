"""``sam2ms demo``: the chain so far on an embedded default, on a CPU, in minutes.

Synthesise a road dataset, train ``sam2ms_nano`` on it, evaluate the best checkpoint on the
held-out split, write an overlay picture, export the model (ONNX FP32, FP16 and INT8 — calibrated
on a synthetic scene with --auto-exclude — and a TensorRT plan when a builder is installed) with
parity and INT8-vs-FP32 accuracy figures, run the tiled runtime over a large
synthetic scene with the exported ONNX model (checked against PyTorch on the same tiles),
benchmark the ONNX artifacts against the PyTorch reference, and write a JSON summary with one
summary table. The nano trunk has no
pretrained weights (none can be downloaded here), so the demo trains from a random frozen
trunk with a higher learning rate than the paper's and without the lossnet (its ImageNet
weights cannot be downloaded either); it is a check that the chain learns, not the paper's result.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from .console import JSON_HELP, emit, metric_rows, needs
from .errors import CheckFailed
from .fileio import save_png, write_json

DEMO_MODEL = "sam2ms_nano"
DEMO_LR = 1e-3
DEMO_BATCH = 4


def _grey(m: np.ndarray) -> np.ndarray:
    """A mask or probability map in 0..1 as grey RGB bytes."""
    return np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2)


def overlay_rows(images: list[np.ndarray], labels: list[np.ndarray], probs: list[np.ndarray]) -> np.ndarray:
    """One row per sample: image | label | probability | errors (TP green, FP red, FN blue)."""
    rows = []
    for image, label, prob in zip(images, labels, probs):
        pred = prob >= 0.5
        err = image.copy() // 2
        err[pred & label] = (40, 220, 40)
        err[pred & ~label] = (230, 40, 40)
        err[~pred & label] = (40, 90, 255)
        rows.append(np.concatenate([image, _grey(label), _grey(prob), err], axis=1))
    return np.concatenate(rows, axis=0)


def run_demo(
    out: Path, *, count: int = 120, size: int = 256, epochs: int = 10, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Run the demo into ``out`` (its data/ and run/ subfolders are the demo's own and are
    replaced on a re-run); returns the summary also written to ``out/summary.json``.
    """
    import torch

    from .data.dataset import load_sample
    from .data.synth import write_synthetic_dataset
    from .models import create_model
    from .preprocess import normalize
    from .train.evaluate import evaluate, predict_probabilities
    from .train.trainer import TrainConfig, Trainer

    out = Path(out)
    data, run = out / "data", out / "run"
    for folder in (data, run):
        shutil.rmtree(folder, ignore_errors=True)
    write_synthetic_dataset(data, count, size, seed)
    cfg = TrainConfig(
        data=data,
        output=run,
        layout="folder",
        model=DEMO_MODEL,
        epochs=epochs,
        batch=DEMO_BATCH,
        image_size=size,
        lr=DEMO_LR,
        lossnet="none",
        seed=seed,
        device="cpu",
        progress=progress,
    )
    started = time.perf_counter()
    trainer = Trainer(cfg)
    trained = trainer.fit()
    train_seconds = time.perf_counter() - started

    model = create_model(None, checkpoint=run / "best.pt").eval()
    test = trainer.test_samples
    metrics = evaluate(model, test, size, device=torch.device("cpu"), show_progress=False)
    shown = [load_sample(s) for s in test[:3]]
    batch = torch.from_numpy(np.stack([normalize(img) for img, _ in shown]))
    probs = predict_probabilities(model, batch)[:, 0].numpy()
    overlay = save_png(out / "overlay.png", overlay_rows([i for i, _ in shown], [m for _, m in shown], list(probs)))
    summary: dict[str, Any] = {
        "model": DEMO_MODEL,
        "data": {
            "folder": str(data),
            "scenes": count,
            "size": size,
            "seed": seed,
            "train": len(trainer.train_samples),
            "test": len(test),
        },
        "training": {
            "epochs": epochs,
            "steps": trained["steps"],
            "lr": DEMO_LR,
            "batch": DEMO_BATCH,
            "lossnet": "none (no ImageNet weights can be downloaded here)",
        },
        "train_seconds": round(train_seconds, 1),
        "checkpoint": str(run / "best.pt"),
        "test": metrics,
        "overlay": str(overlay),
    }
    summary["export"] = _export(run / "best.pt", out / "export", size, _calibration_scene(out, size, seed))
    summary["scene"] = _infer_scene(out, out / "export" / "model.onnx", run / "best.pt", size, seed)
    summary["bench"] = _benchmark(out, summary["export"], run / "best.pt")
    summary["table"] = summary_table(summary)
    summary["failures"] = demo_failures(summary)
    write_json(out / "summary.json", summary)
    return summary


def demo_failures(summary: dict[str, Any]) -> list[str]:
    """Every check of the run that failed, one line each: the export's (parity, INT8 target,
    OpenVINO's gates), the scene's check against PyTorch, and each benchmark row whose checks
    failed (a path the runtime would refuse).
    """
    failures = [summary["export"]["failure"]] if summary["export"].get("failure") else []
    check = summary["scene"]["check"]
    if not check["passed"]:
        failures.append("scene check against PyTorch: " + "; ".join(check["failures"]))
    failures += [
        f"{r['subject']} at batch {r['batch']}: its checks failed, the runtime refuses it"
        for r in summary["bench"]["rows"]
        if r.get("checks_passed") is False
    ]
    return failures


def _infer_scene(out: Path, onnx_model: Path, ckpt: Path, size: int, seed: int) -> dict[str, Any]:
    """Tiled inference over a 3x4-tile synthetic scene drawn at the training tiles' scale."""
    from PIL import Image

    from .data.synth import render_road_scene
    from .metrics import RoadMetrics
    from .roads.score import graph_pairs, pairs_scores
    from .runtime.backends import BackendOptions, open_model
    from .runtime.check import check_against
    from .runtime.pipeline import InferOptions, default_overlap, run_inference

    folder = out / "scene"
    shutil.rmtree(folder, ignore_errors=True)
    image, label = render_road_scene(3 * size, 4 * size, np.random.default_rng([seed, 999]), scale=size / 256)
    save_png(folder / "input" / "scene.png", image)
    engine = open_model(onnx_model)
    try:
        opts = InferOptions(
            source=folder / "input", out=folder / "output", batch=DEMO_BATCH, streams=2, probabilities=True
        )
        result = run_inference(engine, opts)
        with open_model(ckpt, "torch", BackendOptions(tile=engine.info.tile)) as reference:
            result["check"] = check_against(
                engine, reference, folder / "input", overlap=default_overlap(size), batch=DEMO_BATCH
            ).to_json()
    finally:
        engine.close()
    prob = np.asarray(Image.open(folder / "output" / "scene.prob.png"), dtype=np.float32) / 255
    acc = RoadMetrics()
    acc.update(prob, label)
    graphs = graph_pairs(label[None].astype(np.float32), prob[None])
    result["accuracy_vs_label"] = {**acc.compute(), **pairs_scores(graphs)}
    result["overlay"] = str(save_png(out / "scene_overlay.png", overlay_rows([image], [label], [prob])))
    if graphs:  # road graphs drawn: the label's | the model's
        from .roads.extract import draw_graph

        pictures = [draw_graph(image, g) for g in graphs[0]]
        result["graph_picture"] = str(save_png(out / "scene_graph.png", np.concatenate(pictures, axis=1)))
    return result


def _benchmark(out: Path, export: dict[str, Any], ckpt: Path) -> dict[str, Any]:
    """``sam2ms bench`` of the ONNX artifacts (on ONNX Runtime, and OpenVINO where installed) against
    the PyTorch reference and its bf16 autocast where the CPU has native BF16, in one run: batches
    1 and 4, one stream (the plan needs a GPU: not run here; torch.compile's minutes of compiling
    are left to ``sam2ms bench``).
    """
    import importlib.util

    from .bench.options import BenchOptions
    from .bench.report import save_report
    from .bench.runner import run_bench
    from .runtime.backends.base import cpu_has_native_bf16

    onnx = [Path(a["artifact"]) for a in export["artifacts"] if a["artifact"].endswith(".onnx")]
    report = run_bench(
        BenchOptions(
            models=onnx,
            batches=[1, DEMO_BATCH],
            iterations=10,
            warmup=2,
            reference=ckpt,
            torch_variants=["fp32", *(["bf16"] if cpu_has_native_bf16() else [])],
        )
    )
    can_plot = importlib.util.find_spec("matplotlib") is not None
    save_report(
        report,
        json_path=out / "bench.json",
        markdown_path=out / "bench.md",
        plot_path=out / "bench.png" if can_plot else None,
    )
    result = {"report": str(out / "bench.json"), "markdown": str(out / "bench.md"), "rows": report["rows"]}
    if can_plot:
        result["plot"] = str(out / "bench.png")
    return result


def summary_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per artifact and the PyTorch reference: size, agreement with PyTorch FP32, and
    speed at the demo batch (also as a ratio to PyTorch); rows whose checks failed are marked as
    in ``bench.md``.
    """
    from .bench.report import row_label

    speed = {r["subject"]: r for r in summary["bench"]["rows"] if r["batch"] == DEMO_BATCH}
    rows = []
    for name, r in speed.items():
        file = name.split(" (")[0]  # "model.onnx (openvino fp32)" runs model.onnx
        art = next((a for a in summary["export"]["artifacts"] if Path(a["artifact"]).name == file), None)
        rows.append(
            {
                "artifact": row_label(r),
                "precision": r["precision"],
                "backend": r["backend"],
                "megabytes": None if art is None else round(art["bytes"] / 2**20, 1),
                "mask_iou_vs_pytorch": round(r["accuracy"]["mask_iou"], 4),
                "tiles_per_s": round(r["throughput"]["tiles_per_s"], 2),
                "x_best_pytorch": round(r["vs_best_pytorch"]["throughput"], 2) if r["vs_best_pytorch"] else None,
                "x_pytorch": round(r["vs_reference"]["throughput"], 2) if r["vs_reference"] else None,
            }
        )
    for a in summary["export"]["artifacts"]:
        if a["artifact"].endswith(".plan"):
            rows.append(
                {
                    "artifact": "engine.plan",
                    "precision": a["precision"],
                    "backend": "tensorrt",
                    "megabytes": round(a["bytes"] / 2**20, 1),
                    "mask_iou_vs_pytorch": None,
                    "tiles_per_s": None,
                    "x_best_pytorch": None,
                    "x_pytorch": None,
                    "note": "needs an RTX GPU: " + ", ".join(a.get("targets", [])),
                }
            )
    return rows


def _calibration_scene(out: Path, size: int, seed: int) -> Path:
    """A 5x8-tile synthetic scene (40 tiles: 32 to calibrate on, 8 held out), its own seed."""
    from .data.synth import render_road_scene

    folder = out / "calib"
    shutil.rmtree(folder, ignore_errors=True)
    image, _ = render_road_scene(5 * size, 8 * size, np.random.default_rng([seed, 555]), scale=size / 256)
    save_png(folder / "scene.png", image)
    return folder


def _export(ckpt: Path, folder: Path, tile: int, calib_data: Path) -> dict[str, Any]:
    """Export the demo model (FP32, FP16, and INT8 calibrated on ``calib_data`` with
    --auto-exclude, and --reduce-range on a CPU without VNNI); OpenVINO's gates where it is
    installed; the plan only when tensorrt/tensorrt_rtx is importable. A missed INT8 target is
    reported in the summary, not fatal: the rest of the chain runs on the FP32 model.
    """
    from importlib.util import find_spec

    from .calib.pipeline import CalibrateOptions
    from .errors import CheckFailed, UsageError
    from .export.pipeline import ExportOptions, run_export
    from .export.tensorrt_build import load_tensorrt
    from .runtime.backends.base import cpu_has_vnni

    try:
        load_tensorrt("auto")
        plan_note = None
    except UsageError as exc:
        plan_note = f"no plan: {exc}"
    shutil.rmtree(folder, ignore_errors=True)
    calibration = CalibrateOptions(
        onnx=folder / "model.onnx",
        calib_data=calib_data,
        out=folder,
        auto_exclude=True,
        reduce_range=not cpu_has_vnni(),
    )
    options = ExportOptions(
        ckpt=ckpt,
        out=folder,
        fp16=True,
        tile=tile,
        batch="1:4:8",
        onnx_only=plan_note is not None,
        calibration=calibration,
        openvino=find_spec("openvino") is not None,
    )
    try:
        result = run_export(options)
    except CheckFailed as exc:
        if exc.summary is None:
            raise
        result = {**exc.summary, "failure": str(exc)}
    if plan_note:
        result["plan"] = plan_note
    return result


def demo_command(
    output: Path = typer.Option(Path("demo_run"), "-o", "--output", help="Folder for everything the demo writes."),
    count: int = typer.Option(120, min=10, help="Synthetic scenes (70% train, 30% held out)."),
    size: int = typer.Option(256, min=64, max=4096, help="Scene and training size (multiple of 32)."),
    epochs: int = typer.Option(10, min=1),
    seed: int = typer.Option(0, min=0),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The chain on synthetic roads: train sam2ms_nano on CPU, evaluate, export, run tiled inference."""
    needs("demo", "onnx", "onnxslim", "onnxruntime")
    summary = run_demo(output, count=count, size=size, epochs=epochs, seed=seed, progress=not quiet)
    if as_json:
        emit(summary, True)
    else:
        _print_text(output, summary)
    if summary["failures"]:
        raise CheckFailed(
            f"{len(summary['failures'])} check(s) failed (listed above; {output}/summary.json has the figures)", summary
        )


def _print_text(output: Path, summary: dict[str, Any]) -> None:
    """The demo's report for people: its figures, its closing table, then every failed check."""
    q = next((a["accuracy_vs_fp32"] for a in summary["export"]["artifacts"] if a.get("accuracy_vs_fp32")), None)
    scene, check = summary["scene"], summary["scene"]["check"]
    rows = [("output", str(output)), ("train seconds", str(summary["train_seconds"]))]
    rows += [(f"test {k}", v) for k, v in metric_rows(summary["test"])]
    if q is not None:
        rows.append(
            (
                "INT8 vs FP32",
                f"mask IoU {q['mask_iou']:.4f}, F1 drop {100 * q['f1_drop']:.2f} points, "
                f"APLS {q.get('apls', float('nan')):.3f}, TOPO F1 "
                f"{q.get('topo_f1', float('nan')):.3f} "
                f"on {q['tiles']} held-out tiles -> {'ok' if q['passed'] else 'TARGET MISSED'}",
            )
        )
    vs_label = scene["accuracy_vs_label"]
    runtime = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}.get(
        scene["model"]["backend"], scene["model"]["backend"]
    )
    rows += [
        (
            f"scene ({runtime})",
            f"{scene['tiles']} tiles, F1 {100 * vs_label['f1']:.2f}, APLS "
            f"{vs_label.get('apls', float('nan')):.3f}, TOPO F1 "
            f"{vs_label.get('topo_f1', float('nan')):.3f} vs its label",
        ),
        (
            "check vs PyTorch",
            f"{check['tiles']} tiles: max |dp| {check['max_abs']:.2e}, mask IoU "
            f"{check['mask_iou']:.5f}, APLS {check.get('apls', float('nan')):.3f}, "
            f"{'ok' if check['passed'] else 'FAILED'}",
        ),
        (
            "pictures",
            f"{summary['overlay']}, {scene['overlay']}"
            + (f", {scene['graph_picture']}" if "graph_picture" in scene else "")
            + (f", {summary['bench']['plot']}" if "plot" in summary["bench"] else ""),
        ),
        ("benchmark", f"{summary['bench']['report']} ({summary['bench']['markdown']})"),
    ]
    emit(summary, False, rows)
    _print_summary_table(summary["table"])
    for failure in summary["failures"]:
        typer.echo(f"FAILED: {failure}", err=True)


def _print_summary_table(rows: list[dict[str, Any]]) -> None:
    """The demo's closing table: every artifact beside the PyTorch reference."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="sam2ms demo: artifacts against the PyTorch FP32 reference (batch 4, this CPU)")
    for col in ("artifact", "precision", "backend", "MB", "mask IoU", "tiles/s", "x best PyTorch", "x PyTorch FP32"):
        t.add_column(col, justify="left" if col in ("artifact", "precision", "backend") else "right")

    def cell(v: Any) -> str:
        return "—" if v is None else str(v)

    notes = []
    for r in rows:
        t.add_row(
            r["artifact"],
            r["precision"],
            r["backend"],
            cell(r["megabytes"]),
            cell(r["mask_iou_vs_pytorch"]),
            cell(r["tiles_per_s"]),
            cell(r["x_best_pytorch"]),
            cell(r["x_pytorch"]),
        )
        if r.get("note"):
            notes.append(f"{r['artifact']}: {r['note']}")
    console = Console(markup=False)
    console.width = max(console.width, 120)  # a pipe gets 80 columns; the table needs more
    console.print(t)
    for note in notes:
        console.print(note)
