"""The ``sam2ms`` command line (typer).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input, 3 a failed parity/accuracy check.
Every error the user can cause is a :class:`~sam2ms.errors.Sam2msError` and prints as one line.
Heavy imports (torch, sam2) happen inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .deps import require
from .errors import Sam2msError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="SAM2MS road extraction: train, export (ONNX, FP16, INT8, TensorRT), run tiled inference and "
                       "benchmark against PyTorch.")

JSON_HELP = "Print a machine-readable JSON summary on stdout."


def _emit(summary: dict[str, Any], as_json: bool, table: list[tuple[str, str]] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=False, box=None)
    for key, value in table or [(k, str(v)) for k, v in summary.items()]:
        t.add_row(key, value)
    Console().print(t)


def _needs(command: str, *modules: str) -> None:
    """Fail early, naming the extra to install, when ``command`` needs what this host lacks
    (a deployment host has no PyTorch)."""
    for module in ("torch", "sam2", *modules):
        require(module, f"sam2ms {command}")


def _metric_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """Percentages as in the paper's tables (MAE x 100)."""
    order = ("precision", "recall", "f1", "miou", "mdice", "mae", "rlod")
    return [(k.upper() if k != "miou" else "mIoU", f"{100 * metrics[k]:.2f}") for k in order if k in metrics] + [
        ("images", str(metrics.get("images", "")))]


