"""The trainer: a short run, exact resume, DDP with torchrun on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sam2ms.errors import UsageError
from sam2ms.models.checkpoint import read_checkpoint
from sam2ms.train.trainer import TrainConfig, Trainer


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(
        data=data,
        output=out,
        model="sam2ms_nano",
        epochs=2,
        batch=2,
        image_size=32,
        lr=1e-3,
        lossnet="none",
        progress=False,
        eval_every=1,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "steps.jsonl").read_text().splitlines()]


def test_two_step_run_writes_everything(synth_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = Trainer(_cfg(synth_folder, run, epochs=1, batch=4)).fit()  # 7 train samples -> 2 steps
    assert summary["steps"] == 2 and summary["epochs_done"] == 1
    for name in ("config.json", "steps.jsonl", "metrics.jsonl", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    epoch = json.loads((run / "metrics.jsonl").read_text())
    assert set(epoch["test"]) >= {"f1", "miou", "mdice", "mae", "rlod", "precision", "recall"}
    assert epoch["test"]["images"] == 3
    ck = read_checkpoint(run / "last.pt")
    assert ck.raw["step"] == 2 and ck.raw["optimizer"]["state"]  # optimizer state saved
    # the trainable weights moved, the frozen trunk did not
    from sam2ms.models import create_model

    torch.manual_seed(0)
    init = create_model("sam2ms_nano").state_dict()
    frozen_key = "encoder.blocks.0.block.attn.qkv.weight"
    assert torch.equal(ck.state_dict[frozen_key], init[frozen_key])
    assert not torch.equal(ck.state_dict["decoder.head.0.weight"], init["decoder.head.0.weight"])


def test_resume_reproduces_the_uninterrupted_run(synth_folder: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    Trainer(_cfg(synth_folder, full, accum=2)).fit()
    part = tmp_path / "part"
    stopped = Trainer(_cfg(synth_folder, part, accum=2, stop_after=1)).fit()  # mid-epoch
    assert stopped["stopped_early"] and stopped["steps"] == 1
    with pytest.raises(UsageError, match="already holds a run"):
        Trainer(_cfg(synth_folder, part, accum=2))
    Trainer(_cfg(synth_folder, part, accum=2, resume=True)).fit()
    assert _losses(part) == _losses(full)  # bit-identical trajectory
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(part / "last.pt")
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k

    def strip(p: Path) -> list[dict[str, object]]:
        return [
            {k: v for k, v in json.loads(ln).items() if k != "elapsed_s"}
            for ln in (p / "metrics.jsonl").read_text().splitlines()
        ]

    assert strip(part) == strip(full)


def test_run_records_its_raster_conversion(synth_folder: Path, tmp_path: Path) -> None:
    from sam2ms.geo.radiometry import Radiometry

    conversion = Radiometry(bands=(3, 2, 1), stretch="minmax").as_dict()
    run = tmp_path / "run"
    Trainer(_cfg(synth_folder, run, epochs=1, batch=4, stop_after=1, eval_every=0, radiometry=conversion)).fit()
    assert read_checkpoint(run / "last.pt").raw["radiometry"] == conversion
    with pytest.raises(UsageError, match="another raster conversion"):
        Trainer(_cfg(synth_folder, run, epochs=1, batch=4, resume=True, radiometry=Radiometry().as_dict()))
    assert Trainer(_cfg(synth_folder, run, epochs=1, batch=4, resume=True)).radiometry.as_dict() == conversion


def test_auto_resume_starts_or_continues(synth_folder: Path, tmp_path: Path) -> None:
    """--auto-resume (what a job scheduler's relaunch reruns): a new run where -o has no last.pt
    (the logs of an attempt that died before its first checkpoint are dropped), else a resume.
    """
    run = tmp_path / "run"
    run.mkdir()
    (run / "steps.jsonl").write_text('{"step": 1, "loss": 99.0}\n')  # a dead attempt's line
    first = Trainer(_cfg(synth_folder, run, auto_resume=True, stop_after=1, eval_every=0)).fit()
    assert first["steps"] == 1 and _losses(run)[0] != 99.0 and len(_losses(run)) == 1
    second = Trainer(_cfg(synth_folder, run, auto_resume=True, eval_every=0)).fit()
    assert second["steps"] == 8 and len(_losses(run)) == 8
    full = tmp_path / "full"
    Trainer(_cfg(synth_folder, full, eval_every=0)).fit()
    assert _losses(run) == _losses(full)


def test_resume_keeps_the_global_batch(synth_folder: Path, tmp_path: Path) -> None:
    """A run resumed with a smaller per-process batch keeps its samples per step through accum."""
    run = tmp_path / "run"
    Trainer(_cfg(synth_folder, run, batch=4, stop_after=1, eval_every=0)).fit()
    resumed = Trainer(_cfg(synth_folder, run, batch=2, resume=True, eval_every=0))
    assert (resumed.cfg.accum, resumed.accum_adjusted_from, resumed.pos.global_batch) == (2, 1, 4)
    assert resumed.fit()["global_batch"] == 4
    with pytest.raises(UsageError, match="cannot make that up"):
        Trainer(_cfg(synth_folder, run, batch=3, resume=True))


def test_resume_needs_a_run(synth_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"last.pt not found"):
        Trainer(_cfg(synth_folder, tmp_path / "none", resume=True))


@pytest.mark.parametrize(
    "kw,msg", [({"image_size": 40}, "multiple of 32"), ({"amp": "int8"}, "--amp"), ({"batch": 0}, "--batch")]
)
def test_bad_options(synth_folder: Path, tmp_path: Path, kw: dict, msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        Trainer(_cfg(synth_folder, tmp_path / "r", **kw))
    assert not (tmp_path / "r").exists()  # nothing written for a refused run


def test_bf16_autocast_step_on_cpu(synth_folder: Path, tmp_path: Path) -> None:
    summary = Trainer(_cfg(synth_folder, tmp_path / "bf16", epochs=1, batch=4, amp="bf16", stop_after=1)).fit()
    assert summary["steps"] == 1
    assert all(map(lambda x: x == x, _losses(tmp_path / "bf16")))  # finite, not NaN


def test_ddp_two_processes_with_torchrun(synth_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "sam2ms.cli",
        "train",
        "--data",
        str(synth_folder),
        "--model",
        "sam2ms_nano",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--image-size",
        "32",
        "--lossnet",
        "none",
        "--quiet",
        "--json",
        "-o",
        str(run),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 7 train samples padded to 8 -> 4 per rank -> 2 steps of batch 2 per rank (global batch 4)
    steps = (run / "steps.jsonl").read_text().splitlines()
    assert len(steps) == 2  # only rank 0 logs
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert json.loads((run / "metrics.jsonl").read_text())["test"]["images"] == 3  # eval merged over ranks
    assert read_checkpoint(run / "best.pt").model_name == "sam2ms_nano"
