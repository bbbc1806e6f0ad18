"""Shared fixtures: seeded synthetic data in every layout, small enough for a CPU test suite."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene, write_synthetic_dataset

try:  # fuzzing of the readers of untrusted files (tests/trust): a bounded run in make test (a few
    # seconds), SAM2MS_FUZZ=deep for a long one
    from hypothesis import HealthCheck, settings

    settings.register_profile("bounded", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("deep", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
    settings.load_profile(os.environ.get("SAM2MS_FUZZ", "bounded"))
except ImportError:  # hypothesis is a dev dependency (make test installs it); only tests/trust needs it
    pass


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    """Two torch threads (the CI machine's cores), one per worker under pytest-xdist (make test runs
    two); nothing where torch is not installed (make test-core).
    """
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without torch (make test-core: a deployment host's install) only the test modules marked
    ``core`` are collected; the others import torch, or build their models with it.
    """
    if HAS_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return "pytest.mark.core" not in collection_path.read_text()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first: pytest-xdist hands tests out in this order, so the longest (the README
    walk, minutes alone) start at once and the short ones fill the other worker meanwhile.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 scenes of 64 x 64 in the plain folder layout (7 train / 3 test after the split)."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("synth") / "ds", count=10, size=64, seed=3)


def scene(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded synthetic (image, label) pair."""
    return render_road_scene(size, size, np.random.default_rng(seed))


def save(path: Path, array: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sam2ms ARGS`` in-process through the real entry point; returns (code, out, err)."""
    from sam2ms.cli import main

    old = sys.argv
    sys.argv = ["sam2ms", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def trained_nano(synth_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sam2ms_nano checkpoint trained for a few steps at 64 x 64 (decisive, not random, outputs)."""
    from sam2ms.train.trainer import TrainConfig, Trainer

    run = tmp_path_factory.mktemp("trained") / "run"
    Trainer(
        TrainConfig(
            data=synth_folder,
            output=run,
            model="sam2ms_nano",
            epochs=4,
            batch=4,
            image_size=64,
            lr=2e-3,
            lossnet="none",
            progress=False,
            eval_every=0,
        )
    ).fit()
    return run / "last.pt"


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def json_values(allow_nan: bool = False, max_leaves: int = 20) -> Any:
    """A hypothesis strategy for any JSON value (what a hostile file can hold once parsed)."""
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=allow_nan) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=max_leaves,
    )
