"""The ``train`` and ``eval`` commands (DDP when launched with torchrun)."""

from __future__ import annotations

from pathlib import Path

import typer

from sam2ms.console import JSON_HELP, emit, metric_rows, needs
from sam2ms.errors import UsageError
from sam2ms.geo.raster_options import BANDS, PERCENTILES, ROAD_WIDTH, SCALE, STATS, STRETCH, radiometry_from


def train(
    data: Path = typer.Option(..., help="Dataset folder."),
    layout: str = typer.Option(
        "auto", help="auto (by the folder's markers) | deepglobe | spacenet | massachusetts | folder"
    ),
    model: str = typer.Option("sam2ms_hiera_l", help="Registered model name."),
    sam2_ckpt: Path | None = typer.Option(None, help="Official SAM2/SAM2.1 checkpoint for the trunk."),
    epochs: int = typer.Option(50, min=1),
    batch: int = typer.Option(2, min=1, help="Per-process batch size."),
    accum: int = typer.Option(1, min=1, help="Gradient accumulation steps."),
    image_size: int = typer.Option(1024, min=32, max=16384, help="Training input size (multiple of 32)."),
    lr: float = typer.Option(1e-4, min=0.0),
    weight_decay: float = typer.Option(1e-2, min=0.0),
    lossnet: str = typer.Option("resnet50", help="resnet50 | vgg16 | none"),
    lossnet_weights: str | None = typer.Option(None, help="torchvision ImageNet weights file."),
    amp: str = typer.Option("none", help="bf16 | fp16 | none"),
    seed: int = typer.Option(0, min=0),
    workers: int = typer.Option(0, min=0, max=256, help="DataLoader workers."),
    patch: int | None = typer.Option(
        None,
        min=32,
        help="Cut images into PATCH windows (default: 1024 for spacenet/massachusetts, whole images otherwise).",
    ),
    rotation: float = typer.Option(30.0, min=0.0, max=180.0, help="Random rotation range (+- degrees)."),
    hflip: float = typer.Option(0.5, min=0.0, max=1.0),
    vflip: float = typer.Option(0.0, min=0.0, max=1.0, help="0.5 = the authors' script."),
    eval_every: int = typer.Option(1, min=0, help="Evaluate on the test split every N epochs (0: never)."),
    save_every: int = typer.Option(0, min=0, help="Also write last.pt every N optimizer steps."),
    stop_after: int | None = typer.Option(
        None, min=1, help="Stop after N optimizer steps in total (checkpointed; continue with --resume)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in -o exactly where last.pt left it."),
    auto_resume: bool = typer.Option(
        False,
        "--auto-resume",
        help="Continue the run in -o if it has a last.pt, else start it: for "
        "a scheduler that relaunches the job unchanged after a failure.",
    ),
    sync_bn: bool = typer.Option(
        True,
        "--sync-bn/--no-sync-bn",
        help="Under DDP, BatchNorm statistics over the global batch (as one process "
        "with that batch); --no-sync-bn: per process, slightly faster.",
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    bands: str | None = BANDS,
    stretch: str | None = STRETCH,
    percentiles: str | None = PERCENTILES,
    scale: str | None = SCALE,
    stats: Path | None = STATS,
    road_width: float = ROAD_WIDTH,
    output: Path = typer.Option(..., "-o", "--output", help="Run folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a SAM2MS model (DDP when launched with torchrun)."""
    needs("train")
    from .trainer import TrainConfig, Trainer

    cfg = TrainConfig(
        data=data,
        output=output,
        layout=layout,
        model=model,
        sam2_ckpt=sam2_ckpt,
        epochs=epochs,
        batch=batch,
        accum=accum,
        image_size=image_size,
        lr=lr,
        weight_decay=weight_decay,
        lossnet=lossnet,
        lossnet_weights=lossnet_weights,
        amp=amp,
        seed=seed,
        workers=workers,
        patch=patch,
        rotation=rotation,
        hflip=hflip,
        vflip=vflip,
        eval_every=eval_every,
        save_every=save_every,
        stop_after=stop_after,
        resume=resume,
        auto_resume=auto_resume,
        sync_bn=sync_bn,
        device=device,
        progress=not quiet,
        road_width=road_width,
        radiometry=r.as_dict() if (r := radiometry_from(bands, stretch, percentiles, scale, stats)) else None,
    )
    if model.startswith("sam2ms_hiera") and sam2_ckpt is None and not (resume or auto_resume):
        typer.echo(
            f"warning: {model} without --sam2-ckpt trains on a random frozen trunk: the paper's encoder "
            "is SAM2's pretrained Hiera (e.g. --sam2-ckpt sam2.1_hiera_large.pt)",
            err=True,
        )
    trainer = Trainer(cfg)
    try:
        summary = trainer.fit()
    finally:
        trainer.dist.close()
    if trainer.main:
        emit(
            summary,
            as_json,
            [
                ("run", summary["run"]),
                ("epochs", str(summary["epochs_done"])),
                ("steps", str(summary["steps"])),
                ("seconds", str(summary["seconds"])),
                *metric_rows(summary["metrics"].get("test", {})),
            ],
        )


def eval_cmd(
    ckpt: Path = typer.Option(..., help="sam2ms checkpoint (or the authors' SAM2MS weights)."),
    data: Path = typer.Option(..., help="Dataset folder."),
    layout: str = typer.Option(
        "auto", help="auto (by the folder's markers) | deepglobe | spacenet | massachusetts | folder"
    ),
    split: str = typer.Option("test", help="test | train | all (the paper's seeded 7:3 split)."),
    model: str | None = typer.Option(None, help="Model name (read from a sam2ms checkpoint)."),
    image_size: int | None = typer.Option(
        None, min=32, max=16384, help="Input size (default: the checkpoint's, else 1024)."
    ),
    seed: int = typer.Option(0, min=0, help="Split seed (the training run's)."),
    patch: int | None = typer.Option(None, min=32),
    batch: int = typer.Option(2, min=1),
    amp: str = typer.Option("none", help="bf16 | fp16 | none"),
    bands: str | None = BANDS,
    stretch: str | None = STRETCH,
    percentiles: str | None = PERCENTILES,
    scale: str | None = SCALE,
    stats: Path | None = STATS,
    road_width: float = ROAD_WIDTH,
    with_apls: bool = typer.Option(
        False,
        "--apls",
        help="Also score road graphs: APLS and TOPO of each "
        "prediction's graph against its label's (SpaceNet "
        "GeoJSON where the layout has it).",
    ),
    device: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Evaluate a checkpoint: Precision, Recall, F1, mIoU, mDice, MAE, RLOD."""
    needs("eval")
    import torch

    from ..data.layouts import discover, paper_split
    from ..models import create_model
    from ..models.checkpoint import read_checkpoint
    from .evaluate import evaluate
    from .trainer import AMP_DTYPES

    if split not in ("test", "train", "all"):
        raise UsageError(f"--split {split}: use test, train or all")
    if amp not in AMP_DTYPES:
        raise UsageError(f"--amp {amp}: use one of {', '.join(AMP_DTYPES)}")
    ck = read_checkpoint(ckpt)
    radiometry = radiometry_from(bands, stretch, percentiles, scale, stats, ck.raw.get("radiometry"))
    sources = discover(data, layout, patch, road_width, radiometry)
    train_s, test_s = paper_split(sources, seed=seed)
    samples = {"test": test_s, "train": train_s, "all": train_s + test_s}[split]
    if not samples:
        raise UsageError(f"{data}: the '{split}' split is empty ({len(sources)} source images); use --split all")
    size = image_size or int(ck.raw.get("image_size", 1024))  # the authors' weights carry none: 1024
    net = create_model(model or ck.model_name, checkpoint=ckpt)
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    metrics = evaluate(
        net.to(dev),
        samples,
        size,
        device=dev,
        batch=batch,
        amp_dtype=AMP_DTYPES[amp],
        show_progress=not quiet,
        radiometry=radiometry,
        with_apls=with_apls,
    )
    emit({"ckpt": str(ckpt), "split": split, "image_size": size, **metrics}, as_json, metric_rows(metrics))
