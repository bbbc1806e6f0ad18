"""INT8 calibration: reader, methods, Q/DQ placement, cache, auto-exclude, TensorRT acceptance."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from sam2ms.calib.data import TileReader, calibration_images, sample_windows
from sam2ms.calib.quantize import OrtQuantizer
from sam2ms.calib.sensitivity import layer_units, rank_units, smallest_passing
from sam2ms.data.synth import render_road_scene
from sam2ms.errors import UsageError
from sam2ms.preprocess import normalize

from conftest import has_module


@pytest.fixture(scope="module")
def fp32_onnx(trained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam2ms.export.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("int8")
    run_export(ExportOptions(ckpt=trained_nano, out=out, tile=64, onnx_only=True, check=False))
    return out / "model.onnx"


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("calib")
    for i, (h, w) in enumerate([(64, 64), (64, 64), (130, 200)]):  # two tiles and a scene
        Image.fromarray(render_road_scene(h, w, np.random.default_rng(i))[0]).save(d / f"s{i}.png")
    return d


def calibration_tiles(source: Path, tile: int, count: int, seed: int = 0, on_skip=lambda p, m: None) -> np.ndarray:
    return sample_windows(calibration_images(source), tile, [count], seed, on_skip)[0]


def quantize_int8(
    fp32: Path,
    out: Path,
    *,
    reader: TileReader | None,
    method: str = "minmax",
    tiles: int = 0,
    cache: Path | None = None,
    bar: object = None,
) -> dict:
    """Calibrate (or read the cache) and write the Q/DQ model; returns what the sidecar records."""
    with OrtQuantizer(fp32, method, tiles=tiles, cache=cache) as quantizer:
        quantizer.calibrate(reader, bar)  # type: ignore[arg-type]
        quantizer.write(out)
        return quantizer.facts()


def test_reader_samples_tiles_and_scenes(calib_dir: Path) -> None:
    skipped = []
    (calib_dir / "zz_broken.png").write_bytes(b"x")
    try:
        tiles = calibration_tiles(calib_dir, 64, 6, seed=1, on_skip=lambda p, m: skipped.append(p.name))
    finally:
        (calib_dir / "zz_broken.png").unlink()
    assert tiles.shape == (6, 64, 64, 3) and tiles.dtype == np.uint8  # RGB windows as read
    assert skipped == ["zz_broken.png"]
    assert np.array_equal(tiles, calibration_tiles(calib_dir, 64, 6, seed=1))  # seeded
    assert not np.array_equal(tiles, calibration_tiles(calib_dir, 64, 6, seed=2))
    reader = TileReader(tiles, 4, "float32")
    batches = list(iter(reader.get_next, None))
    assert [len(b["image"]) for b in batches] == [4, 2]
    assert batches[0]["image"].shape == (4, 3, 64, 64) and batches[0]["image"].dtype == np.float32  # normalised
    assert np.array_equal(next(iter(TileReader(tiles, 6, "uint8").get_next, None))["image"], tiles)
    with pytest.raises(UsageError, match="usable 64px tiles"):
        calibration_tiles(calib_dir, 64, 100)


def test_calibration_reads_images_never_labels(tmp_path: Path) -> None:
    """A dataset folder (the README's DeepGlobe example, sam2ms synth's images/ + masks/) gives its
    images only; a plain folder leaves out files named as labels; both say what they left out.
    """
    from sam2ms.calib.data import calibration_images
    from sam2ms.data.synth import write_synthetic_dataset

    image, label = render_road_scene(64, 64, np.random.default_rng(0))
    dg = tmp_path / "dg" / "train"
    dg.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(image).save(dg / f"{i}_sat.jpg")
        Image.fromarray(label.astype(np.uint8) * 255).save(dg / f"{i}_mask.png")
    found = calibration_images(tmp_path / "dg")
    assert (found.layout, found.labels_left_out) == ("deepglobe", 3)
    assert sorted(p.name for p in found.files) == ["0_sat.jpg", "1_sat.jpg", "2_sat.jpg"]
    assert "3 image(s) of a deepglobe dataset" in found.describe() and "3 label files left out" in found.describe()
    synth = write_synthetic_dataset(tmp_path / "synth", count=4, size=64, seed=1)
    found = calibration_images(synth)
    assert (found.layout, len(found.files), found.labels_left_out) == ("folder", 4, 4)
    assert all(p.parent.name == "images" for p in found.files)
    plain = tmp_path / "plain"
    for folder in ("images", "masks", "labels"):
        (plain / "scenes" / folder).mkdir(parents=True)
    for name in (
        "a.png",
        "a_mask.png",
        "internal_mask.png",
        "scenes/images/b.png",
        "scenes/masks/b.png",
        "scenes/labels/c.png",
    ):
        Image.fromarray(image).save(plain / name)
    found = calibration_images(plain)  # a_mask is a's label, masks/ sits beside images/; the others are images
    assert found.layout == "scenes" and found.labels_left_out == 3
    assert sorted(str(p.relative_to(plain)) for p in found.files) == [
        "a.png",
        "internal_mask.png",
        "scenes/images/b.png",
    ]
    assert [p.name for p in calibration_images(tmp_path / "dg", "scenes").files] == [
        "0_sat.jpg",
        "1_sat.jpg",
        "2_sat.jpg",
    ]  # each *_mask beside its *_sat
    with pytest.raises(UsageError, match="layout 'folder' needs"):
        calibration_images(plain, "folder")
    with pytest.raises(UsageError, match="--layout cityscapes"):
        calibration_images(plain, "cityscapes")


def test_qdq_placement_cache_and_refusal(fp32_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    tiles = calibration_tiles(calib_dir, 64, 6)
    cache = tmp_path / "calib.json"
    info = quantize_int8(fp32_onnx, tmp_path / "a.onnx", reader=TileReader(tiles, 2, "uint8"), tiles=6, cache=cache)
    assert not info["cache_hit"] and cache.is_file()
    again = quantize_int8(fp32_onnx, tmp_path / "b.onnx", reader=None, tiles=6, cache=cache)
    assert again["cache_hit"]
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()  # bit-identical
    model = onnx.load(str(tmp_path / "a.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax", "Erf"):
            source = producer.get(node.input[0])
            assert source is None or source.op_type != "DequantizeLinear", node.name
    zero_points = [t for t in model.graph.initializer if "zero_point" in t.name]
    assert zero_points and all(not onnx.numpy_helper.to_array(t).any() for t in zero_points)  # symmetric
    excluded = set(info["excluded_nodes"])
    assert any("attention" in n or "MatMul" in n for n in excluded) and any("conv" in n.lower() for n in excluded)
    # A cache made for another model is refused.
    other = tmp_path / "other.onnx"
    m = onnx.load(str(fp32_onnx))
    m.doc_string = "another model"
    onnx.save(m, other)
    with pytest.raises(UsageError, match="made for another model"):
        quantize_int8(other, tmp_path / "c.onnx", reader=None, tiles=6, cache=cache)


def _weight_extent(path: Path) -> int:
    """The largest |q| among the INT8 weights (constant inputs of DequantizeLinear)."""
    model = onnx.load(str(path))
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = [
        consts[n.input[0]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and consts.get(n.input[0], np.zeros(0)).dtype == np.int8
    ]
    assert weights
    return max(int(np.abs(w.astype(np.int32)).max()) for w in weights)


def test_reduce_range_writes_7_bit_weights(fp32_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from sam2ms.calib.quantize import OrtQuantizer, open_quantizer

    reader = TileReader(calibration_tiles(calib_dir, 64, 2), 2, "uint8")
    with OrtQuantizer(fp32_onnx, tiles=2) as quantizer:
        quantizer.calibrate(reader)
        quantizer.write(tmp_path / "w8.onnx")
        assert quantizer.facts()["weight_bits"] == 8
    reader.rewind()
    with OrtQuantizer(fp32_onnx, tiles=2, reduce_range=True) as quantizer:
        quantizer.calibrate(reader)
        quantizer.write(tmp_path / "w7.onnx")
        assert quantizer.facts()["weight_bits"] == 7
    assert _weight_extent(tmp_path / "w8.onnx") == 127 and _weight_extent(tmp_path / "w7.onnx") <= 64
    with pytest.raises(UsageError, match="--reduce-range works with --quantizer ort"):
        open_quantizer("modelopt", fp32_onnx, "minmax", reduce_range=True)


@pytest.mark.skipif(not has_module("tensorrt_rtx"), reason="tensorrt_rtx not installed (pip install 'sam2ms[rtx]')")
def test_int8_plan_builds_with_tensorrt_rtx(fp32_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from sam2ms.export.tensorrt_build import build_plan

    quantize_int8(
        fp32_onnx, tmp_path / "int8.onnx", reader=TileReader(calibration_tiles(calib_dir, 64, 4), 2, "uint8"), tiles=4
    )
    facts = build_plan(
        tmp_path / "int8.onnx",
        tmp_path / "int8.plan",
        builder="tensorrt_rtx",
        shapes=[[1, 64, 64, 3], [1, 64, 64, 3], [2, 64, 64, 3]],
        workspace=1 << 30,
        targets=["sm89"],
    )
    assert facts["builder"] == "tensorrt_rtx" and (tmp_path / "int8.plan").stat().st_size > 10_000


def test_calibrate_command(
    fp32_onnx: Path,
    calib_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sam2ms import accuracy

    from conftest import run_cli

    args = [
        "calibrate",
        str(fp32_onnx),
        "--calib-data",
        str(calib_dir),
        "--calib-batches",
        "2",
        "--calib-batch-size",
        "2",
        "--holdout",
        "3",
        "-o",
        str(tmp_path / "q"),
        "--json",
    ]
    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)
    monkeypatch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    summary = json.loads(out)
    side = json.loads((tmp_path / "q" / "model.int8.onnx.json").read_text())
    assert side["precision"] == "int8" and side["tile"] == 64
    acc = side["accuracy_vs_fp32"]
    assert acc["tiles"] == 3 and {"mask_iou", "f1", "miou", "max_abs", "f1_drop", "apls"} <= set(acc)
    assert 0 <= acc["apls_min"] <= acc["apls"] <= 1  # the INT8 masks' road graphs against FP32's
    assert 0 <= acc["topo_f1"] <= 1 and {"topo_precision", "topo_recall"} <= set(acc)
    assert summary["calibration"]["calibration_tiles"] == 4
    assert summary["calibration"]["data"] == {
        "source": str(calib_dir),
        "layout": "scenes",
        "images": 3,
        "labels_left_out": 0,
    }
    # The INT8 ONNX runs in the runtime like any other model.
    code, out, err = run_cli(
        ["infer", str(tmp_path / "q" / "model.int8.onnx"), str(calib_dir), "-o", str(tmp_path / "masks"), "--json"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["files"] == 3 and (tmp_path / "masks" / "s2.mask.png").is_file()
    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 1.01)  # impossible: must exit 3, files still written
    code, _, err = run_cli(args, capsys)
    assert code == 3 and "INT8 accuracy target missed" in err
    assert json.loads((tmp_path / "q" / "model.int8.onnx.json").read_text())["accuracy_vs_fp32"]["passed"] is False
    code, _, err = run_cli(
        ["infer", str(tmp_path / "q" / "model.int8.onnx"), str(calib_dir), "-o", str(tmp_path / "masks")], capsys
    )
    assert code == 2 and "INT8 missed its accuracy target" in err  # never deployed silently


def test_calibrate_refusals(
    fp32_onnx: Path, calib_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import run_cli

    out = ["-o", str(tmp_path / "q")]
    for args, msg in [
        ([str(fp32_onnx)], "--calib-data DIR is required"),
        ([str(fp32_onnx), "--calib-data", str(calib_dir), "--calib-method", "kl"], "--calib-method"),
        ([str(tmp_path / "none.onnx"), "--calib-data", str(calib_dir)], "not found"),
        ([str(fp32_onnx), "--calib-data", str(calib_dir), "--calib-batches", "50"], "usable 64px tiles"),
        ([str(fp32_onnx), "--calib-data", str(calib_dir), "--quantizer", "tvm"], "--quantizer tvm"),
    ]:
        code, _, err = run_cli(["calibrate", *args, *out], capsys)
        assert code == 2 and msg in err and "Traceback" not in err, (args, err)


@pytest.mark.slow
@pytest.mark.skipif(not has_module("tensorrt_rtx"), reason="tensorrt_rtx not installed (pip install 'sam2ms[rtx]')")
def test_export_int8_builds_the_plan_from_qdq(
    trained_nano: Path,
    calib_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sam2ms import accuracy

    from conftest import run_cli

    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)
    monkeypatch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
    code, out, err = run_cli(
        [
            "export",
            "--ckpt",
            str(trained_nano),
            "--tile",
            "64",
            "--int8",
            "--calib-data",
            str(calib_dir),
            "--calib-batches",
            "1",
            "--batch",
            "1:1:2",
            "--target",
            "sm89",
            "--builder",
            "tensorrt_rtx",
            "--check-tiles",
            "1",
            "-o",
            str(tmp_path),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    side = json.loads((tmp_path / "engine.plan.json").read_text())
    assert side["precision"] == "int8" and side["onnx"]["file"] == "model.int8.onnx"
    assert [a["precision"] for a in json.loads(out)["artifacts"]] == ["fp32", "int8", "int8"]
    code, _, err = run_cli(["export", "--ckpt", str(trained_nano), "--int8", "-o", str(tmp_path / "x")], capsys)
    assert code == 2 and "--calib-data DIR is required (also with --int8)" in err
    code, _, err = run_cli(
        [
            "export",
            "--ckpt",
            str(trained_nano),
            "--int8",
            "--calib-data",
            str(calib_dir),
            "--builder",
            "tensorrt_rtx",
            "--target",
            "sm75,sm89",
            "-o",
            str(tmp_path / "x"),
        ],
        capsys,
    )
    assert code == 2 and "--target sm75: no INT8 plan" in err


def test_each_method_gives_its_own_ranges(
    fp32_onnx: Path, calib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entropy and percentile must clip ranges, not silently fall back to minmax (ORT's default
    entropy histogram has a single candidate threshold). 512 histogram bins instead of 2048: ORT's
    KL search costs ~220 s on 2 cores at 2048 bins, and the point holds at any size above 128.
    """
    from sam2ms.calib import quantize

    for method in ("entropy", "percentile"):
        fewer_bins = {**quantize.CALIBRATOR_OPTIONS[method], "num_bins": 512}
        monkeypatch.setitem(quantize.CALIBRATOR_OPTIONS, method, fewer_bins)
    tiles = calibration_tiles(calib_dir, 64, 4)
    scales = {}
    lines: dict[str, list] = {}

    class Lines:  # the calibration's progress display: the entropy search adds a line, one step a tensor
        def __init__(self, method: str) -> None:
            self.method = method

        def line(self, label: str, total: int) -> object:
            steps = lines.setdefault(self.method, [label, total, 0])
            return type("Line", (), {"advance": lambda _self, n=1: steps.__setitem__(2, steps[2] + n)})()

    for method in ("minmax", "entropy", "percentile"):
        cache = tmp_path / f"{method}.json"
        quantize_int8(
            fp32_onnx,
            tmp_path / f"{method}.onnx",
            reader=TileReader(tiles, 2, "uint8"),
            method=method,
            tiles=4,
            cache=cache,
            bar=Lines(method),
        )
        scales[method] = json.loads(cache.read_text())["scales"]
    label, total, steps = lines["entropy"]
    assert set(lines) == {"entropy"} and total == steps > 10 and label == f"entropy thresholds of {total} tensors"
    assert scales["minmax"].keys() == scales["entropy"].keys() == scales["percentile"].keys()
    for method in ("entropy", "percentile"):
        ratio = [scales[method][k] / scales["minmax"][k] for k in scales["minmax"] if scales["minmax"][k] > 0]
        assert max(ratio) <= 1.0 + 1e-6 and min(ratio) < 0.99, method  # clipped inside the observed range


