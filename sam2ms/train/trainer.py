"""The SAM2MS trainer: AdamW + per-epoch cosine schedule, DDP, AMP, exact resume.

Run layout (``-o RUN``): ``config.json``, ``steps.jsonl`` (one line per optimizer step),
``metrics.jsonl`` (one line per epoch), ``last.pt`` and ``best.pt`` (by test-split F1), all
written atomically by rank 0 only. ``last.pt`` records the position inside the epoch, so
``--resume`` after an interruption at any checkpoint replays exactly the batches, losses and
weights of an uninterrupted run (batch order and augmentation are seeded per epoch, not drawn
from global RNG state; see :mod:`.sampling`).

Across processes and nodes (torchrun): every rank reads the same ``last.pt`` (``-o`` lives on
storage that every node mounts), set-up failures stop every rank at once (:meth:`Dist.agree`),
BatchNorm statistics span the global batch (:mod:`.sync_batchnorm`), and each checkpoint checks
that all replicas hold bit-identical weights.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.utils.data import DataLoader

from ..data.dataset import Augment, RoadDataset
from ..data.layouts import discover, paper_split
from ..errors import UsageError
from ..fileio import atomic_write, write_json
from ..geo.radiometry import Radiometry
from ..labels import DEFAULT_ROAD_WIDTH
from ..losses import SAM2MSLoss, build_lossnet
from ..models import create_model
from ..models.checkpoint import Checkpoint, read_checkpoint, save_checkpoint, set_rng_state
from ..models.net import STRIDE
from ..progress import progress_bar
from .distributed import Dist
from .evaluate import evaluate
from .sampling import rank_steps
from .sync_batchnorm import synchronise_batchnorm

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainConfig:
    """Every training option; defaults are the paper's (docs/architecture.md, Training defaults)."""

    data: Path
    output: Path
    layout: str = "folder"
    model: str = "sam2ms_hiera_l"
    sam2_ckpt: Path | None = None
    epochs: int = 50
    batch: int = 2
    accum: int = 1
    image_size: int = 1024
    lr: float = 1e-4
    min_lr: float = 1e-7
    weight_decay: float = 1e-2
    lossnet: str = "resnet50"
    lossnet_weights: str | None = None
    amp: str = "none"
    seed: int = 0
    workers: int = 0
    patch: int | None = None
    rotation: float = 30.0
    hflip: float = 0.5
    vflip: float = 0.0
    eval_every: int = 1
    save_every: int = 0
    stop_after: int | None = None
    resume: bool = False
    auto_resume: bool = False  # resume when -o holds a run, else start one (a scheduler's unchanged relaunch)
    sync_bn: bool = True  # BatchNorm statistics over the global batch when world > 1
    device: str = "auto"
    progress: bool = True
    radiometry: dict[str, Any] | None = None  # sam2ms.geo.radiometry.Radiometry.as_dict(); None: default (or resumed)
    road_width: float = DEFAULT_ROAD_WIDTH
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """A UsageError naming the flag for any value out of range (nothing is built before)."""
        if self.image_size <= 0 or self.image_size % STRIDE:
            raise UsageError(f"--image-size {self.image_size}: must be a positive multiple of {STRIDE}")
        if self.amp not in AMP_DTYPES:
            raise UsageError(f"--amp {self.amp}: use one of {', '.join(AMP_DTYPES)}")
        for name in ("epochs", "batch", "accum"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be at least 1")

    def as_json(self) -> dict[str, Any]:
        """The configuration as the checkpoint records it (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class Position:
    """Where training stands: the next epoch and optimizer step within it, and global counts."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    epoch_loss_sum: float = 0.0
    best_f1: float = -1.0
    global_batch: int = 0  # samples per optimizer step (world x batch x accum); 0 in older runs


def _dataset_digest(samples: list[Any]) -> str:
    """Names and windows of the samples, hashed: every node must train on the same list."""
    text = "\n".join(f"{s.image.name}|{s.mask.name}|{s.window}" for s in samples)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _truncate_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Drop log lines past the checkpoint being resumed (an interrupted run may have logged them)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and keep(json.loads(ln))]
    payload = "".join(ln + "\n" for ln in lines).encode()
    atomic_write(path, lambda f: f.write(payload))


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


