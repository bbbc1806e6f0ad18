"""sam2ms-infer --ray on a local Ray cluster (one per module: Ray takes seconds to start): the same
outputs as the single-machine runtime, bit for bit, scenes split into blocks or not; resume of
committed blocks; bad inputs failing alone.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_geo import uint16_scene, write_geotiff

from sam2ms.data.synth import render_road_scene

from conftest import has_module, run_cli
from pixelwise import pixelwise_onnx

pytestmark = pytest.mark.skipif(
    not (has_module("ray") and has_module("rasterio")),
    reason="ray or rasterio not installed (pip install 'sam2ms[ray,geo]')",
)


@pytest.fixture(scope="module", autouse=True)
def local_cluster() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code, out, err = run_cli(["infer", *args, "--json", "--quiet"], capsys)
    # The summary is the object that starts a line: in this process (not the CLI's own) a Ray
    # driver started by an earlier test may have printed before it (seen once under pytest-xdist).
    start = 0 if out.startswith("{") else out.find("\n{") + 1
    return code, (json.loads(out[start:]) if start or out.startswith("{") else {}), err + out[:start]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(pixelwise_onnx(tmp_path_factory.mktemp("model") / "px.onnx", 64))


@pytest.fixture()
def scenes(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    for i, (h, w) in enumerate([(300, 520), (40, 50), (130, 130)]):  # large, smaller than a tile, one block
        img, _ = render_road_scene(h, w, np.random.default_rng(i))
        (src / ("sub" if i == 1 else "")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(src / ("sub" if i == 1 else "") / f"s{i}.png")
    return src


@pytest.mark.parametrize("block", [256, 8192])
def test_png_outputs_equal_the_single_machine_run(
    model: str, scenes: Path, tmp_path: Path, block: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, one, err = _infer([model, str(scenes), "-o", str(tmp_path / "one"), "--probabilities"], capsys)
    assert code == 0, err
    code, summary, err = _infer(
        [model, str(scenes), "-o", str(tmp_path / "ray"), "--probabilities", "--ray", "local", "--block", str(block)],
        capsys,
    )
    assert code == 0, err
    assert summary["files"] == 3 and summary["failed"] == 0
    # one summary record (runtime/summary.py): the same keys, each run adding its own section
    assert set(summary) - {"ray"} == set(one) - {"thread_busy", "conversions"}
    assert summary["ray"]["blocks"] == (2 * 3 + 1 + 1 if block == 256 else 3)  # 300x520 in 256² blocks: 2 x 3
    assert sum(a["tiles"] for a in summary["ray"]["actors"].values()) == summary["tiles"] >= one["tiles"]
    assert summary["model"]["backend"] == [one["model"]["backend"]]  # where the actors ran it, as the one-machine run
    assert summary["model"]["device"] == [one["model"]["device"]]
    one_files, ray_files = (
        sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("*.png")) for d in ("one", "ray")
    )
    assert len(one_files) == 6 and one_files == ray_files
    for rel in one_files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes(), rel
    assert not (tmp_path / "ray" / ".sam2ms-blocks").exists()  # committed blocks removed once assembled


def test_geotiff_with_nodata_in_blocks_equals_the_single_machine_run(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import rasterio

    bands, _ = uint16_scene(300, 410, 4)
    bands[:, :60, :100] = 0  # a nodata corner, across two blocks
    write_geotiff(tmp_path / "in" / "scene.tif", bands, nodata=0, colorinterp=("blue", "green", "red", "undefined"))
    common = [model, str(tmp_path / "in"), "--format", "tif", "--probabilities"]
    assert _infer([*common, "-o", str(tmp_path / "one")], capsys)[0] == 0
    code, summary, err = _infer([*common, "-o", str(tmp_path / "ray"), "--ray", "local", "--block", "256"], capsys)
    assert code == 0 and summary["ray"]["blocks"] == 4, err
    for name in ("scene.mask.tif", "scene.prob.tif"):
        with rasterio.open(tmp_path / "one" / name) as a, rasterio.open(tmp_path / "ray" / name) as b:
            assert np.array_equal(a.read(), b.read()) and np.array_equal(a.read_masks(1), b.read_masks(1))
            assert a.crs == b.crs and a.transform == b.transform and a.overviews(1) == b.overviews(1)
            assert (a.read_masks(1)[:60, :100] == 0).all()


def test_resume_reuses_committed_blocks(
    model: str, scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that dies after the blocks of a scene were committed: ``--resume`` infers none of them
    again and writes the outputs of an undisturbed run.
    """
    import sam2ms.runtime.ray_pipeline as rp

    assert _infer([model, str(scenes), "-o", str(tmp_path / "one")], capsys)[0] == 0
    real = rp._assemble

    def dies_on_s0(state, opts):
        if state.name == Path("s0"):
            raise OSError("disk full")
        return real(state, opts)

    monkeypatch.setattr(rp, "_assemble", dies_on_s0)
    args = [model, str(scenes), "-o", str(tmp_path / "ray"), "--ray", "local", "--block", "256"]
    code, summary, _ = _infer(args, capsys)
    assert code == 1 and [f["file"] for f in summary["failures"]] == [str(scenes / "s0.png")]
    work = tmp_path / "ray" / ".sam2ms-blocks" / "s0"
    assert len(list(work.glob("*.done"))) == 6
    (work / ".0.mask.npy.x1y2.tmp").write_bytes(b"half")  # what a killed writer leaves
    monkeypatch.setattr(rp, "_assemble", real)
    code, summary, err = _infer([*args, "--resume"], capsys)
    assert code == 0, err
    assert summary["ray"]["blocks_resumed"] == 6 and summary["ray"]["blocks"] == 0 and summary["skipped_existing"] == 2
    assert summary["removed_temp_files"] == 1 and not work.exists()
    for f in (tmp_path / "one").rglob("*.png"):
        assert f.read_bytes() == (tmp_path / "ray" / f.relative_to(tmp_path / "one")).read_bytes(), f