@app.command()
def info(name: str = typer.Argument(..., help="Registered model name (see 'sam2ms models')."),
         size: int = typer.Option(1024, help="Square input size for the FLOP count (multiple of 32)."),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Parameters (total, trainable) and GFLOPs of a model for one size x size tile."""
    _needs("info")
    from .models.stats import model_stats

    s = model_stats(name, size)
    _emit(s, as_json, [("model", name), ("input", f"{size}x{size}"),
                       ("params total", f"{s['params_total'] / 1e6:.2f} M"),
                       ("params trainable", f"{s['params_trainable'] / 1e6:.2f} M"),
                       ("GFLOPs", f"{s['gflops']:.1f} (torch FLOP counter, 2 per multiply-add)")])


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the registered models."""
    _needs("models")
    from .models import describe_model, list_models

    rows = {n: describe_model(n) for n in list_models()}
    _emit(rows, as_json)


@app.command()
def synth(out: Path = typer.Argument(..., help="Output folder (images/ + masks/ layout)."),
          count: int = typer.Option(100, min=1, help="Number of scenes."),
          size: int = typer.Option(1024, min=32, help="Scene side in pixels."),
          seed: int = typer.Option(0, help="Seed: the same seed gives the same files."),
          style: str = typer.Option("boundary", help="Label style: boundary (road surface) or centerline."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Write a synthetic road dataset (curved roads, junctions, trees and shadows) in the folder layout."""
    from .data.synth import LABEL_STYLES, write_synthetic_dataset

    if style not in LABEL_STYLES:
        raise UsageError(f"--style {style}: use one of {', '.join(LABEL_STYLES)}")
    write_synthetic_dataset(out, count, size, seed, style)  # type: ignore[arg-type]
    _emit({"out": str(out), "count": count, "size": size, "seed": seed, "style": style, "layout": "folder"}, as_json)


@app.command()
def train(data: Path = typer.Option(..., help="Dataset folder."),
          layout: str = typer.Option("folder", help="deepglobe | spacenet | massachusetts | folder"),
          model: str = typer.Option("sam2ms_hiera_l", help="Registered model name."),
          sam2_ckpt: Optional[Path] = typer.Option(None, help="Official SAM2/SAM2.1 checkpoint for the trunk."),
          epochs: int = typer.Option(50), batch: int = typer.Option(2, help="Per-process batch size."),
          accum: int = typer.Option(1, help="Gradient accumulation steps."),
          image_size: int = typer.Option(1024, help="Training input size (multiple of 32)."),
          lr: float = typer.Option(1e-4), weight_decay: float = typer.Option(1e-2),
          lossnet: str = typer.Option("resnet50", help="resnet50 | vgg16 | none"),
          lossnet_weights: Optional[str] = typer.Option(None, help="torchvision ImageNet weights file."),
          amp: str = typer.Option("none", help="bf16 | fp16 | none"),
          seed: int = typer.Option(0), workers: int = typer.Option(0, help="DataLoader workers."),
          patch: Optional[int] = typer.Option(None, help="Cut images into PATCH windows (default: 1024 for "
                                                         "spacenet/massachusetts, whole images otherwise)."),
          rotation: float = typer.Option(30.0, help="Random rotation range (+- degrees)."),
          hflip: float = typer.Option(0.5), vflip: float = typer.Option(0.0, help="0.5 = the authors' script."),
          eval_every: int = typer.Option(1, help="Evaluate on the test split every N epochs (0: never)."),
          save_every: int = typer.Option(0, help="Also write last.pt every N optimizer steps."),
          stop_after: Optional[int] = typer.Option(None, help="Stop after N optimizer steps in total "
                                                              "(checkpointed; continue with --resume)."),
          resume: bool = typer.Option(False, help="Continue the run in -o exactly where last.pt left it."),
          device: str = typer.Option("auto", help="auto | cpu | cuda"),
          output: Path = typer.Option(..., "-o", "--output", help="Run folder."),
          quiet: bool = typer.Option(False, help="No progress bars."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Train a SAM2MS model (DDP when launched with torchrun)."""
    _needs("train")
    from .train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(data=data, output=output, layout=layout, model=model, sam2_ckpt=sam2_ckpt, epochs=epochs,
                      batch=batch, accum=accum, image_size=image_size, lr=lr, weight_decay=weight_decay,
                      lossnet=lossnet, lossnet_weights=lossnet_weights, amp=amp, seed=seed, workers=workers,
                      patch=patch, rotation=rotation, hflip=hflip, vflip=vflip, eval_every=eval_every,
                      save_every=save_every, stop_after=stop_after, resume=resume, device=device,
                      progress=not quiet)
    trainer = Trainer(cfg)
    try:
        summary = trainer.fit()
    finally:
        trainer.dist.close()
    if trainer.main:
        _emit(summary, as_json, [("run", summary["run"]), ("epochs", str(summary["epochs_done"])),
                                 ("steps", str(summary["steps"])), ("seconds", str(summary["seconds"]))]
              + _metric_rows(summary["metrics"].get("test", {})))


@app.command("eval")
def eval_cmd(ckpt: Path = typer.Option(..., help="sam2ms checkpoint (or the authors' SAM2MS weights)."),
             data: Path = typer.Option(..., help="Dataset folder."),
             layout: str = typer.Option("folder", help="deepglobe | spacenet | massachusetts | folder"),
             split: str = typer.Option("test", help="test | train | all (the paper's seeded 7:3 split)."),
             model: Optional[str] = typer.Option(None, help="Model name (read from a sam2ms checkpoint)."),
             image_size: Optional[int] = typer.Option(None, help="Input size (default: the checkpoint's, else 1024)."),
             seed: int = typer.Option(0, help="Split seed (the training run's)."),
             patch: Optional[int] = typer.Option(None), batch: int = typer.Option(2),
             amp: str = typer.Option("none", help="bf16 | fp16 | none"),
             device: str = typer.Option("auto"), quiet: bool = typer.Option(False),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Evaluate a checkpoint: Precision, Recall, F1, mIoU, mDice, MAE, RLOD."""
    _needs("eval")
    import torch

    from .data.layouts import discover, paper_split
    from .models import create_model
    from .models.checkpoint import read_checkpoint
    from .train.evaluate import evaluate
    from .train.trainer import AMP_DTYPES

    if split not in ("test", "train", "all"):
        raise UsageError(f"--split {split}: use test, train or all")
    if amp not in AMP_DTYPES:
        raise UsageError(f"--amp {amp}: use one of {', '.join(AMP_DTYPES)}")
    sources = discover(data, layout, patch)
    train_s, test_s = paper_split(sources, seed=seed)
    samples = {"test": test_s, "train": train_s, "all": train_s + test_s}[split]
    if not samples:
        raise UsageError(f"{data}: the '{split}' split is empty ({len(sources)} source images); use --split all")
    ck = read_checkpoint(ckpt)
    size = image_size or int(ck.raw.get("image_size", 1024))  # the authors' weights carry none: 1024
    net = create_model(model or ck.model_name, checkpoint=ckpt)
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    metrics = evaluate(net.to(dev), samples, size, device=dev, batch=batch, amp_dtype=AMP_DTYPES[amp],
                       show_progress=not quiet)
    _emit({"ckpt": str(ckpt), "split": split, "image_size": size, **metrics}, as_json, _metric_rows(metrics))


@app.command()
def demo(output: Path = typer.Option(Path("demo_run"), "-o", "--output", help="Folder for everything the demo writes."),
         count: int = typer.Option(120, help="Synthetic scenes (70% train, 30% held out)."),
         size: int = typer.Option(256, help="Scene and training size (multiple of 32)."),
         epochs: int = typer.Option(10), seed: int = typer.Option(0),
         quiet: bool = typer.Option(False),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The chain on synthetic roads: train sam2ms_nano on CPU, evaluate, export, run tiled inference."""
    _needs("demo", "onnx", "onnxslim", "onnxruntime")
    from .demo import run_demo

    summary = run_demo(output, count=count, size=size, epochs=epochs, seed=seed, progress=not quiet)
    if as_json:
        _emit(summary, True)
        return
    q = next((a["accuracy_vs_fp32"] for a in summary["export"]["artifacts"] if a.get("accuracy_vs_fp32")), None)
    scene, check = summary["scene"], summary["scene"]["check"]
    rows = [("output", str(output)), ("train seconds", str(summary["train_seconds"]))]
    rows += [(f"test {k}", v) for k, v in _metric_rows(summary["test"])]
    if q is not None:
        rows.append(("INT8 vs FP32", f"mask IoU {q['mask_iou']:.4f}, F1 drop {100 * q['f1_drop']:.2f} points "
                                     f"on {q['tiles']} held-out tiles -> {'ok' if q['passed'] else 'TARGET MISSED'}"))
    rows += [("scene (ONNX Runtime)", f"{scene['tiles']} tiles, F1 {100 * scene['accuracy_vs_label']['f1']:.2f} "
                                      "vs its label"),
             ("check vs PyTorch", f"{check['tiles']} tiles: max |dp| {check['max_abs']:.2e}, mask IoU "
                                  f"{check['mask_iou']:.5f}, {'ok' if check['passed'] else 'FAILED'}"),
             ("pictures", f"{summary['overlay']}, {scene['overlay']}" +
              (f", {summary['bench']['plot']}" if "plot" in summary["bench"] else "")),
             ("benchmark", f"{summary['bench']['report']} ({summary['bench']['markdown']})")]
    _emit(summary, False, rows)
    _print_summary_table(summary["table"])


def _print_summary_table(rows: list[dict[str, Any]]) -> None:
    """The demo's closing table: every artefact beside the PyTorch reference."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="sam2ms demo: artefacts against the PyTorch FP32 reference (batch 4, this CPU)")
    for col in ("artefact", "precision", "backend", "MB", "mask IoU", "tiles/s", "x PyTorch"):
        t.add_column(col, justify="left" if col in ("artefact", "precision", "backend") else "right")

    def cell(v: Any) -> str:
        return "—" if v is None else str(v)

    notes = []
    for r in rows:
        t.add_row(r["artefact"], r["precision"], r["backend"], cell(r["megabytes"]), cell(r["mask_iou_vs_pytorch"]),
                  cell(r["tiles_per_s"]), cell(r["x_pytorch"]))
        if r.get("note"):
            notes.append(f"{r['artefact']}: {r['note']}")
    console = Console()
    console.width = max(console.width, 100)  # a pipe gets 80 columns; the table needs more
    console.print(t)
    for note in notes:
        console.print(note)


def _register_stage_commands() -> None:
    """Commands whose code lives in the stage packages (export/, ...)."""
    from sam2ms.bench.command import bench_command
    from sam2ms.calib.command import calibrate_command
    from sam2ms.export.command import export_command
    from sam2ms.runtime.command import infer_command

    app.command("export")(export_command)
    app.command("calibrate")(calibrate_command)
    app.command("infer")(infer_command)
    app.command("bench")(bench_command)


_register_stage_commands()


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app and turn known errors into one-line messages and exit codes.

    typer itself reports bad flags (exit 2) and exits; our own errors propagate out of it.
    """
    try:
        typer_app()
    except Sam2msError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def main() -> None:
    """``sam2ms``."""
    run_app(app)


def _alias(command: Any) -> None:
    alias = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    alias.command()(command)
    run_app(alias)


def export_main() -> None:
    """``sam2ms-export``: the export command alone."""
    from sam2ms.export.command import export_command

    _alias(export_command)


def infer_main() -> None:
    """``sam2ms-infer``: the infer command alone."""
    from sam2ms.runtime.command import infer_command

    _alias(infer_command)

if __name__ == "__main__":
    main()
