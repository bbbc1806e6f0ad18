"""The pipeline's threads: ordered strands, bounded stages, and outputs that do not depend on which
thread did what — checked with the synthetic engine (no model).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sam2ms.data.synth import render_road_scene
from sam2ms.fileio import save_png
from sam2ms.runtime import pipeline
from sam2ms.runtime.backends.synthetic_backend import SyntheticBackend, SyntheticLane
from sam2ms.runtime.pipeline import InferOptions, run_inference
from sam2ms.runtime.scenes import MaskWriter
from sam2ms.runtime.strands import Budget, StrandPool

from conftest import has_module

pytestmark = pytest.mark.core  # runs without torch: make test-core


def _scenes(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    for i, (h, w) in enumerate(sizes):
        image, _ = render_road_scene(h, w, np.random.default_rng(i), scale=0.5)
        save_png(folder / f"s{i}.png", image)
    return folder


def _digests(out: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


# --- strands -----------------------------------------------------------------------------------


def test_a_strand_runs_its_tasks_in_order_and_strands_in_parallel() -> None:
    pool = StrandPool(3, "t")
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    running, most = [0], [0]
    lock = threading.Lock()

    def task(strand: int, i: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(random.random() / 500)
        seen[strand].append(i)
        with lock:
            running[0] -= 1

    strands = [pool.strand() for _ in range(3)]
    for i in range(40):
        for n, strand in enumerate(strands):
            strand.submit(task, n, i)
    pool.close()
    assert all(seen[n] == list(range(40)) for n in seen)
    assert most[0] > 1  # different strands overlapped


def test_a_failing_task_is_raised_by_the_owner_and_drops_later_tasks() -> None:
    pool = StrandPool(2, "t")
    strand, ran = pool.strand(), list[int]()

    def boom() -> None:
        raise ValueError("bad row")

    strand.submit(ran.append, 1)
    strand.submit(boom)
    strand.submit(ran.append, 3)
    pool.close()
    assert ran == [1]
    with pytest.raises(ValueError, match="bad row"):
        pool.check()


def test_a_budget_blocks_until_there_is_room() -> None:
    budget, order = Budget(4), []
    budget.take(3)

    def late() -> None:
        budget.take(2)
        order.append("taken")

    t = threading.Thread(target=late)
    t.start()
    time.sleep(0.05)
    order.append("give")
    budget.give(3)
    t.join(2)
    assert order == ["give", "taken"] and budget.used == 2
    budget.give(2)
    budget.take(10)  # larger than the limit: goes once the stage is empty
    assert budget.used == 10


# --- the synthetic engine ----------------------------------------------------------------------


def test_the_synthetic_engine_is_a_function_of_its_input() -> None:
    backend = SyntheticBackend(64, engine_ms=1.0, gil_fraction=0.5)
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    a, b = backend.lanes(2)
    first = a.infer(tiles)
    assert first.shape == (6, 1, 64, 64) and first.dtype == np.float32
    assert np.array_equal(first[::-1], b.infer(tiles[::-1]))
    roads = (first > 0).mean()
    assert 0.01 < roads < 0.5  # drawn roads, not noise: a minority of pixels
    with pytest.raises(ValueError, match="gil_fraction"):
        SyntheticBackend(64, gil_fraction=1.5)


# --- the pipeline --------------------------------------------------------------------------------


class _JitteryLane(SyntheticLane):
    """Finishes batches in a random order across lanes."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(random.random() / 100)
        return super().infer(batch)


FORMATS: list[dict[str, Any]] = [dict(fmt="png"), dict(fmt="png", probabilities=True)]
if has_module("networkx") and has_module("skimage"):  # road graphs: [geo]
    FORMATS.append(dict(fmt="geojson"))
if has_module("rasterio"):
    FORMATS += [dict(fmt="tif", probabilities=True), dict(fmt="tif", graph="graphml")]


