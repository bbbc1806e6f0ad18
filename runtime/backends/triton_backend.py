"""A remote backend: each lane is a Triton Inference Server client (HTTP or gRPC, ``tritonclient``).

``sam2ms-infer MODEL INPUT --triton URL --model NAME`` runs the whole tiled pipeline (blend,
GeoTIFF/COG, resume, Ray) against a served model. MODEL is the exported artifact the served model
was made from: its sidecar (checked as for a local run) says the tile, the input format and the
radiometry, and the server's model must agree with it — its input and output names, dtypes and
shapes as the server reports them, and, where the configuration was written by ``sam2ms triton``,
the SHA-256 of the served file. Anything else is refused before the first tile is read.

One client per lane (``tritonclient``'s clients are not shared across threads); each batch is one
request in the model's own input format (uint8 N x T x T x 3, or normalised float32), answered with
the logits. ``URL`` is ``http://HOST:PORT`` (default 8000) or ``grpc://HOST:PORT`` (8001).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from typing_extensions import override

from sam2ms.artifacts import Sidecar
from sam2ms.deps import require
from sam2ms.errors import UsageError

from .base import Backend, BackendOptions, Lane, ModelInfo

PROTOCOLS = {"http": 8000, "grpc": 8001}
#: Triton's data types (its metadata's ``datatype``; a configuration writes ``TYPE_`` before them) of
#: the tensor dtypes a sidecar names.
WIRE_TYPES = {"uint8": "UINT8", "float32": "FP32", "float16": "FP16"}
#: The configuration parameter that binds the served file to its sidecar (``sam2ms triton`` writes it).
SHA256_PARAMETER = "sam2ms_sha256"


def served_sha256(config: dict[str, Any]) -> str | None:
    """The SHA-256 a configuration (Triton's JSON of it) says its file has, where we wrote it."""
    value = (config.get("parameters") or {}).get(SHA256_PARAMETER) or {}
    sha = value.get("string_value") if isinstance(value, dict) else None
    return sha if isinstance(sha, str) else None


def parse_url(url: str) -> tuple[str, str]:
    """``grpc://host:8001`` -> ("grpc", "host:8001"); a bare ``host:port`` is HTTP."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in PROTOCOLS or not parsed.hostname or parsed.path not in ("", "/"):
        raise UsageError(f"--triton {url}: use http://HOST[:PORT] or grpc://HOST[:PORT]")
    return parsed.scheme, f"{parsed.hostname}:{parsed.port or PROTOCOLS[parsed.scheme]}"


def _client_module(protocol: str) -> Any:
    return require(f"tritonclient.{protocol}", f"--triton {protocol}://")


class _TritonLane:
    """One client: a batch in, the logits out, one request at a time."""

    last_split_ms: dict[str, float] | None = None  # the server's own timing is not split here

    def __init__(self, backend: TritonBackend) -> None:
        self._backend = backend
        self._client = backend.connect()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits of one batch, answered by the server."""
        module, name = self._backend.module, self._backend.served
        tensor = module.InferInput(self._backend.input_name, list(batch.shape), WIRE_TYPES[str(batch.dtype)])
        tensor.set_data_from_numpy(np.ascontiguousarray(batch))
        wanted = [module.InferRequestedOutput(self._backend.output_name)]
        try:
            answer = self._client.infer(name, [tensor], outputs=wanted)
        except Exception as exc:  # noqa: BLE001 - tritonclient's InferenceServerException and transport errors
            raise UsageError(f"Triton at {self._backend.url} refused a batch of {name}: {_words(exc)}") from None
        return np.asarray(answer.as_numpy(self._backend.output_name), np.float32)

    def close(self) -> None:
        """Close the client's connection."""
        self._client.close()


def _words(exc: BaseException) -> str:
    """The server's or the transport's message, in one line."""
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    return " ".join(str(text).split())[:400] or type(exc).__name__


class TritonBackend(Backend):
    """A model served by Triton, checked against the artifact's sidecar (``info``) at open."""

    name = "triton"

    def __init__(self, path: Path, info: ModelInfo, options: BackendOptions) -> None:
        assert options.triton_url is not None  # open_model builds this backend only with --triton
        self.protocol, self.url = parse_url(options.triton_url)
        self.module = _client_module(self.protocol)
        self.served = options.triton_model
        self._lanes: list[_TritonLane] = []
        self._lock = threading.Lock()
        client = self.connect()
        try:
            metadata, config = self._describe(client)
        finally:
            client.close()
        self.input_name, self.output_name, max_batch = _check_against_sidecar(path, info, self.served, metadata, config)
        self.bound_by_sha256 = served_sha256(config) is not None
        self.info = replace(info, max_batch=max_batch)  # the server's max_batch_size bounds --batch

    def connect(self) -> Any:
        """A new client of the server (one per lane)."""
        return self.module.InferenceServerClient(self.url)

    def _describe(self, client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The served model's metadata and configuration, as JSON, or why there are none."""
        where = f"Triton at {self.protocol}://{self.url}"
        try:
            if not client.is_server_live():
                raise UsageError(f"{where} is not live; start it, or check --triton")
            if not client.is_model_ready(self.served):
                raise UsageError(f"{where} has no ready model {self.served!r}; check --model and the server's log")
            if self.protocol == "grpc":
                metadata = client.get_model_metadata(self.served, as_json=True)
                config = client.get_model_config(self.served, as_json=True).get("config", {})
            else:
                metadata, config = client.get_model_metadata(self.served), client.get_model_config(self.served)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, DNS, TLS, the server's own errors
            raise UsageError(f"{where}: {_words(exc)}; is the server running there?") from None
        return dict(metadata), dict(config)

    @override
    def lanes(self, count: int) -> list[Lane]:
        with self._lock:
            while len(self._lanes) < count:
                self._lanes.append(_TritonLane(self))
            return list(self._lanes[:count])

    @override
    def device_name(self) -> str:
        return f"Triton at {self.protocol}://{self.url}"

    @override
    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "server": f"{self.protocol}://{self.url}",
            "served_model": self.served,
            "bound_by_sha256": self.bound_by_sha256,
        }

    @override
    def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._lanes = []


def _check_against_sidecar(
    path: Path, info: ModelInfo, served: str, metadata: dict[str, Any], config: dict[str, Any]
) -> tuple[str, str, int | None]:
    """(input name, output name, the server's max batch) once the served model is the sidecar's —
    its tensors' names, types and shapes (the batch dimension aside) and, where the configuration
    records it, the file's SHA-256 — else a UsageError saying what differs.
    """
    expected_in, expected_out = Sidecar(info.sidecar).tensors()
    inputs, outputs = metadata.get("inputs") or [], metadata.get("outputs") or []
    fix = f"serve {path.name} (sam2ms triton {path.name} -o REPO), or pass the artifact the server was given"
    if len(inputs) != 1 or len(outputs) != 1:
        raise UsageError(
            f"Triton model {served!r} has {len(inputs)} inputs and {len(outputs)} outputs, not 1 and 1; {fix}"
        )
    for what, got, want in (("input", inputs[0], expected_in), ("output", outputs[0], expected_out)):
        shape = [int(d) for d in got.get("shape", [])]
        want_shape = [d for d in want.get("shape", [])[1:]]
        if (
            got.get("name") != want.get("name")
            or got.get("datatype") != WIRE_TYPES.get(str(want.get("dtype")))
            or shape[-len(want_shape) :] != want_shape
            or len(shape) != len(want_shape) + 1
        ):
            raise UsageError(
                f"Triton model {served!r}: {what} {got.get('name')} {got.get('datatype')} {shape}, but "
                f"{path.name}'s sidecar says {want.get('name')} {WIRE_TYPES.get(str(want.get('dtype')))} "
                f"[-1, {', '.join(map(str, want_shape))}]; {fix}"
            )
    sha = served_sha256(config)
    if sha is not None and sha != info.sidecar.get("sha256"):
        raise UsageError(f"Triton model {served!r} serves another file than {path.name} (SHA-256 differs); {fix}")
    most = int(config.get("max_batch_size") or 0)
    return str(inputs[0]["name"]), str(outputs[0]["name"]), most or None