def test_layer_units_and_ranking() -> None:
    names = [f"n{i}" for i in range(10)]
    units = layer_units(names, max_units=4)
    assert [n for u in units for n in u] == names and len(units) <= 4
    ranked = rank_units(units, lambda nodes: float(max(int(n[1:]) for n in nodes)))
    assert next(r["nodes"] for r in ranked) == units[-1] and ranked[-1]["nodes"] == units[0]


def test_smallest_passing_search() -> None:
    calls: list[int] = []

    def at_least(n: int):
        def passes(k: int) -> bool:
            calls.append(k)
            return k >= n

        return passes

    for count, need in [(40, 1), (40, 5), (40, 17), (40, 40), (1, 1), (7, 6)]:
        calls.clear()
        assert smallest_passing(count, at_least(need)) == need, (count, need)
        assert len(calls) <= 2 * max(1, count).bit_length() + 1
    assert smallest_passing(40, at_least(41)) is None
    assert smallest_passing(0, at_least(0)) is None


@pytest.fixture(scope="module")
def toy_onnx(calib_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small FP32 conv net with its sidecar whose masks are half road, half background, so INT8
    flips pixels (the tiny trained nano sees no roads at 64 px, and agrees perfectly).
    """
    import torch

    from sam2ms.artifacts import write_sidecar

    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU()]
    for _ in range(5):
        layers += [torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Conv2d(16, 1, 1)).eval()
    tiles = torch.from_numpy(normalize(calibration_tiles(calib_dir, 64, 4)))  # a float32-input model
    with torch.no_grad():
        net[-1].bias -= net(tiles).median()
    path = tmp_path_factory.mktemp("toy") / "model.onnx"
    torch.onnx.export(
        net,
        (tiles[:1],),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamo=False,
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    write_sidecar(path, {"kind": "onnx", "precision": "fp32", "tile": 64, "model": "toy"})
    return path


def test_auto_exclude_keeps_sensitive_layers_in_float(
    toy_onnx: Path, calib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms import accuracy
    from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
    from sam2ms.errors import CheckFailed

    from conftest import run_cli

    opts = CalibrateOptions(
        onnx=toy_onnx, calib_data=calib_dir, out=tmp_path / "q", batches=2, batch_size=2, holdout=3, progress=False
    )
    try:
        plain = run_calibrate(opts)
    except CheckFailed as exc:  # the all-INT8 report, whether it passed or not
        assert exc.summary is not None
        plain = exc.summary
    # A target just above what all-INT8 reaches: the search must keep some layers in float.
    target = plain["accuracy_vs_fp32"]["mask_iou"]
    assert target < 1.0
    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", min(1.0, target + (1 - target) / 2))
    monkeypatch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
    summary = run_calibrate(replace(opts, auto_exclude=True))
    search = summary["calibration"]["auto_exclude"]
    kept = [n for unit in search["kept_float"] for n in unit["nodes"]]
    units = len(search["kept_float"])
    assert kept and summary["accuracy_vs_fp32"]["passed"] and search["kept_layers"] == len(kept)
    assert summary["accuracy_vs_fp32"]["mask_iou"] > target
    assert any(t["passed"] and t["units_in_float"] == units for t in search["trials"])
    assert all(not t["passed"] for t in search["trials"] if t["units_in_float"] < units)  # the fewest
    errors = [u["error"] for u in search["kept_float"]]
    assert errors == sorted(errors, reverse=True) and all(
        len(u["modules"]) == len(u["nodes"]) for u in search["kept_float"]
    )
    assert all(m.split(".")[0].isdigit() for u in search["kept_float"] for m in u["modules"])  # torch names: "3"
    model = onnx.load(str(tmp_path / "q" / "model.int8.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.name in kept:  # its activations reach it unquantised
            assert all(producer[i].op_type != "DequantizeLinear" for i in node.input if i in producer), node.name
    side = json.loads((tmp_path / "q" / "model.int8.onnx.json").read_text())
    assert set(kept) <= set(side["calibration"]["excluded_nodes"])
    code, out, err = run_cli(
        [
            "calibrate",
            str(toy_onnx),
            "--calib-data",
            str(calib_dir),
            "--calib-batches",
            "2",
            "--calib-batch-size",
            "2",
            "--holdout",
            "3",
            "--auto-exclude",
            "-o",
            str(tmp_path / "c"),
        ],
        capsys,
    )
    assert code == 0 and f"--auto-exclude kept {len(kept)} of" in out, err


@pytest.mark.skipif(has_module("modelopt"), reason="NVIDIA ModelOpt is installed: the missing-library message is moot")
def test_modelopt_missing_is_a_clear_error(
    fp32_onnx: Path, calib_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import run_cli

    code, _, err = run_cli(
        [
            "calibrate",
            str(fp32_onnx),
            "--calib-data",
            str(calib_dir),
            "--quantizer",
            "modelopt",
            "--calib-batches",
            "1",
            "--holdout",
            "1",
            "-o",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2 and "pip install 'nvidia-modelopt[onnx]'" in err and "Traceback" not in err


@pytest.mark.skipif(
    not has_module("modelopt"),
    reason="NVIDIA ModelOpt not installed (pip install 'nvidia-modelopt[onnx]', in its own environment)",
)
def test_modelopt_quantizer(toy_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
    from sam2ms.errors import CheckFailed

    opts = CalibrateOptions(
        onnx=toy_onnx,
        calib_data=calib_dir,
        out=tmp_path,
        batches=2,
        batch_size=2,
        holdout=2,
        quantizer="modelopt",
        progress=False,
    )
    try:
        summary = run_calibrate(opts)
    except CheckFailed as exc:
        assert exc.summary is not None
        summary = exc.summary
    assert summary["calibration"]["quantizer"].startswith("nvidia-modelopt")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
