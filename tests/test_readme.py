"""The README as a newcomer follows it: every command of its ``bash`` blocks, in order, on stand-ins.

Each command is looked up in :data:`WALK` by a pattern; it is either run (in-process through the
real entry point, in a folder of stand-ins laid out as the README's paths) with the exit code and
the files the README promises, or skipped with its reason (a GPU, TensorRT on a GPU, a network, a
cluster, minutes of benchmarking, or a place that already tests it). A README command that no
entry covers fails the test, so the README cannot gain a step this walk does not take.

Stand-ins: the session's trained ``sam2ms_nano`` for every checkpoint; the heavy settings become
light ones (``sam2ms_hiera_l`` -> ``sam2ms_nano``, 1024² -> 64² tiles and training size, 50 epochs
-> 1); official SAM2 and ImageNet weights, which cannot be downloaded here, are left out; absolute
data paths map into the stand-in folder. Everything else runs as written.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene

from conftest import has_module, run_cli
from fakes import make_spacenet

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_module("rasterio") or not has_module("onnx"), reason="needs [geo] and [train]"),
]

#: Heavy settings and paths of the README -> their stand-ins (applied in order).
SUBSTITUTIONS = [
    ("--model sam2ms_hiera_l", "--model sam2ms_nano"),
    ("--sam2-ckpt sam2.1_hiera_large.pt", ""),  # official SAM2 weights cannot be downloaded here
    ("--lossnet resnet50 --lossnet-weights resnet50-11ad3fa6.pth", "--lossnet none"),  # nor ImageNet weights
    ("--lossnet-weights resnet50-11ad3fa6.pth", "--lossnet none"),
    ("--epochs 50", "--epochs 1"),
    ("--image-size 1024", "--image-size 64"),
    ("--tile 512", "--tile 64"),
    ("--threads 16", "--threads 2"),
    ("--iterations 50", "--iterations 2"),
    ("--warmup 5", "--warmup 1"),
    ("--batch 1,2,4,8", "--batch 1,2"),
    ("/data/deepglobe", "DeepGlobe"),
    # the pipeline bench: 2 small scenes, 64² tiles (the walk's models), one core
    ("bench --pipeline", "bench --pipeline --scenes 2 --scene-size 192 --tile 64 --single 192 --cores 1"),
    ("--scene-size 2048", ""),
]
#: Light settings where a command leaves the heavy defaults (1024² tiles, 50 epochs, torch.compile,
#: 32 calibration tiles).
LIGHT_DEFAULTS = {
    "export": [("--tile", "64"), ("--calib-batches", "2")],
    "calibrate": [("--calib-batches", "2")],
    "train": [("--epochs", "1"), ("--image-size", "64")],
    "bench": [("--torch", "fp32"), ("--iterations", "2"), ("--warmup", "1")],
}


@dataclass(frozen=True)
class Step:
    """What the walk does with the README commands matching ``pattern``: ``skip`` (the reason), or
    run with ``code`` as the exit code and ``outputs`` as files that must exist afterwards.
    """

    pattern: str
    skip: str | None = None
    code: int = 0
    outputs: tuple[str, ...] = ()
    check: Callable[[Path, str], None] | None = None  # (the folder, stdout) -> asserts


def _json_keys(*keys: str) -> Callable[[Path, str], None]:
    def check(folder: Path, out: str) -> None:
        assert set(keys) <= set(json.loads(out)), out[:300]

    return check


def _infer_summary(files: int) -> Callable[[Path, str], None]:
    def check(folder: Path, out: str) -> None:
        summary = json.loads(out)
        assert summary["files"] == files and summary["failed"] == 0, summary["failures"]

    return check


WALK = [
    Step(r"^make demo$", skip="runs the whole demo: tests/test_demo.py (tiny) and every session's make demo"),
    Step(r"^make check$", skip="this test is part of it"),
    Step(r"^make test$", skip="this test is part of make check"),
    Step(r"^make test-core$", skip="part of make check (a second venv, installed from the package index)"),
    Step(r"^make triton-venv$", skip="part of make test and make check (a third venv: the Triton server)"),
    Step(r"^git clone |^cd sam2ms$", skip="needs the network (this test runs in the clone)"),
    Step(r"^ls dist$", skip="lists the wheel built by the pip wheel step"),
    Step(r"^pip (install|wheel) ", skip="installs: tests/test_packaging.py builds the wheel and installs it lean"),
    Step(r"^torchrun ", skip="several processes/nodes: tests/train/test_multinode.py"),
    Step(r"^sam2ms train \.\.\. --resume", skip="elided arguments (--resume: tests/train/test_train.py)"),
    Step(r"^sam2ms train --data DeepGlobe/train ", outputs=("runs/deepglobe_l/last.pt", "runs/deepglobe_l/best.pt")),
    Step(r"^sam2ms eval --ckpt runs/deepglobe_l/best.pt "),
    Step(
        r"^sam2ms-export --ckpt runs/deepglobe_l/best.pt --fp16 -o deploy/$",
        outputs=("deploy/model.onnx", "deploy/model.onnx.json", "deploy/model.fp16.onnx", "deploy/engine.plan"),
    ),
    Step(r"^sam2ms-export --ckpt best.pt --onnx-only --tile 512 ", outputs=("deploy512/model.onnx",)),
    Step(r"^sam2ms-export --ckpt best.pt --onnx-only --deepness ", outputs=("qgis/model.deepness.onnx",)),
    Step(r"^sam2ms triton deploy/model.onnx -o triton_repo/ ", outputs=("triton_repo/sam2ms/config.pbtxt",)),
    Step(r"^tritonserver ", skip="NVIDIA's server (a container); tests/runtime/test_triton.py runs pytriton's"),
    Step(
        r"^sam2ms-infer deploy/model.onnx scenes/ -o masks/ --triton ",
        skip="needs a running Triton server on a GPU host; tests/runtime/test_triton.py runs it against one",
    ),
    Step(r"^sam2ms-export --ckpt best.pt --fp16 --builder tensorrt_rtx ", outputs=("rtx/engine.plan",)),
    Step(
        r"^sam2ms-export --ckpt best.pt --int8 --calib-data tiles/ ",
        outputs=("deploy/model.int8.onnx", "deploy/model.int8.onnx.json"),
    ),
    Step(r"^sam2ms calibrate deploy/model.onnx --calib-data tiles/ ", outputs=("deploy/model.int8.onnx",)),
    Step(r"^sam2ms-infer deploy/model.int8.onnx scenes/ ", outputs=("masks/a.mask.png", "masks/b.mask.png")),
    Step(r"^sam2ms-infer deploy/engine.plan (?!s3://)", skip="runs a plan: needs an NVIDIA GPU with TensorRT"),
    Step(
        r"^sam2ms-infer deploy/model.onnx scene.tif -o masks/ --format tif --probabilities$",
        outputs=("masks/scene.mask.tif", "masks/scene.prob.tif"),
    ),
    Step(r"^sam2ms-infer deploy/model.onnx tiles/ -o masks/ --check-against best.pt --json$", check=_infer_summary(4)),
    Step(r"--backend openvino --precision bf16", outputs=("masks/a.mask.png",)),
    Step(
        r"^sam2ms-export --ckpt best.pt --onnx-only --int8 --calib-data scenes/ --auto-exclude --openvino ",
        outputs=("deploy/model.int8.onnx",),
    ),
    Step(r"^sam2ms bench deploy/model.onnx deploy/model.int8.onnx$"),
    Step(
        r"^sam2ms-infer deploy/model.onnx @scenes.txt -o out/ --format tif --ray local$",
        outputs=("out/a.mask.tif", "out/b.mask.tif"),
    ),
    Step(r"s3://", skip="object storage: needs the network and credentials"),
    Step(r"--ray ray://", skip="a remote Ray cluster"),
    Step(
        r"^sam2ms bench deploy/engine.plan deploy/model.onnx deploy/model.int8.onnx ",
        outputs=("bench.json", "bench.png", "bench.md"),
    ),
    Step(r"^sam2ms bench --pipeline$"),
    Step(r"^sam2ms bench --pipeline --io tif ", outputs=("pipe.md",)),
    Step(r"^sam2ms bench --pipeline deploy/model.onnx "),
    Step(r"^python benchmarks/", skip="minutes of benchmarking (their figures: benchmarks/RESULTS.md)"),
    Step(r"^make gpu-", skip="a lent GPU machine (make gpu-check)"),
    Step(r"^sam2ms-export --ckpt best.pt --fp16 -o deploy/$", outputs=("deploy/model.fp16.onnx",)),
    Step(
        r"^sam2ms bench deploy/engine.plan deploy/model.fp16.onnx .*--cuda-graph",
        skip="CUDA graphs and fp16 autocast: a GPU (the plan's row alone would be 'not run here')",
    ),
    Step(
        r"^sam2ms-infer best.pt scenes/ -o masks/ --backend torch --precision bf16 --cuda-graph ",
        skip="CUDA graphs of a checkpoint: a CUDA GPU (on a CPU the flag is refused: test_torch_capture.py)",
    ),
    Step(
        r"^sam2ms bench best.pt --batch 1,4 --torch .*bf16\+graph",
        skip="eager against captured: a CUDA GPU (make gpu-check runs it)",
    ),
    Step(r"^sam2ms train --data /data/deepglobe --layout deepglobe ", outputs=("runs/l/best.pt",)),
    Step(r"^sam2ms eval --ckpt runs/l/best.pt --data /data/deepglobe --layout deepglobe$"),
    Step(
        r"^sam2ms-export --ckpt runs/l/best.pt --fp16 --int8 --calib-data /data/deepglobe/train ",
        outputs=("deploy/model.int8.onnx",),
    ),
    Step(r"^sam2ms-infer deploy/model.onnx worldview.tif ", outputs=("out/worldview.mask.tif",)),
    Step(r"^sam2ms stats scenes/ --bands 3,2,1 -o stats.json$", outputs=("stats.json",)),
    Step(
        r"^sam2ms-infer deploy/model.onnx scenes/ -o out/ --format tif --stats stats.json$", outputs=("out/a.mask.tif",)
    ),
    Step(r"^sam2ms mosaic tiles/\*.tif -o mosaic.vrt$", outputs=("mosaic.vrt",)),
    Step(r"^sam2ms-infer deploy/model.onnx mosaic.vrt ", outputs=("out/mosaic.mask.tif",)),
    Step(
        r"^sam2ms-infer deploy/model.onnx scene.tif -o out/ --format tif --graph geojson$",
        outputs=("out/scene.mask.tif", "out/scene.graph.geojson"),
    ),
    Step(r"^sam2ms graph out/scene.mask.tif -o scene.graphml$", outputs=("scene.graphml",)),
    Step(r"^sam2ms apls truth.geojson proposal.geojson --json$", check=_json_keys("apls", "topo_f1")),
    Step(r"^sam2ms eval --ckpt run/best.pt --data SN3/ --layout spacenet --apls$"),
]


def readme_commands() -> list[str]:
    """The README's shell commands in order: continuations joined, comments and ``[optional]``
    groups dropped, ``&&`` chains split.
    """
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        current = ""
        for line in block.splitlines():
            if line.lstrip().startswith("#"):
                continue
            code = re.split(r"\s+#", line, maxsplit=1)[0].rstrip()
            if code.endswith("\\"):
                current += code[:-1] + " "
                continue
            current = re.sub(r"\s*\[[^\]]*--[^\]]*\]", "", current + code)  # [--flag ...]: optional
            current = re.sub(r"\s+", " ", current).strip()
            if current:
                commands += [part.strip() for part in current.split("&&")]
            current = ""
    return commands


def _step(command: str) -> Step:
    matches = [s for s in WALK if re.search(s.pattern, command)]
    assert len(matches) == 1, (
        f"README command {command!r} is covered by {len(matches)} walkthrough steps; "
        "add one to tests/test_readme.py (WALK)"
    )
    return matches[0]


def test_every_readme_command_has_one_step() -> None:
    commands = readme_commands()
    assert len(commands) > 40
    for command in commands:
        _step(command)


def _geotiff(path: Path, bands: np.ndarray, left: float = 500_000, top: float = 4_000_000) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=bands.shape[1],
        width=bands.shape[2],
        count=len(bands),
        dtype=bands.dtype,
        crs="EPSG:32633",
        transform=from_origin(left, top, 1.0, 1.0),
    ) as ds:
        ds.write(bands)
    return path


def _rgb(height: int, width: int, seed: int) -> np.ndarray:
    return render_road_scene(height, width, np.random.default_rng(seed))[0]


def _stand_ins(root: Path, ckpt: Path) -> None:
    """The README's paths, as small files of their real formats."""
    for name in ("best.pt", "run/best.pt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ckpt, root / name)
    for i in range(12):  # DeepGlobe: *_sat.jpg + *_mask.png (48 windows of 64² to calibrate on)
        image, label = render_road_scene(128, 128, np.random.default_rng([i, 11]))
        (root / "DeepGlobe" / "train").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "DeepGlobe" / "train" / f"{i}_sat.jpg")
        Image.fromarray(label.astype(np.uint8) * 255).save(root / "DeepGlobe" / "train" / f"{i}_mask.png")
    for i in range(4):  # four 256² GeoTIFF tiles on one grid (a mosaic; 64 windows of 64² to calibrate on)
        _geotiff(
            root / "tiles" / f"t{i}.tif",
            np.moveaxis(_rgb(256, 256, i), -1, 0),
            500_000 + 256 * (i % 2),
            4_000_000 - 256 * (i // 2),
        )
    (root / "scenes").mkdir()
    for name, seed in (("a", 1), ("b", 2)):
        Image.fromarray(_rgb(320, 320, seed)).save(root / "scenes" / f"{name}.png")
    (root / "scenes.txt").write_text("scenes/a.png\nscenes/b.png\n")
    _geotiff(root / "scene.tif", np.moveaxis(_rgb(256, 384, 5), -1, 0))
    rng = np.random.default_rng(6)
    _geotiff(root / "worldview.tif", rng.integers(100, 2000, (8, 128, 128)).astype(np.uint16))
    streets = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[-115.2 + 0.001 * i, 36.1], [-115.2 + 0.001 * i, 36.103]],
                },
            }
            for i in range(3)
        ],
    }
    for name in ("truth.geojson", "proposal.geojson"):
        (root / name).write_text(json.dumps(streets))
    for n in (1, 2, 3):  # the paper's 7:3 split leaves one image to evaluate
        make_spacenet(root / "SN3", "sn3", n)


