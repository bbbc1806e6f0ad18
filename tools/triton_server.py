"""A Triton Inference Server serving an ONNX, for the tests and the benchmark of ``--triton``.

nvidia-pytriton 0.7.0 bundles ``tritonserver`` 2.51 with the Python backend only, so the model runs
through ONNX Runtime inside a ``@batch`` function, under the ONNX's own tensor names. pytriton pins
numpy < 2, so it lives in a venv of its own (``make triton-venv``); :func:`serve` starts this file
there as a process and hands back its URLs:

    with serve(Path("model.onnx"), "sam2ms") as server:
        ...  # server.http, server.grpc

Run directly (in that venv): ``python tools/triton_server.py MODEL.onnx NAME HTTP GRPC METRICS``;
it prints ``READY`` once the model is loaded and serves until terminated.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The venv's interpreter (``make triton-venv``), or $SAM2MS_TRITON_PYTHON.
TRITON_PYTHON = Path(os.environ.get("SAM2MS_TRITON_PYTHON", ROOT / ".venv-triton" / "bin" / "python"))


@dataclass(frozen=True)
class Server:
    http: str  # http://127.0.0.1:PORT
    grpc: str  # grpc://127.0.0.1:PORT
    log: list[str]  # what the server printed so far


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextmanager
def serve(model: Path, name: str, python: Path = TRITON_PYTHON, timeout_s: float = 180) -> Iterator[Server]:
    """``model`` served as ``name`` by a server process started for the body, stopped after it."""
    libdir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the bundled Python stub must load this interpreter's libpython, not the system's (else model
    # load fails with "'_thread.RLock' object has no attribute '_recursion_count'")
    paths = [libdir, os.environ.get("LD_LIBRARY_PATH", "")]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(p for p in paths if p)}
    http, grpc, metrics = free_ports(3)
    command = [str(python), __file__, str(model), name, str(http), str(grpc), str(metrics)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=model.parent
    )
    log: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # keeps the pipe from filling; READY marks the model loaded
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if line.strip() == "READY":
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    try:
        while not ready.wait(0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Triton server did not start:\n" + "".join(log[-40:]))
        yield Server(f"http://127.0.0.1:{http}", f"grpc://127.0.0.1:{grpc}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(model: str, name: str, http: int, grpc: int, metrics: int) -> None:
    import numpy as np
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    dtype = np.uint8 if "uint8" in inp.type else np.float32

    @batch
    def infer(**inputs: Any) -> dict[str, Any]:
        return {out.name: session.run(None, {inp.name: inputs[inp.name]})[0]}

    config = TritonConfig(http_port=http, grpc_port=grpc, metrics_port=metrics)
    # a local model store: nothing written under /tmp/folder*
    with Triton(config=config, triton_lifecycle_policy=TritonLifecyclePolicy(local_model_store=True)) as triton:
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=[Tensor(name=inp.name, dtype=dtype, shape=tuple(inp.shape[1:]))],
            outputs=[Tensor(name=out.name, dtype=np.float32, shape=tuple(out.shape[1:]))],
            config=ModelConfig(max_batch_size=8),
        )
        print("READY", flush=True)
        triton.serve()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]))
