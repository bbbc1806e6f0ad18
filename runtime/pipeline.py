"""The tiled inference pipeline: decode threads -> batches across files -> K lanes -> blend -> write.

* Worker threads open scenes, cut windows and convert them (the shared radiometry, then the
  model's input format), feeding a bounded queue, so memory stays flat however many files there
  are. Windows with no valid pixel (nodata) are passed on empty and never reach the model.
* The scheduler (the calling thread) only batches windows across window and file boundaries,
  submits each batch to a free lane (K lanes = K CUDA streams for TensorRT), keeps at most 2K
  batches in flight and hands finished ones on, in submission order.
* Blend threads turn each scene's logits into probabilities and blend them into its
  :class:`Stitcher`; write threads encode the finished rows and write them, then finish the scene
  (atomic outputs, overviews, road graph). Each scene's blending and writing are a
  :class:`~.strands.Strand` each (serial, in order: the same sums and bytes as one thread), so
  scenes run in parallel while one scene's rows are still written top to bottom.
* Memory is bounded: ``4 x batch x K`` windows queued by the decoders, 2K batches on the lanes,
  ``batch x K`` tiles of logits waiting to be blended, and :data:`ROWS_BUFFERED` finished
  window rows per scene waiting to be written (each ``tile - overlap`` pixel rows of the scene).
* A bad input is reported and skipped; the rest completes. Finished outputs are skipped with
  ``resume``.

One module on purpose: the options, the producers, the per-scene state and the scheduler are one
protocol (who puts ``_DONE``, who finishes a scene) best read in one place.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.fileio import ensure_writable_dir, leftover_temps
from sam2ms.folder_lock import FolderLock
from sam2ms.geo.inputs import Input, input_folders, resolve_inputs
from sam2ms.geo.radiometry import Radiometry
from sam2ms.geo.rasters import Scene, gdal_path, open_scene, streaming_gdal_cache
from sam2ms.memory import limit_malloc_arenas
from sam2ms.metrics import sigmoid
from sam2ms.preprocess import model_input

from .backends import Backend, Lane, ModelInfo
from .scenes import FORMATS, GRAPH_FORMATS, MaskWriter, encode_rows, iter_windows, output_paths
from .strands import Budget, Strand, StrandPool
from .summary import RunSummary
from .tiling import Grid, Stitcher

_DONE = object()
#: Finished window rows of a scene waiting for its writer; the blend waits beyond that.
ROWS_BUFFERED = 2
#: What road graphs need (sam2ms[geo]): checked before the first tile, not after every scene's.
GRAPH_MODULES = ["skimage", "scipy", "networkx"]


#: The most windows per batch, lanes and decoding threads one run may ask for.
MAX_BATCH, MAX_STREAMS, MAX_WORKERS = 4096, 64, 256


@dataclass(frozen=True)
class InferOptions:
    """What one run does (the CLI maps its flags here); :meth:`validate` resolves and checks it."""

    source: str | Path  # resolved by sam2ms.geo.inputs: a file, folder, @list, STAC JSON, GDAL path or URL
    out: Path
    overlap: int | None = None  # None: tile // 8 (128 px for 1024 tiles)
    batch: int = 4
    streams: int = 1
    workers: int = 2
    threshold: float = 0.5
    fmt: str = "png"  # png | tif; geojson | graphml are short for png with that graph
    probabilities: bool = False
    graph: str | None = None  # geojson | graphml: also the road graph of each scene
    resume: bool = False
    radiometry: Radiometry | None = None  # None: the model's (from its sidecar/checkpoint), else the default
    stac_asset: str | None = None  # the asset of each STAC item to read (None: the item's only raster)
    max_pixels: int | None = None  # an image decoded or assembled whole (None: half the available memory)
    check_tiles: int = 8  # windows compared with ``--check-against``'s PyTorch reference

    def settings(self, tile: int, *, threads: bool = True) -> dict[str, Any]:
        """The summary's ``settings``: what shaped the outputs, and with ``threads`` the local run's
        lanes and decoders (a Ray run has actors instead).
        """
        local = {"streams": self.streams, "workers": self.workers} if threads else {}
        return {
            "tile": tile,
            "overlap": self.overlap,
            "batch": self.batch,
            **local,
            "threshold": self.threshold,
            "format": self.fmt,
            "probabilities": self.probabilities,
            "graph": self.graph,
        }

    def check_flags(self) -> InferOptions:
        """This object, once every value that needs no model is in range (counts, threshold, the
        overlap's sign, format names); a UsageError naming the flag otherwise. The CLI calls it
        before the model is opened, so a bad number costs no model load; :meth:`validate` calls it
        too. Side-effect free.
        """
        if self.fmt not in FORMATS + GRAPH_FORMATS:
            raise UsageError(f"--format {self.fmt}: use one of {', '.join(FORMATS + GRAPH_FORMATS)}")
        if self.graph is not None and self.graph not in GRAPH_FORMATS:
            raise UsageError(f"--graph {self.graph}: use one of {', '.join(GRAPH_FORMATS)}")
        for flag, value, most in (
            ("--batch", self.batch, MAX_BATCH),
            ("--streams", self.streams, MAX_STREAMS),
            ("--workers", self.workers, MAX_WORKERS),
            ("--check-tiles", self.check_tiles, None),
            ("--max-pixels", 1 if self.max_pixels is None else self.max_pixels, None),
        ):
            if value < 1 or (most is not None and value > most):
                raise UsageError(f"{flag} {value}: use 1 to {most}" if most else f"{flag} {value}: must be at least 1")
        if self.overlap is not None and self.overlap < 0:
            raise UsageError(f"--overlap {self.overlap}: must be at least 0")
        if not 0.0 < self.threshold < 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1")
        return self

    def validate(self, info: ModelInfo) -> InferOptions:
        """A copy with the defaults that depend on the model resolved; a UsageError for anything
        the model or the flags' own ranges do not allow (:meth:`check_flags`, then what depends on
        the model and the folders). Every range is checked here or there, none in the CLI, so a run
        built in Python is held to the same as one typed at a shell. Side-effect free (it reads the
        file system, to compare folders, and writes nothing).
        """
        self.check_flags()
        if self.fmt in GRAPH_FORMATS:  # the short form: a PNG mask and the graph
            return replace(self, fmt="png", graph=self.graph or self.fmt).validate(info)
        for module in (["rasterio"] if self.fmt == "tif" else []) + (GRAPH_MODULES if self.graph else []):
            require(module, f"--format {self.fmt}" + (f" --graph {self.graph}" if self.graph else ""))
        if info.max_lanes is not None and self.streams > info.max_lanes:
            raise UsageError(
                f"--streams {self.streams}: {Path(info.path).name} runs at most {info.max_lanes} "
                f"concurrent lane(s) here (PyTorch on the CPU has one); use --streams {info.max_lanes}"
            )
        if info.max_batch is not None and self.batch > info.max_batch:
            raise UsageError(
                f"--batch {self.batch}: the model's batch profile allows at most {info.max_batch} "
                f"(min {info.min_batch}); use a smaller --batch or re-export with a larger --batch "
                "profile"
            )
        overlap = default_overlap(info.tile) if self.overlap is None else self.overlap
        if overlap >= info.tile:
            raise UsageError(f"--overlap {overlap}: must be in [0, tile={info.tile})")
        out = Path(self.out).resolve()
        for folder in input_folders(self.source):
            if folder.resolve() == out or folder.resolve() in out.parents:
                raise UsageError(
                    f"-o {self.out}: inside the input folder {folder}, where the outputs would be read "
                    "as inputs by the next run; choose an output folder outside it"
                )
        radiometry = self.radiometry or Radiometry.from_dict(info.radiometry)
        return replace(self, overlap=overlap, radiometry=radiometry.validate())


@dataclass
class _SceneJob:
    """One input's state while its windows are in flight. ``stitcher``, ``remaining``, ``failed``
    and ``valid_windows`` belong to the scene's blend strand; the writer to its write strand.
    """

    path: Path
    scene: Scene
    grid: Grid
    writer: MaskWriter
    stitcher: Stitcher = field(init=False)
    blend: Strand = field(init=False)
    write: Strand = field(init=False)
    rows_waiting: Budget = field(default_factory=lambda: Budget(ROWS_BUFFERED))
    remaining: int = 0
    failed: str | None = None
    valid_windows: int = 0

    def __post_init__(self) -> None:
        self.remaining = len(self.grid)


@dataclass
class _Item:
    job: _SceneJob
    row: int
    y: int
    x: int
    tile: np.ndarray | None  # None: a window without valid pixels, never sent to the model
    valid: np.ndarray | None


#: The stages whose seconds the summary reports (summed over threads).
STAGES = ("decode", "normalise", "infer", "blend", "encode", "write", "overviews", "graph")


@dataclass
class Stats:
    """Seconds per stage (summed over threads), each thread's busy seconds, and counts, for the
    JSON summary.
    """

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    busy: dict[str, float] = field(default_factory=dict)  # thread name -> seconds at work
    files: int = 0
    skipped: int = 0
    tiles: int = 0
    empty_windows: int = 0
    pixels: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    conversions: list[dict[str, Any]] = field(default_factory=list)  # each scene's resolved bands, low, high
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` and to the calling thread's busy time (thread-safe)."""
        thread = threading.current_thread().name
        with self.lock:
            self.seconds[stage] += seconds
            self.busy[thread] = self.busy.get(thread, 0.0) + seconds