class Trainer:
    """Builds everything from a :class:`TrainConfig`; :meth:`fit` runs (or resumes) training."""

    def __init__(self, cfg: TrainConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.dist = Dist.from_env(cfg.device)
        try:
            self._build(cfg)
        except BaseException:
            # leave the process group before exiting: a process that exits with gloo's threads still
            # running aborts ("terminate called without an active exception") instead of exiting 2
            self.dist.close()
            raise

    def _build(self, cfg: TrainConfig) -> None:
        self.out = Path(cfg.output)
        self.main = self.dist.is_main
        resumed = self.dist.agree(self._read_resumed_run)
        self.resumed = resumed is not None
        self.radiometry = self._resumed_radiometry(resumed) if resumed else Radiometry.from_dict(cfg.radiometry)
        self.train_samples, self.test_samples = self.dist.agree(self._split)
        self.dist.same_everywhere(
            _dataset_digest(self.train_samples + self.test_samples),
            f"the samples under {cfg.data}",
            "every node needs the same dataset at --data",
        )
        self.lossnet = build_lossnet(cfg.lossnet, cfg.lossnet_weights)
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.model, sam2_checkpoint=cfg.sam2_ckpt).to(self.dist.device)
        self.criterion = SAM2MSLoss(self.lossnet).to(self.dist.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = CosineAnnealingLR(self.optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=cfg.amp == "fp16")
        self.amp_dtype = AMP_DTYPES[cfg.amp]
        self.dataset = RoadDataset(
            self.train_samples, cfg.image_size, Augment(cfg.rotation, cfg.hflip, cfg.vflip), cfg.seed, self.radiometry
        )
        self.pos = Position()
        self.accum_adjusted_from: int | None = None
        if resumed:
            self._restore(resumed)
        self.pos.global_batch = self.dist.world * cfg.batch * cfg.accum
        if self.dist.enabled and cfg.sync_bn:
            self.model = synchronise_batchnorm(self.model, self.dist.device)
        self.net = DDP(self.model) if self.dist.enabled else self.model
        self._digest: tuple[int, str] | None = None  # (global step, weights digest) of the last check

    # -- set-up (run on every rank under Dist.agree) ----------------------------------------
    def _read_resumed_run(self) -> Checkpoint | None:
        """``last.pt`` of the run being continued, or None for a new run."""
        cfg, last = self.cfg, self.out / "last.pt"
        exists = last.exists()
        self.dist.same_everywhere(
            exists,
            "whether the run folder (-o) holds last.pt",
            "put -o on storage that every node mounts (NFS, Lustre, a mounted bucket): "
            "rank 0 writes the checkpoints and every rank resumes from them",
        )
        if cfg.resume and not exists:
            raise UsageError(f"--resume: {last} not found; start without --resume")
        if exists and not (cfg.resume or cfg.auto_resume):
            raise UsageError(
                f"{self.out} already holds a run (last.pt); pass --resume to continue it or choose another -o folder"
            )
        return read_checkpoint(last) if exists else None

    def _split(self) -> tuple[list[Any], list[Any]]:
        cfg = self.cfg
        sources = discover(cfg.data, cfg.layout, cfg.patch, cfg.road_width, self.radiometry)
        train, test = paper_split(sources, seed=cfg.seed)
        if not train:
            raise UsageError(f"{cfg.data}: no training samples after the 7:3 split; add images")
        return train, test

    # -- checkpoints ------------------------------------------------------------------------
    def _resumed_radiometry(self, ckpt: Checkpoint) -> Radiometry:
        """The run's raster conversion: a resumed run keeps its own; flags that ask for another are refused."""
        recorded = Radiometry.from_dict(ckpt.raw.get("radiometry"))
        if self.cfg.radiometry is not None and Radiometry.from_dict(self.cfg.radiometry) != recorded:
            raise UsageError(
                f"{ckpt.path}: the run was trained with another raster conversion "
                f"({recorded.as_dict()}); resume without --bands/--stretch/--scale/--stats"
            )
        return recorded

    def _restore(self, ckpt: Checkpoint) -> None:
        raw, path = ckpt.raw, ckpt.path
        self.dist.same_everywhere(
            raw["step"],
            "the step of the run's last.pt",
            "every rank must read the same last.pt: put -o on storage that every node mounts",
        )
        if raw["model_name"] != self.cfg.model:
            raise UsageError(
                f"{path}: run was for {raw['model_name']}, not {self.cfg.model}; use --model {raw['model_name']}"
            )
        self.model.load_state_dict(ckpt.state_dict)
        self.optimizer.load_state_dict(raw["optimizer"])
        self.scheduler.load_state_dict(raw["scheduler"])
        self.scaler.load_state_dict(raw["scaler"])
        set_rng_state(raw["rng"])
        self.pos = Position(**raw["train_state"])
        self._keep_global_batch(path)
        if self.main:
            _truncate_jsonl(self.out / "steps.jsonl", lambda r: r["step"] <= self.pos.global_step)
            _truncate_jsonl(self.out / "metrics.jsonl", lambda r: r["epoch"] < self.pos.epoch)

    def _keep_global_batch(self, path: Path) -> None:
        """Resume on another number of processes: keep the run's samples per step (and so its exact
        batch sequence) by changing ``accum``; refuse where ``world x batch`` cannot make it up.
        """
        cfg, recorded, per_round = self.cfg, self.pos.global_batch, self.dist.world * self.cfg.batch
        if not recorded or recorded == per_round * cfg.accum:
            return
        if recorded % per_round:
            raise UsageError(
                f"{path}: the run takes {recorded} samples per optimizer step (processes x batch x "
                f"accum); {self.dist.world} processes x --batch {cfg.batch} cannot make that up: choose "
                f"a --batch for which {self.dist.world} x batch divides {recorded}"
            )
        self.accum_adjusted_from, cfg.accum = cfg.accum, recorded // per_round

    def _weights_digest(self) -> str:
        """SHA-256 of the trainable weights (and buffers), checked equal on every rank: DDP keeps
        replicas identical only while every rank applies the same all-reduced update, so a
        divergence (a non-deterministic op, a rank that read other data) is caught at the next
        checkpoint. Without synchronised BatchNorm the running statistics are rank-local until
        DDP's next broadcast from rank 0 (whose copy is saved), so they are left out then.
        """
        if self._digest is None or self._digest[0] != self.pos.global_step:
            h = hashlib.sha256()
            tensors: list[tuple[str, torch.Tensor]] = [
                (n, p) for n, p in self.model.named_parameters() if p.requires_grad
            ]
            if self.cfg.sync_bn or not self.dist.enabled:
                tensors += list(self.model.named_buffers())
            for name, tensor in tensors:
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            digests = self.dist.gather_objects(h.hexdigest())
            if len(set(digests)) > 1:
                raise RuntimeError(
                    f"the DDP replicas diverged by step {self.pos.global_step}: weight digests "
                    f"{[d[:12] for d in digests]} (one per rank); please report this with the command"
                )
            self._digest = (self.pos.global_step, digests[0])
        return self._digest[1]

    def _save(self, name: str, metrics: dict[str, Any] | None = None) -> None:
        self._weights_digest()
        if self.main:
            save_checkpoint(
                self.out / name,
                self.model,
                image_size=self.cfg.image_size,
                epoch=self.pos.epoch,
                step=self.pos.global_step,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                metrics=metrics,
                train_args=self.cfg.as_json(),
                extra={"train_state": asdict(self.pos), "radiometry": self.radiometry.as_dict()},
            )

    # -- training ---------------------------------------------------------------------------
    def _batches(self, epoch: int) -> list[list[list[int]]]:
        """Optimizer steps of this epoch, each a list of ``accum`` micro-batches of indices."""
        return rank_steps(
            len(self.dataset),
            self.cfg.seed,
            epoch,
            world=self.dist.world,
            rank=self.dist.rank,
            batch=self.cfg.batch,
            accum=self.cfg.accum,
        )

    def _step(self, group: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """One optimizer step over ``accum`` micro-batches (gradient sync only on the last)."""
        dev = self.dist.device
        total, parts_sum = 0.0, dict[str, float]()
        for i, batch in enumerate(group):
            sync = i == len(group) - 1 or not self.dist.enabled
            ctx = self.net.no_sync() if not sync else nullcontext()  # type: ignore[operator]  # DDP only
            with ctx:
                with torch.autocast(
                    dev.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
                ):
                    logits = self.net(batch["image"].to(dev, non_blocking=True))
                loss, parts = self.criterion(logits, batch["mask"].to(dev, non_blocking=True))
                self.scaler.scale(loss / len(group)).backward()
            total += float(loss.detach()) / len(group)
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / len(group)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": self.dist.mean(total), **{k: self.dist.mean(v) for k, v in parts_sum.items()}}

    def fit(self) -> dict[str, Any]:
        """Train to ``epochs`` (or until ``stop_after`` steps); returns a JSON-able summary."""
        cfg, pos = self.cfg, self.pos
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", {**cfg.as_json(), "world_size": self.dist.world})
            if not self.resumed:  # a new run: drop the logs of an attempt that died before its first checkpoint
                for log in ("steps.jsonl", "metrics.jsonl"):
                    (self.out / log).unlink(missing_ok=True)
        started = time.perf_counter()
        stopped_early = False
        last_metrics: dict[str, Any] = {}
        self.model.train()
        while pos.epoch < cfg.epochs and not stopped_early:
            self.dataset.set_epoch(pos.epoch)
            steps = self._batches(pos.epoch)
            flat = [i for group in steps[pos.step_in_epoch :] for mb in group for i in mb]
            loader = iter(DataLoader(self.dataset, batch_size=cfg.batch, sampler=flat, num_workers=cfg.workers))
            with progress_bar(
                f"epoch {pos.epoch + 1}/{cfg.epochs}", total=len(steps), enabled=cfg.progress and self.main
            ) as bar:
                bar.advance(pos.step_in_epoch)
                for group_idx in range(pos.step_in_epoch, len(steps)):
                    group = [next(loader) for _ in steps[group_idx]]
                    record = self._step(group)
                    pos.global_step += 1
                    pos.step_in_epoch = group_idx + 1
                    pos.epoch_loss_sum += record["loss"]
                    lr = self.optimizer.param_groups[0]["lr"]
                    if self.main:
                        _append_jsonl(
                            self.out / "steps.jsonl", {"step": pos.global_step, "epoch": pos.epoch, "lr": lr, **record}
                        )
                    bar.advance(info=f"loss {record['loss']:.4f}")
                    if cfg.stop_after is not None and pos.global_step >= cfg.stop_after:
                        stopped_early = True
                        break
                    if cfg.save_every and pos.global_step % cfg.save_every == 0:
                        self._save("last.pt")
            if stopped_early and pos.step_in_epoch < len(steps):
                break
            last_metrics = self._end_epoch(len(steps), time.perf_counter() - started)
        self._save("last.pt", last_metrics)
        self.dist.barrier()
        return {
            "run": str(self.out),
            "model": cfg.model,
            "epochs_done": pos.epoch,
            "steps": pos.global_step,
            "stopped_early": stopped_early,
            "seconds": round(time.perf_counter() - started, 2),
            "best_f1": pos.best_f1 if pos.best_f1 >= 0 else None,
            "metrics": last_metrics,
            "world_size": self.dist.world,
            "global_batch": pos.global_batch,
            "accum_adjusted_from": self.accum_adjusted_from,
            "weights_sha256": self._weights_digest(),
        }

    def _end_epoch(self, n_steps: int, elapsed: float) -> dict[str, Any]:
        cfg, pos = self.cfg, self.pos
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        record: dict[str, Any] = {
            "epoch": pos.epoch,
            "lr": lr,
            "train_loss": pos.epoch_loss_sum / max(n_steps, 1),
            "steps": pos.global_step,
            "elapsed_s": round(elapsed, 2),
        }
        evaluate_now = (
            cfg.eval_every
            and self.test_samples
            and ((pos.epoch + 1) % cfg.eval_every == 0 or pos.epoch + 1 == cfg.epochs)
        )
        if evaluate_now:
            record["test"] = evaluate(
                self.model,
                self.test_samples,
                cfg.image_size,
                device=self.dist.device,
                batch=cfg.batch,
                amp_dtype=self.amp_dtype,
                dist=self.dist,
                show_progress=cfg.progress,
                radiometry=self.radiometry,
            )
        pos.epoch += 1
        pos.step_in_epoch = 0
        pos.epoch_loss_sum = 0.0
        improved = evaluate_now and record["test"]["f1"] > pos.best_f1
        if improved:
            pos.best_f1 = record["test"]["f1"]
        if self.main:
            _append_jsonl(self.out / "metrics.jsonl", record)
        self._save("last.pt", record)
        if improved or (not self.test_samples and pos.epoch == cfg.epochs):
            self._save("best.pt", record)
        return record
