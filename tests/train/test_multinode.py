"""Training across nodes: two torchrun launchers on this machine act as two nodes (c10d rendezvous,
gloo), one process each — the way ``torchrun --nnodes 2 --rdzv-backend c10d`` runs on a cluster.

Checked: the replicas stay bit-identical; the job trains what one process with the same global
batch trains; a node killed mid-run (SIGKILL of its torchrun agent and worker) stops the job at
once, and relaunching it with --resume finishes bit-identical to an undisturbed job; a node that
cannot see the run folder stops every rank with a clear message instead of a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sam2ms.train.trainer import TrainConfig, Trainer

WORKER = Path(__file__).with_name("torchrun_train.py")
ARGS = [
    "--model",
    "sam2ms_nano",
    "--epochs",
    "2",
    "--batch",
    "2",
    "--image-size",
    "64",
    "--lossnet",
    "none",
    "--eval-every",
    "0",
    "--save-every",
    "1",
    "--quiet",
    "--json",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job(
    data: Path, runs: list[Path], *extra: str, dump: Path | None = None, kill_second_at: int = 0, timeout: float = 240
) -> list[subprocess.CompletedProcess[str]]:
    """Launch a 2-node job (one torchrun per node; ``runs[i]`` is node i's -o) and wait for both."""
    port, procs = _free_port(), []
    for node, run in enumerate(runs):
        env = {
            **ENV,
            **({"SAM2MS_TEST_DUMP": str(dump)} if dump else {}),
            **({"SAM2MS_TEST_KILL_AT": str(kill_second_at)} if node == 1 and kill_second_at else {}),
        }
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--nproc_per_node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--rdzv-id",
            f"job{port}",
            "--rdzv-conf",
            f"is_host={int(node == 0)}",  # node 0 hosts the rendezvous store
            str(WORKER),
            "--data",
            str(data),
            *ARGS,
            "-o",
            str(run),
            *extra,
        ]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    done = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "steps.jsonl").read_text().splitlines()]


def _dumps(folder: Path) -> list[dict[str, torch.Tensor]]:
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def two_nodes(synth_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An undisturbed 2-node job (7 train samples, 2 x batch 2 -> 2 steps per epoch, 2 epochs)."""
    root = tmp_path_factory.mktemp("two_nodes")
    (root / "dump").mkdir()
    for p in _job(synth_folder, [root / "run"] * 2, dump=root / "dump"):
        assert p.returncode == 0, p.stderr[-3000:]
    return root / "run", root / "dump"


def test_two_nodes_train_what_one_process_with_their_global_batch_trains(
    two_nodes: tuple[Path, Path], synth_folder: Path, tmp_path: Path
) -> None:
    run, dump = two_nodes
    rank0, rank1 = _dumps(dump)
    _assert_identical(rank0, rank1)  # replicas stay bit-identical, BatchNorm statistics included
    saved = torch.load(run / "last.pt", weights_only=True)
    _assert_identical(saved["weights"]["full"], rank0)  # rank 0 wrote what every rank holds
    assert saved["train_state"]["global_batch"] == 4
    assert json.loads((run / "config.json").read_text())["world_size"] == 2

    one = tmp_path / "one"
    Trainer(
        TrainConfig(
            data=synth_folder,
            output=one,
            model="sam2ms_nano",
            epochs=2,
            batch=4,
            image_size=64,
            lossnet="none",
            eval_every=0,
            progress=False,
        )
    ).fit()
    single = torch.load(one / "last.pt", weights_only=True)["weights"]["full"]
    # the same batches, the same BatchNorm statistics: losses agree to float rounding (without
    # synchronised BatchNorm they differ by ~2e-3 from the first step, running stats by ~0.1)
    torch.testing.assert_close(_losses(run), _losses(one), rtol=1e-4, atol=0)
    for k in (k for k in single if "running_" in k):
        torch.testing.assert_close(rank0[k], single[k], rtol=1e-4, atol=1e-4)
    # Adam divides by the gradient's running RMS, so a parameter whose gradient is rounding noise
    # (a conv bias right before BatchNorm has a true gradient of 0) moves by ~lr in any two runs
    # that sum in another order (or on other thread counts): compare the bulk, not every element.
    # Measured: ~1 % of the elements more than lr/10 apart; ~85 % without synchronised BatchNorm.
    trainable = [k for k in saved["weights"]["trainable"] if k in single and single[k].is_floating_point()]
    off = sum(int(((rank0[k] - single[k]).abs() > 1e-5).sum()) for k in trainable)
    assert off / sum(single[k].numel() for k in trainable) < 0.05


def test_a_lost_node_stops_the_job_and_resume_finishes_it_identically(
    two_nodes: tuple[Path, Path], synth_folder: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    first = _job(synth_folder, [run] * 2, "--auto-resume", kill_second_at=3, timeout=120)
    assert first[1].returncode == -9  # the "node" died (its agent was SIGKILLed)
    assert first[0].returncode != 0  # the survivor's worker failed in its next collective: no hang
    assert len(_losses(run)) == 2 and torch.load(run / "last.pt", weights_only=True)["step"] == 2

    (tmp_path / "dump").mkdir()
    for p in _job(synth_folder, [run] * 2, "--resume", dump=tmp_path / "dump"):
        assert p.returncode == 0, p.stderr[-3000:]
    reference_run, reference_dump = two_nodes
    assert _losses(run) == _losses(reference_run)
    for mine, ref in zip(_dumps(tmp_path / "dump"), _dumps(reference_dump)):
        _assert_identical(mine, ref)


def test_a_node_that_cannot_see_the_run_stops_every_rank(
    two_nodes: tuple[Path, Path], synth_folder: Path, tmp_path: Path
) -> None:
    shutil.copytree(two_nodes[0], tmp_path / "shared")
    (tmp_path / "local").mkdir()
    jobs = _job(synth_folder, [tmp_path / "shared", tmp_path / "local"], "--resume", timeout=120)
    for p in jobs:  # every rank exits with the usage error (code 2), none waits for the other
        assert p.returncode != 0 and "exitcode  : 2" in p.stderr, p.stderr[-2000:]
        assert (
            "error: the ranks disagree on whether the run folder (-o) holds last.pt (rank 0: True, rank 1: "
            "False); put -o on storage that every node mounts"
        ) in p.stderr, p.stderr[-2000:]