def test_a_bad_input_fails_alone(model: str, scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scenes / "broken.png").write_bytes(b"not a png")
    code, summary, err = _infer([model, str(scenes), "-o", str(tmp_path / "ray"), "--ray", "local"], capsys)
    assert code == 1 and summary["files"] == 3 and [Path(f["file"]).name for f in summary["failures"]] == ["broken.png"]
    assert "Traceback" not in err


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sam2ms.deps import MissingDependency
    from sam2ms.runtime.ray_pipeline import _ray

    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingDependency, match=r"sam2ms\[ray\]"):
        _ray()


def _pids_titled(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc (Linux)")
@pytest.mark.parametrize("victim", ["_Infer", "_read_block"])
def test_a_killed_worker_is_replaced_and_the_outputs_are_whole(
    model: str, tmp_path: Path, victim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kill -9``, by PID, of the model actor's process (``_Infer``) or of a task worker reading
    a block (``_read_block``) the moment it appears mid-run: Ray restarts the actor or retries the
    task, and the outputs equal the single-machine run's.
    """
    import os
    import signal
    import threading
    import time

    from sam2ms.runtime.backends import open_model
    from sam2ms.runtime.pipeline import InferOptions
    from sam2ms.runtime.ray_pipeline import RayOptions, run_inference_ray

    img, _ = render_road_scene(1024, 1024, np.random.default_rng(7))
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "big.png")
    assert _infer([model, str(tmp_path / "in"), "-o", str(tmp_path / "one")], capsys)[0] == 0
    killed: list[int] = []
    earlier = set(_pids_titled(victim))  # workers of the tests before, not yet reaped
    stop = threading.Event()

    def kill_the_first() -> None:  # Ray titles a busy worker "ray::...(_Infer)" / "ray::Map(_read_block)"
        while not stop.is_set() and not killed:
            for pid in set(_pids_titled(victim)) - earlier:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.002)

    killer = threading.Thread(target=kill_the_first, daemon=True)
    killer.start()
    try:
        with open_model(model) as engine:
            summary = run_inference_ray(
                model, InferOptions(tmp_path / "in", tmp_path / "ray"), RayOptions(block=256, actors=1), engine.info
            )
    finally:
        stop.set()
        killer.join()
    assert killed and summary["failed"] == 0 and summary["files"] == 1 and summary["ray"]["blocks"] == 16
    if victim == "_Infer":
        workers = {int(name.rsplit(":", 1)[1]) for name in summary["ray"]["actors"]}
        assert workers - set(killed), (killed, workers)  # a restarted actor did (the rest of) the work
    assert (tmp_path / "one" / "big.mask.png").read_bytes() == (tmp_path / "ray" / "big.mask.png").read_bytes()


@pytest.mark.slow
def test_json_on_stdout_is_the_summary_alone_with_ray(model: str, scenes: Path, tmp_path: Path) -> None:
    """``--json --ray`` in a process of its own (its own Ray driver): stdout is one JSON document and
    nothing else, whatever Ray logs (to stderr), so ``sam2ms-infer ... --json | jq`` works.
    """
    import subprocess
    import sys

    infer = Path(sys.executable).with_name("sam2ms-infer")
    args = [str(infer), model, str(scenes), "-o", str(tmp_path / "ray"), "--ray", "local", "--json", "--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)  # the whole of stdout: no prefix, no trailing text
    assert summary["files"] == 3 and summary["failures"] == [] and "ray" in summary