def read_failure(path: Path, exc: Exception) -> str:
    """Why an input could not be opened or read: a UsageError's own words, else the decoder's."""
    return str(exc) if isinstance(exc, UsageError) else f"{gdal_path(path)}: cannot read ({type(exc).__name__}: {exc})"


def _produce(
    inputs: list[Input],
    opts: InferOptions,
    tile: int,
    input_format: str,
    items: queue.Queue[Any],
    stats: Stats,
    fail: Callable[[Path, str], None],
    register: Callable[[_SceneJob], bool],
) -> None:
    """Worker thread: open scenes and queue their windows in the model's input format (row-major
    per scene). Always ends with ``_DONE``, also when it breaks, so the main loop never waits forever.
    """
    try:
        for inp in inputs:
            path = inp.path
            t0 = time.perf_counter()
            scene = None
            try:
                scene = open_scene(path, opts.radiometry, max_pixels=opts.max_pixels, stream=True)
                grid = Grid(scene.height, scene.width, tile, opts.overlap or 0)
                writer = MaskWriter(
                    scene,
                    opts.out / inp.name,
                    opts.fmt,
                    opts.threshold,
                    opts.probabilities,
                    opts.max_pixels,
                    opts.graph,
                )
                job = _SceneJob(path, scene, grid, writer)
            except Exception as exc:  # noqa: BLE001 - any decoder error: report this file, go on
                if scene is not None:
                    scene.close()
                fail(path, read_failure(path, exc))
                continue
            if not register(job):  # the run is being interrupted
                return
            stats.add("decode", time.perf_counter() - t0)
            queued = 0
            try:
                t0 = time.perf_counter()
                for row, y, x, window, valid in iter_windows(scene, grid):
                    t1 = time.perf_counter()
                    stats.add("decode", t1 - t0)
                    empty = valid is not None and not valid.any()
                    item = _Item(job, row, y, x, None if empty else model_input(window, input_format), valid)
                    stats.add("normalise", time.perf_counter() - t1)
                    items.put(item)
                    queued += 1
                    t0 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - a scene that breaks half-way fails alone
                items.put(_Abort(job, len(grid) - queued, f"{gdal_path(path)}: read failed at a window ({exc})"))
    finally:
        items.put(_DONE)


