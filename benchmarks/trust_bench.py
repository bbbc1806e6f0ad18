"""What the untrusted-input checks cost (issue 24): the sidecar's binding, and a refused PNG bomb.

    python benchmarks/trust_bench.py --model demo_run/export/model.onnx [--model other.onnx ...] [--big-mb 1024]

* **Binding**: reading a model's sidecar (schema + size + SHA-256) the first time (the file is
  hashed) and on every later run (one ``stat`` and the cached digest), against the schema alone
  (what the read cost before the binding), median of 20 reads each; plus hashing a ``--big-mb``
  file of random bytes cold and cached, for a plan of that size.
* **Bomb**: ``sam2ms-infer`` on a PNG whose header claims 200 000 x 200 000 pixels, against the
  same command on a 64 x 64 PNG: wall time and peak RSS of the child process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sam2ms.artifacts import SIDECAR_SCHEMA, read_sidecar, sidecar_path
from sam2ms.digests import cached_sha256
from sam2ms.schema import load_json, validate


def _median_ms(run: object, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def binding(model: Path) -> str:
    def schema_only() -> None:
        validate(load_json(sidecar_path(model), "s", "f", 16 << 20), SIDECAR_SCHEMA, "s", "f")

    t0 = time.perf_counter()
    read_sidecar(model)  # the first run after the cache was emptied: hashes the file
    first = 1000 * (time.perf_counter() - t0)
    later, alone = _median_ms(lambda: read_sidecar(model)), _median_ms(schema_only)
    return (
        f"| {model.name} | {model.stat().st_size / 2**20:.1f} MiB | {first:.1f} | {later:.2f} | {alone:.2f} | "
        f"{later - alone:+.2f} |"
    )


def big_file(mb: int, folder: Path) -> str:
    path = folder / "big.plan"
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    t0 = time.perf_counter()
    cached_sha256(path)
    cold = time.perf_counter() - t0
    return f"| a {mb} MiB plan's hash | cold {cold:.2f} s | cached {_median_ms(lambda: cached_sha256(path)):.2f} ms |"


def _child(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB, of that process alone: ``wait4``) and exit code of
    ``python -m sam2ms.cli ARGS`` in a fresh process.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sam2ms.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, proc.returncode


def bomb(folder: Path) -> list[str]:
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path[:0] = [str(tests), str(tests / "trust")]
    from test_rasters import png_claiming  # the hostile PNG of the tests

    from pixelwise import pixelwise_onnx  # the test suite's 1x1-convolution model

    model = pixelwise_onnx(folder / "px.onnx", 64)
    png_claiming(folder / "bomb.png", 200_000, 200_000)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "small.png")
    rows = []
    for name in ("small.png", "bomb.png"):
        wall, rss, code = _child(
            [
                "infer",
                str(model),
                str(folder / name),
                "-o",
                str(folder / f"out-{name}"),
                "--quiet",
                "--backend",
                "onnxruntime",
            ]
        )
        rows.append(f"| {name} ({(folder / name).stat().st_size} B) | exit {code} | {wall:.2f} s | {rss:.0f} MiB |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, action="append", default=[], help="an exported artifact with its sidecar")
    p.add_argument("--big-mb", type=int, default=1024)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAM2MS_CACHE_DIR"] = str(Path(tmp) / "cache")  # an empty cache: the first read hashes
        print("| artifact | size | first read ms (hashes) | later reads ms | schema alone ms | binding's extra ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        for model in args.model:
            print(binding(model))
        print(big_file(args.big_mb, Path(tmp)))
        print("\n| sam2ms-infer on | result | wall | peak RSS |\n| --- | --- | --- | --- |")
        print("\n".join(bomb(Path(tmp))))
    print(f"\n(peak RSS of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
