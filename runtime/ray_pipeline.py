"""Tiled inference past one machine, on Ray Data (``sam2ms-infer ... --ray [ADDRESS]``, extra
``[ray]``).

The unit of work is a *block* (:mod:`sam2ms.runtime.blocks`): a scene, or a ``--block`` square of
a larger one, with the scene's own windows that touch it. Ray Data streams blocks through three
stages, each the single-machine code:

1. CPU tasks read and convert a block's windows (the shared radiometry, resolved once per scene
   on the driver, then the model's input format); windows with no valid pixel are marked, never
   inferred;
2. an actor pool holds the model (any backend; ``--ray-gpus-per-actor`` GPUs each where the
   cluster has GPUs, else CPU actors with their own thread count) and infers the windows in
   batches of ``--batch``;
3. CPU tasks blend the block (:class:`~sam2ms.runtime.blocks.BlockBlender`: bit for bit the
   whole-scene blend) and commit its encoded rows atomically under ``OUT/.sam2ms-blocks/``, with a
   marker written last.

The driver assembles each scene once its blocks are committed, feeding the blocks' rows top to
bottom into the single-machine writer (:class:`~sam2ms.runtime.scenes.MaskWriter`: COGs in bounded
memory, PNGs and graphs as without Ray), then removes the scene's block files. ``--resume`` skips
committed blocks and finished scenes. An input that cannot be read fails its own blocks only:
stages catch its error and pass it on, the summary lists it and the exit code is 1. Ray retries
tasks and restarts actors that die (a killed worker process), so a run completes with the
outputs of an undisturbed one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write, ensure_writable_dir
from sam2ms.folder_lock import FolderLock
from sam2ms.geo.radiometry import Stretch
from sam2ms.geo.rasters import Scene, gdal_path, open_scene, streaming_gdal_cache
from sam2ms.metrics import sigmoid
from sam2ms.preprocess import model_input

from .backends import BackendOptions, ModelInfo, open_model
from .blocks import DEFAULT_BLOCK, Block, BlockBlender, block_windows, plan_blocks
from .pipeline import InferOptions, plan_inputs, read_failure
from .scenes import MaskWriter, check_output_memory, encode_rows, iter_windows
from .summary import RunSummary
from .tiling import Grid

WORK = ".sam2ms-blocks"  # committed blocks of unfinished scenes, under the output folder
STRIP = 512  # rows a scene is assembled in (one COG block row)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes (the CLI's ``--ray*`` flags)."""

    address: str | None = None  # None: start Ray here (or join the one this process already runs)
    actors: int | None = None  # None: autoscale from 1 to the GPUs (or CPU slots) of the cluster
    gpus_per_actor: float | None = None  # None: 1 where the cluster has GPUs, else 0
    cpus_per_actor: float = 1.0
    block: int = DEFAULT_BLOCK
    backend: str = "auto"
    model: BackendOptions = field(default_factory=BackendOptions)  # how each actor opens the model

    def validate(self) -> RayOptions:
        """This object, once its values are in range; a UsageError naming the flag otherwise (side-effect free)."""
        if self.block < 256:
            raise UsageError(f"--block {self.block}: use at least 256 pixels (default {DEFAULT_BLOCK})")
        if self.actors is not None and self.actors < 1:
            raise UsageError(f"--ray-actors {self.actors}: must be at least 1")
        for flag, share in (
            ("--ray-gpus-per-actor", self.gpus_per_actor),
            ("--ray-cpus-per-actor", self.cpus_per_actor),
        ):
            if share is not None and share < 0:
                raise UsageError(f"{flag} {share}: must be at least 0")
        return self


def _ray() -> Any:
    require("ray.data", "--ray")
    import ray

    return ray


# ---- stage 1: read a block's windows (CPU task) ---------------------------------------------------


def _read_block(row: dict[str, Any]) -> dict[str, Any]:
    """The block's windows in the model's input format (rows of the dataset carry one block)."""
    meta = json.loads(row["meta"])
    empty = np.zeros((0,), np.uint8)
    if "error" in meta:
        return {"meta": row["meta"], "tiles": empty, "valid": empty, "empty": empty}
    started = time.perf_counter()
    try:
        path = Path(meta["path"])
        stretch = Stretch(**meta["stretch"])
        scene = open_scene(path, cache={path: stretch}, max_pixels=meta["max_pixels"])
        try:
            grid = Grid(scene.height, scene.width, meta["tile"], meta["overlap"])
            wanted = [(y, x) for _, y, x in block_windows(grid, Block(**meta["block"]))]
            tiles, valids, empties = [], [], []
            for _, _, _, window, valid in iter_windows(scene, grid, set(wanted)):
                skip = valid is not None and not valid.any()
                empties.append(skip)
                if not skip:
                    tiles.append(model_input(window, meta["input_format"]))
                if scene.masked:
                    valids.append(np.ones(window.shape[:2], bool) if valid is None else valid)
        finally:
            scene.close()
    except Exception as exc:  # noqa: BLE001 - a bad input fails its own blocks, never the run
        meta["error"] = read_failure(Path(meta["path"]), exc)
        return {"meta": json.dumps(meta), "tiles": empty, "valid": empty, "empty": empty}
    meta["windows"] = wanted
    meta["seconds"] = {"decode": time.perf_counter() - started}
    return {
        "meta": json.dumps(meta),
        "tiles": np.stack(tiles) if tiles else empty,
        "valid": np.stack(valids) if valids else empty,
        "empty": np.array(empties, bool),
    }