@pytest.mark.parametrize("kw", FORMATS, ids=lambda kw: "+".join(str(v) for v in kw.values()))
def test_outputs_do_not_depend_on_lanes_threads_or_timing(tmp_path: Path, kw: dict) -> None:
    src = _scenes(tmp_path / "in", [(300, 260), (140, 200), (60, 50)])
    calm = SyntheticBackend(64)
    run_inference(calm, InferOptions(src, tmp_path / "calm", batch=1, streams=1, workers=1, overlap=16, **kw))
    jittery = SyntheticBackend(64)
    jittery._lanes = [_JitteryLane(jittery._logits, 0.0, 0.0) for _ in range(3)]
    summary = run_inference(
        jittery, InferOptions(src, tmp_path / "busy", batch=3, streams=3, workers=3, overlap=16, **kw)
    )
    assert summary["failed"] == 0 and summary["files"] == 3
    assert _digests(tmp_path / "calm") == _digests(tmp_path / "busy")


def test_rows_are_written_top_to_bottom_off_the_scheduler_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _scenes(tmp_path / "in", [(400, 300), (330, 200)])
    calls: list[tuple[str, str, int, int]] = []
    write = MaskWriter.write_encoded

    def recording(self: MaskWriter, y0: int, mask: np.ndarray, *rest: object) -> None:
        calls.append((self.scene.path.name, threading.current_thread().name, y0, len(mask)))
        write(self, y0, mask, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(MaskWriter, "write_encoded", recording)
    summary = run_inference(SyntheticBackend(64), InferOptions(src, tmp_path / "out", batch=2, overlap=8))
    assert summary["files"] == 2
    for name, height in (("s0.png", 400), ("s1.png", 330)):
        rows = [(y0, n) for scene, _, y0, n in calls if scene == name]
        assert [y0 for y0, _ in rows] == list(np.cumsum([0] + [n for _, n in rows[:-1]]))
        assert sum(n for _, n in rows) == height
    assert {thread.split("_")[0] for _, thread, _, _ in calls} == {"sam2ms-write"}
    roles = summary["thread_busy"]
    assert {"scheduler", "decode", "lane", "blend", "write"} <= set(roles)
    assert all(0.0 <= r["mean"] <= r["max"] <= 1.0 + 1e-6 for r in roles.values())


def test_a_slow_writer_holds_back_the_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure: with the writer slow, logits waiting to be blended and rows waiting to be
    written stay within their bounds instead of piling up.
    """
    src = _scenes(tmp_path / "in", [(600, 600)])
    most: dict[int, int] = {}
    take = Budget.take

    def recording(self: Budget, n: int = 1, abandon: threading.Event | None = None) -> None:
        take(self, n, abandon)
        most[self.limit] = max(most.get(self.limit, 0), self.used)

    write = MaskWriter.write_encoded

    def slow(self: MaskWriter, *args: object) -> None:
        time.sleep(0.05)
        write(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Budget, "take", recording)
    monkeypatch.setattr(MaskWriter, "write_encoded", slow)
    batch, streams = 3, 2
    summary = run_inference(
        SyntheticBackend(64), InferOptions(src, tmp_path / "out", batch=batch, streams=streams, overlap=8)
    )
    assert summary["tiles"] == 121
    assert most[batch * streams] <= batch * streams  # tiles of logits not yet blended: a batch per lane
    assert most[pipeline.ROWS_BUFFERED] <= pipeline.ROWS_BUFFERED  # window rows not yet written


def test_an_error_in_a_writer_thread_stops_the_run_and_leaves_no_stage_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _scenes(tmp_path / "in", [(300, 300), (300, 300), (300, 300)])

    def broken(*args: object) -> None:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(pipeline, "encode_rows", broken)
    fmt = "tif" if has_module("rasterio") else "png"
    with pytest.raises(RuntimeError, match="encoder bug"):
        run_inference(SyntheticBackend(64), InferOptions(src, tmp_path / "out", fmt=fmt))
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