@dataclass
class _Abort:
    """A scene whose remaining windows will never come (read error half-way)."""

    job: _SceneJob
    missing: int
    message: str


def default_overlap(tile: int) -> int:
    """An eighth of the tile: 128 px for 1024² tiles."""
    return tile // 8


def plan_inputs(opts: InferOptions) -> tuple[list[Input], int, int]:
    """The inputs to run (sub-folders mirrored under ``out``), how many ``resume`` skips, and how
    many temporary files of an interrupted earlier run ``resume`` removed.
    """
    ensure_writable_dir(opts.out)
    inputs = resolve_inputs(opts.source, opts.stac_asset)
    outputs = {i: output_paths(opts.out / i.name, opts.fmt, opts.probabilities, opts.graph) for i in inputs}
    removed = 0
    if opts.resume:  # a killed run's half-written files: never outputs, never inputs
        for temp in (t for qs in outputs.values() for q in qs for t in leftover_temps(q)):
            temp.unlink(missing_ok=True)
            removed += 1
    todo = [i for i in inputs if not (opts.resume and all(q.is_file() for q in outputs[i]))]
    for i in todo:
        (opts.out / i.name).parent.mkdir(parents=True, exist_ok=True)
    return todo, len(inputs) - len(todo), removed


class _Scheduler:
    """One run: producer threads fill a bounded queue; the calling thread batches windows across
    files, keeps at most 2K batches in flight on K lanes and hands finished batches, in submission
    order, to each scene's blend strand; blend strands hand finished rows to write strands.
    """

    def __init__(
        self,
        backend: Backend,
        opts: InferOptions,
        stats: Stats,
        progress: Callable[[int], None],
        on_total: Callable[[int], None] = lambda total: None,
    ) -> None:
        self.backend, self.opts, self.stats, self.progress = backend, opts, stats, progress
        self._windows, self._on_total = 0, on_total  # windows of the scenes opened so far: the bar's total
        self.lanes: queue.Queue[Lane] = queue.Queue()
        for lane in backend.lanes(opts.streams):
            self.lanes.put(lane)
        self.items: queue.Queue[Any] = queue.Queue(maxsize=max(4 * opts.batch * opts.streams, 8))
        # one thread per scene that can be open at once (a scene per decoder, one finishing)
        self.blend_pool = StrandPool(opts.workers + 1, "sam2ms-blend")
        self.write_pool = StrandPool(opts.workers + 1, "sam2ms-write")
        self.to_blend = Budget(opts.batch * opts.streams)  # tiles of logits not yet blended
        self.waited = 0.0  # seconds the scheduler spent waiting (for windows, lanes or room downstream)
        # scenes whose outputs are being written, so that an interrupted run removes their temporary
        # files (finished outputs stay, and --resume redoes the rest byte for byte)
        self._live: dict[int, _SceneJob] = {}
        self._live_lock = threading.Lock()
        self._stopping = False
        self._crash: BaseException | None = None

    def register(self, job: _SceneJob) -> bool:
        """A producer's new scene (its windows join the progress total); False (and its writer
        dropped) once the run is interrupted.
        """
        # the stitcher's emit names what it needs, not the job (a job -> stitcher -> job cycle would
        # keep every finished scene's buffers until the garbage collector ran)
        job.blend, job.write = self.blend_pool.strand(), self.write_pool.strand()
        job.stitcher = Stitcher(
            job.grid, partial(self._emit, job.rows_waiting, job.write, job.writer), masked=job.scene.masked
        )
        with self._live_lock:
            if not self._stopping:
                self._live[id(job)] = job
                self._windows += len(job.grid)
                self._on_total(self._windows)
                return True
        job.writer.abort()
        return False

    def _abort_unfinished(self) -> None:
        """Drop the temporary files of every scene not yet written (Ctrl-C, SIGTERM, a crash), once
        the blend and write threads have stopped.
        """
        for pool in (self.blend_pool, self.write_pool):
            pool.stopped.set()
        for pool in (self.blend_pool, self.write_pool):
            pool.close()
        with self._live_lock:
            self._stopping = True
            jobs, self._live = list(self._live.values()), {}
        for job in jobs:
            job.writer.abort()

    def fail(self, path: Path, message: str) -> None:
        """Record a failed input (each input fails at most once and then counts as handled)."""
        with self.stats.lock:
            self.stats.failures.append({"file": str(path), "error": message})

    def _producer(self, *args: Any) -> None:
        """A decoder thread: :func:`_produce`, with what breaks it kept for the scheduler to raise."""
        try:
            _produce(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again in the scheduler's thread
            self._crash = exc

    def _run_batch(self, tiles: np.ndarray) -> np.ndarray:
        """A lane thread: one batch on a free lane."""
        lane = self.lanes.get()
        try:
            t0 = time.perf_counter()
            logits = lane.infer(tiles)
            self.stats.add("infer", time.perf_counter() - t0)
            return logits
        finally:
            self.lanes.put(lane)

    # --- the scheduler thread -------------------------------------------------------------------

    def _wait(self, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.waited += time.perf_counter() - t0

    def _collect(self, batch: list[_Item], future: Future[np.ndarray]) -> None:
        """Hand a finished batch to its scenes' blend strands (in submission order)."""
        logits = self._wait(future.result)
        self._wait(self.to_blend.take, len(batch), self.blend_pool.stopped)
        self.blend_pool.check()
        self.write_pool.check()
        start = 0
        for job, items in _by_scene(batch):
            job.blend.submit(self._blend, job, items, logits[start : start + len(items)])
            start += len(items)

    def _next_batch(self, producers_left: list[int]) -> list[_Item]:
        """Up to ``batch`` windows, across files; counts producers that finished."""
        batch: list[_Item] = []
        while len(batch) < self.opts.batch and producers_left[0]:
            item = self._wait(self.items.get)
            if item is _DONE:
                producers_left[0] -= 1
            elif isinstance(item, _Item) and item.tile is None:
                item.job.blend.submit(self._blend_empty, item)
            elif isinstance(item, _Abort):
                item.job.blend.submit(self._abort_scene, item)
            else:
                batch.append(item)
        return batch

    def run(self, todo: list[Input]) -> None:
        opts, tile = self.opts, self.backend.info.tile
        shards = [todo[i :: opts.workers] for i in range(opts.workers)]
        producers = [
            threading.Thread(
                target=self._producer,
                daemon=True,
                name=f"sam2ms-decode_{i}",
                args=(s, opts, tile, self.backend.info.input_format, self.items, self.stats, self.fail, self.register),
            )
            for i, s in enumerate(shards)
        ]
        for t in producers:
            t.start()
        inflight: deque[tuple[list[_Item], Future[np.ndarray]]] = deque()
        producers_left = [len(producers)]
        with ThreadPoolExecutor(max_workers=opts.streams, thread_name_prefix="sam2ms-lane") as pool:
            try:
                while producers_left[0]:
                    batch = self._next_batch(producers_left)
                    if batch:
                        tiles = np.stack([it.tile for it in batch if it.tile is not None])
                        inflight.append((batch, pool.submit(self._run_batch, tiles)))
                    while inflight and (len(inflight) >= 2 * opts.streams or inflight[0][1].done()):
                        self._collect(*inflight.popleft())
                while inflight:
                    self._collect(*inflight.popleft())
                for post in (self.blend_pool, self.write_pool):  # blends hand rows to writes: in this order
                    self._wait(post.close)
                    post.check()
                if self._crash is not None:  # a decoder thread broke (not a bad file: those are failures)
                    raise self._crash
            except BaseException:
                self._abort_unfinished()
                raise
        for t in producers:
            t.join()

    # --- blend strands: one scene's windows, in the order the scheduler collected them ----------

    def _blend(self, job: _SceneJob, items: list[_Item], logits: np.ndarray) -> None:
        t0 = time.perf_counter()
        probs = sigmoid(logits[:, 0], np.float32)
        for it, prob in zip(items, probs):
            job.stitcher.add(it.row, it.y, it.x, prob, it.valid)  # may emit rows (-> _emit)
        job.remaining -= len(items)
        job.valid_windows += len(items)
        self.to_blend.give(len(items))
        with self.stats.lock:
            self.stats.tiles += len(items)
        self.stats.add("blend", time.perf_counter() - t0)
        self.progress(len(items))
        self._finish_if_done(job)

    def _blend_empty(self, it: _Item) -> None:
        """A window with no valid pixels: zeros go into the blend (all of its pixels are masked in
        the output) and the model never sees it.
        """
        t = self.backend.info.tile
        it.job.stitcher.add(it.row, it.y, it.x, np.zeros((t, t), np.float32), it.valid)
        it.job.remaining -= 1
        with self.stats.lock:
            self.stats.empty_windows += 1
        self.progress(1)
        self._finish_if_done(it.job)

    def _abort_scene(self, abort: _Abort) -> None:
        """A scene whose read failed half-way: its missing windows never come."""
        abort.job.failed = abort.message
        abort.job.remaining -= abort.missing
        self.progress(abort.missing)
        self._finish_if_done(abort.job)

    def _finish_if_done(self, job: _SceneJob) -> None:
        if job.remaining == 0:
            job.write.submit(self._finish, job)

    def _emit(
        self,
        rows_waiting: Budget,
        write: Strand,
        writer: MaskWriter,
        y0: int,
        rows: np.ndarray,
        valid: np.ndarray | None,
    ) -> None:
        """The stitcher's finished rows, to the scene's write strand (waits while it is behind)."""
        rows_waiting.take(1, self.write_pool.stopped)
        write.submit(self._write_rows, rows_waiting, writer, y0, rows, valid)

    # --- write strands: one scene's rows top to bottom, then its outputs ------------------------

    def _write_rows(
        self, rows_waiting: Budget, writer: MaskWriter, y0: int, rows: np.ndarray, valid: np.ndarray | None
    ) -> None:
        try:
            t0 = time.perf_counter()
            mask, prob8 = encode_rows(rows, valid, self.opts.threshold, self.opts.probabilities)
            t1 = time.perf_counter()
            self.stats.add("encode", t1 - t0)
            writer.write_encoded(y0, mask, prob8, valid)
            self.stats.add("write", time.perf_counter() - t1)
        finally:
            rows_waiting.give(1)

    def _finish(self, job: _SceneJob) -> None:
        with self._live_lock:
            self._live.pop(id(job), None)
        t0 = time.perf_counter()
        if not job.failed and not job.valid_windows:
            job.failed = (
                f"{job.path}: no valid pixels (everything is nodata); check the raster's nodata value, "
                "alpha band or mask"
            )
        try:
            if job.failed:
                job.writer.abort()
                self.fail(job.path, job.failed)
                return
            try:
                written = job.writer.finish()
            except Exception as exc:  # noqa: BLE001 - a write error fails this scene only
                job.writer.abort()
                self.fail(job.path, f"{job.path}: could not write outputs ({exc})")
                return
            self.stats.add("overviews", job.writer.cog_seconds)
            self.stats.add("graph", job.writer.graph_seconds)
            with self.stats.lock:
                self.stats.outputs += [str(p) for p in written]
                self.stats.conversions.append({"file": gdal_path(job.path), **job.scene.stretch.as_dict()})
                self.stats.files += 1
                self.stats.pixels += job.scene.height * job.scene.width
        finally:
            job.scene.close()
            self.stats.add("write", time.perf_counter() - t0 - job.writer.cog_seconds - job.writer.graph_seconds)


def _by_scene(batch: list[_Item]) -> list[tuple[_SceneJob, list[_Item]]]:
    """A batch's windows as runs of consecutive windows of one scene, in batch order (the logits'
    order).
    """
    groups: list[tuple[_SceneJob, list[_Item]]] = []
    for it in batch:
        if groups and groups[-1][0] is it.job:
            groups[-1][1].append(it)
        else:
            groups.append((it.job, [it]))
    return groups


def thread_busy(busy: dict[str, float], wall: float) -> dict[str, dict[str, float]]:
    """Each thread's busy fraction of the wall time, by role (``scheduler``, ``decode``, ``lane``,
    ``blend``, ``write``): the mean over the role's threads and the busiest one. A role near 1 is
    what limits the run.
    """
    roles: dict[str, list[float]] = {}
    for name, seconds in busy.items():
        role = name.removeprefix("sam2ms-").split("_")[0]
        roles.setdefault(role, []).append(seconds / wall if wall else 0.0)
    return {
        role: {"threads": len(f), "mean": round(sum(f) / len(f), 3), "max": round(max(f), 3)}
        for role, f in sorted(roles.items())
    }


def run_inference(
    backend: Backend,
    opts: InferOptions,
    progress: Callable[[int], None] = lambda n: None,
    on_start: Callable[[int], None] = lambda total: None,
) -> dict[str, Any]:
    """Run over ``opts.source``; returns the JSON summary (``failures`` non-empty -> exit 1).
    Progress is counted in windows: ``on_start(total)`` is called as each scene is opened (the
    total grows with the scenes read), ``progress(n)`` as windows are done.
    """
    info = backend.info
    opts = opts.validate(info)
    limit_malloc_arenas()
    with FolderLock(ensure_writable_dir(opts.out)) as lock:
        todo, skipped, removed = plan_inputs(opts)
        stats = Stats(skipped=skipped)
        started = time.perf_counter()
        with streaming_gdal_cache():
            scheduler = _Scheduler(backend, opts, stats, progress, on_start)
            scheduler.run(todo)
        wall = time.perf_counter() - started
        stats.busy["scheduler"] = wall - scheduler.waited
    return RunSummary(
        model=backend.describe(),
        input=str(opts.source),
        output=str(opts.out),
        info=info,
        settings=opts.settings(info.tile),
        radiometry=opts.radiometry.as_dict() if opts.radiometry else None,
        files=stats.files,
        skipped_existing=stats.skipped,
        removed_temp_files=removed,
        stale_lock=lock.stale_holder,
        tiles=stats.tiles,
        empty_windows=stats.empty_windows,
        pixels=stats.pixels,
        seconds=wall,
        stage_seconds=stats.seconds,
        failures=stats.failures,
        outputs=stats.outputs,
        thread_busy=thread_busy(stats.busy, wall),
        conversions=stats.conversions,
    ).to_json()