# ---- stage 2: infer (actor pool) -------------------------------------------------------------------


class _Infer:
    """One model per actor, run over each block's windows in batches."""

    def __init__(self, model: str, backend: str, options: BackendOptions, batch: int) -> None:
        self.backend = open_model(model, backend, options)
        self.lane = self.backend.lanes(1)[0]
        self.batch = batch
        self.name = f"{os.uname().nodename}:{os.getpid()}"
        described = self.backend.describe()
        self.runs_on = {"backend": described["backend"], "device": described["device"]}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        metas, probs = [], []
        for i, raw in enumerate(batch["meta"]):
            meta = json.loads(str(raw))
            block_probs = np.zeros((0,), np.float32)  # a failed block passes through empty
            if "error" not in meta:
                tiles = np.asarray(batch["tiles"][i])
                started = time.perf_counter()
                chunks = [
                    sigmoid(self.lane.infer(tiles[k : k + self.batch])[:, 0], np.float32)
                    for k in range(0, len(tiles), self.batch)
                ]
                block_probs = np.concatenate(chunks) if chunks else block_probs
                meta["seconds"]["infer"] = time.perf_counter() - started
                meta["actor"], meta["tiles"], meta["runs_on"] = self.name, len(tiles), self.runs_on
            metas.append(json.dumps(meta))
            probs.append(block_probs)
        return {
            "meta": np.array(metas, dtype=object),
            "probs": _column(probs),
            "valid": batch["valid"],
            "empty": batch["empty"],
        }


def _column(arrays: list[np.ndarray]) -> np.ndarray:
    """A batch column of per-row arrays of any shapes (Ray Data stores them as ragged tensors)."""
    column = np.empty(len(arrays), dtype=object)
    column[:] = arrays
    return column


# ---- stage 3: blend and commit (CPU task) -----------------------------------------------------------


def _commit(path: Path, array: np.ndarray) -> None:
    """``array`` as ``path`` (.npy), atomically: a killed task leaves a hidden temp file at most."""
    atomic_write(path, lambda f: np.save(f, array))


def _blend_block(row: dict[str, Any]) -> dict[str, Any]:
    meta = json.loads(row["meta"])
    if "error" in meta:
        return {"meta": row["meta"]}
    started = time.perf_counter()
    block = Block(**meta["block"])
    grid = Grid(meta["height"], meta["width"], meta["tile"], meta["overlap"])
    probs, valid, empty = np.asarray(row["probs"]), np.asarray(row["valid"]), np.asarray(row["empty"])
    blender = BlockBlender(grid, block, masked=meta["masked"])
    j, zeros = 0, np.zeros((grid.tile, grid.tile), np.float32)
    for k, (y, x) in enumerate(meta["windows"]):
        window_valid = valid[k] if meta["masked"] else None
        if empty[k]:
            blender.add(y, x, zeros, window_valid)
        else:
            blender.add(y, x, probs[j], window_valid)
            j += 1
    prob, mask_valid = blender.result()
    mask, prob8 = encode_rows(prob, mask_valid, meta["threshold"], meta["probabilities"])
    folder = Path(meta["work"])
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / str(block.index)
    _commit(stem.with_suffix(".mask.npy"), mask)
    if prob8 is not None:
        _commit(stem.with_suffix(".prob.npy"), prob8)
    if mask_valid is not None:
        _commit(stem.with_suffix(".valid.npy"), mask_valid)
    meta["empty_windows"] = int(empty.sum())
    meta["seconds"]["blend"] = time.perf_counter() - started
    meta.pop("windows")
    atomic_write(stem.with_suffix(".done"), lambda f: f.write(json.dumps(meta).encode()))  # the block's marker
    return {"meta": json.dumps(meta)}


# ---- the driver -------------------------------------------------------------------------------------


@dataclass
class _SceneState:
    name: Path
    path: Path
    scene_meta: dict[str, Any]
    blocks: list[Block]
    done: set[int]
    failed: str | None = None