def _arguments(command: str, root: Path) -> list[str]:
    for heavy, light in SUBSTITUTIONS:
        command = command.replace(heavy, light)
    words = shlex.split(command)
    if words[0] in ("sam2ms-export", "sam2ms-infer"):
        words = ["sam2ms", words[0].split("-")[1], *words[1:]]
    assert words[0] == "sam2ms", command
    for flag, value in LIGHT_DEFAULTS.get(words[1], []):
        if flag not in words:
            words += [flag, value]
    expanded = []
    for word in words[1:]:  # the shell's globbing, in the stand-in folder
        found = sorted(glob.glob(word, root_dir=root)) if "*" in word else []
        expanded += found or [word]
    return expanded


def test_the_walk(
    trained_nano: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every README command in order, each with the exit code and files the README promises."""
    from sam2ms.runtime.backends.base import cpu_has_native_bf16

    _stand_ins(tmp_path, trained_nano)
    monkeypatch.chdir(tmp_path)
    skipped, seconds = [], []
    for command in readme_commands():
        step = _step(command)
        if (
            step.skip is None
            and "--precision bf16" in command
            and not (has_module("openvino") and cpu_has_native_bf16())
        ):
            step = Step(step.pattern, skip="OpenVINO BF16 needs [openvino] and a CPU with native BF16")
        if step.skip is None and "tensorrt_rtx" in command and not has_module("tensorrt_rtx"):
            step = Step(step.pattern, skip="needs tensorrt_rtx ([rtx])")
        if step.skip is not None:
            skipped.append((command, step.skip))
            continue
        args = _arguments(command, tmp_path)
        if args[0] == "infer":
            args.append("--quiet")
        started = time.perf_counter()
        code, out, err = run_cli(args, capsys)
        seconds.append((round(time.perf_counter() - started, 1), command))
        assert code == step.code, f"{command}\n-> sam2ms {' '.join(args)}\nexit {code}\n{err[-2000:]}"
        for output in step.outputs:
            assert (tmp_path / output).is_file(), f"{command}: {output} missing"
        if step.check is not None:
            step.check(tmp_path, out)
    print("skipped:", *(f"  {c}: {why}" for c, why in skipped), sep="\n")
    print("seconds:", *(f"  {s:6.1f} {c}" for s, c in sorted(seconds, reverse=True)), sep="\n")  # pytest -s