def _scene_plans(
    todo: list[Any], opts: InferOptions, info: ModelInfo, ray_opts: RayOptions, fail: Callable[[Path, str], None]
) -> list[_SceneState]:
    """Each scene's blocks, after resolving its conversion once (the same for all its blocks)."""
    states = []
    for inp in todo:
        try:
            scene = open_scene(inp.path, opts.radiometry, max_pixels=opts.max_pixels)
        except Exception as exc:  # noqa: BLE001 - any decoder error: report this file, go on
            fail(inp.path, read_failure(inp.path, exc))
            continue
        try:
            check_output_memory(inp.path, scene.height, scene.width, opts.fmt, opts.graph, opts.max_pixels)
        except UsageError as exc:
            scene.close()
            fail(inp.path, str(exc))
            continue
        try:
            blocks = plan_blocks(scene.height, scene.width, ray_opts.block)
            work = opts.out / WORK / inp.name
            done = {b.index for b in blocks if (work / f"{b.index}.done").is_file()} if opts.resume else set()
            if not opts.resume:
                shutil.rmtree(work, ignore_errors=True)
            meta = {
                "path": str(inp.path),
                "height": scene.height,
                "width": scene.width,
                "masked": scene.masked,
                "stretch": scene.stretch.as_dict(),
                "tile": info.tile,
                "overlap": opts.overlap or 0,
                "input_format": info.input_format,
                "threshold": opts.threshold,
                "probabilities": opts.probabilities,
                "work": str(work),
                "max_pixels": opts.max_pixels,
            }
            states.append(_SceneState(inp.name, inp.path, meta, blocks, done))
        finally:
            scene.close()
    return states


def _assemble(state: _SceneState, opts: InferOptions) -> list[Path]:
    """Feed the scene's committed blocks, strip by strip, to the single-machine writer."""
    work = Path(state.scene_meta["work"])
    path = state.path
    stretch = Stretch(**state.scene_meta["stretch"])
    scene: Scene = open_scene(path, cache={path: stretch}, max_pixels=opts.max_pixels)
    writer = MaskWriter(
        scene, opts.out / state.name, opts.fmt, opts.threshold, opts.probabilities, opts.max_pixels, opts.graph
    )
    try:
        rows_of: dict[int, list[Block]] = {}
        for b in state.blocks:
            rows_of.setdefault(b.row0, []).append(b)
        for row0, row_blocks in sorted(rows_of.items()):
            parts = [
                {
                    kind: np.load(work / f"{b.index}.{kind}.npy", mmap_mode="r")
                    for kind in ("mask", "prob", "valid")
                    if (work / f"{b.index}.{kind}.npy").is_file()
                }
                for b in sorted(row_blocks, key=lambda b: b.col0)
            ]
            for y in range(0, row_blocks[0].row1 - row0, STRIP):
                strips = {
                    kind: np.concatenate([np.asarray(part[kind][y : y + STRIP]) for part in parts], axis=1)
                    for kind in parts[0]
                }
                writer.write_encoded(row0 + y, strips["mask"], strips.get("prob"), strips.get("valid"))
        written = writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        scene.close()
    shutil.rmtree(work, ignore_errors=True)
    return written


def _prune_empty(root: Path) -> None:
    """Remove ``root`` and the folders under it that hold no block files any more."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def run_inference_ray(
    model: str | Path,
    opts: InferOptions,
    ray_opts: RayOptions,
    info: ModelInfo,
    progress: Callable[[int], None] = lambda n: None,
    on_start: Callable[[int], None] = lambda total: None,
) -> dict[str, Any]:
    """Run over ``opts.source`` on Ray (see the module docstring), holding the output folder's lock;
    returns the single-machine summary plus a ``ray`` section (blocks, actors and their throughput).
    """
    ray_opts = ray_opts.validate()
    opts = opts.validate(info)
    with FolderLock(ensure_writable_dir(opts.out)) as lock:
        return _run_ray(model, opts, ray_opts, info, progress, on_start, lock.stale_holder).to_json()


def _run_ray(
    model: str | Path,
    opts: InferOptions,
    ray_opts: RayOptions,
    info: ModelInfo,
    progress: Callable[[int], None],
    on_start: Callable[[int], None],
    stale_lock: Any,
) -> RunSummary:
    ray = _ray()
    todo, skipped, removed = plan_inputs(opts)
    failures: list[dict[str, str]] = []

    def fail(path: Path, message: str) -> None:
        failures.append({"file": gdal_path(path), "error": message})

    started = time.perf_counter()
    with streaming_gdal_cache():
        states = _scene_plans(todo, opts, info, ray_opts, fail)
    for state in states:  # a killed run's half-written block files
        for temp in Path(state.scene_meta["work"]).glob(".*.tmp"):
            temp.unlink(missing_ok=True)
            removed += 1
    items = [
        {"meta": json.dumps({**s.scene_meta, "block": vars(b), "scene": i})}
        for i, s in enumerate(states)
        for b in s.blocks
        if b.index not in s.done
    ]
    resumed = sum(len(s.done) for s in states)
    on_start(len(items) + resumed)
    progress(resumed)
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=ray_opts.address, ignore_reinit_error=True, log_to_driver=False)
    per_actor: dict[str, dict[str, float]] = {}
    stages = {"decode": 0.0, "infer": 0.0, "blend": 0.0, "write": 0.0, "overviews": 0.0}
    empty_windows = 0
    first_block_s: float | None = None
    outputs: list[str] = []
    files = pixels = 0
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the command draws its own bar of blocks
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-operator statistics go to the summary instead
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        per_actor_gpus = ray_opts.gpus_per_actor if ray_opts.gpus_per_actor is not None else (1 if gpus else 0)
        slots = (
            int(gpus // per_actor_gpus)
            if per_actor_gpus
            else int(ray.cluster_resources().get("CPU", 1) // max(ray_opts.cpus_per_actor, 1))
        )
        concurrency: int | tuple[int, int] = ray_opts.actors or (1, max(slots, 1))
        if items:
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            # Ray's defaults do the fault tolerance: tasks are retried when their worker dies (3 times),
            # Ray Data restarts dead actors and retries their tasks without limit
            ds = ds.map(_read_block, num_cpus=1)
            ds = ds.map_batches(
                _Infer,
                batch_size=1,
                batch_format="numpy",
                concurrency=concurrency,
                num_gpus=per_actor_gpus,
                num_cpus=ray_opts.cpus_per_actor,
                fn_constructor_kwargs={
                    "model": str(model),
                    "backend": ray_opts.backend,
                    "options": ray_opts.model,
                    "batch": opts.batch,
                },
            )
            ds = ds.map(_blend_block, num_cpus=1)
            for row in ds.iter_rows():
                meta = json.loads(row["meta"])
                state = states[meta["scene"]]
                if "error" in meta:
                    state.failed = state.failed or meta["error"]
                else:
                    state.done.add(meta["block"]["index"])
                    empty_windows += meta["empty_windows"]
                    first_block_s = first_block_s if first_block_s is not None else time.perf_counter() - started
                    for stage, seconds in meta["seconds"].items():
                        stages[stage] += seconds
                    actor = per_actor.setdefault(meta["actor"], {"tiles": 0, "seconds": 0.0, **meta["runs_on"]})
                    actor["tiles"] += meta.get("tiles", 0)
                    actor["seconds"] += meta["seconds"].get("infer", 0.0)
                progress(1)
    finally:
        if started_ray:
            ray.shutdown()
    for state in states:
        if state.failed or len(state.done) < len(state.blocks):
            fail(state.path, state.failed or f"{gdal_path(state.path)}: blocks missing after the run")
            continue
        t0 = time.perf_counter()
        try:
            outputs += [str(p) for p in _assemble(state, opts)]
        except Exception as exc:  # noqa: BLE001 - a write error fails this scene only
            fail(state.path, f"{gdal_path(state.path)}: could not write outputs ({exc})")
            continue
        stages["write"] += time.perf_counter() - t0
        files += 1
        pixels += state.scene_meta["height"] * state.scene_meta["width"]
    _prune_empty(opts.out / WORK)
    tiles = sum(int(actor["tiles"]) for actor in per_actor.values())
    wall = time.perf_counter() - started
    return RunSummary(
        model={
            "path": str(model),
            "kind": info.kind,
            "tile": info.tile,
            "precision": info.precision,
            "unverified": info.unverified,
            "backend": sorted({a["backend"] for a in per_actor.values()}) or [ray_opts.backend],
            "device": sorted({a["device"] for a in per_actor.values()}),
        },
        input=str(opts.source),
        output=str(opts.out),
        info=info,
        settings=opts.settings(info.tile, threads=False),
        radiometry=opts.radiometry.as_dict() if opts.radiometry else None,
        files=files,
        skipped_existing=skipped,
        removed_temp_files=removed,
        stale_lock=stale_lock,
        tiles=tiles,
        empty_windows=empty_windows,
        pixels=pixels,
        seconds=wall,
        stage_seconds=stages,
        failures=failures,
        outputs=outputs,
        ray={
            "address": ray_opts.address or "local",
            "block": ray_opts.block,
            "blocks": len(items),
            "blocks_resumed": resumed,
            "actors": {
                k: {
                    "tiles": v["tiles"],
                    "infer_seconds": round(v["seconds"], 3),
                    "backend": v["backend"],
                    "device": v["device"],
                    "tiles_per_s": v["tiles"] / v["seconds"] if v["seconds"] else None,
                }
                for k, v in per_actor.items()
            },
            "gpus_per_actor": per_actor_gpus if items else None,
            "first_block_s": round(first_block_s, 3) if first_block_s is not None else None,
        },
    )
