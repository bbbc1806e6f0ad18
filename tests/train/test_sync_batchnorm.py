"""Synchronised BatchNorm on CPU: two gloo processes on halves of a batch = one BatchNorm2d on it."""

from pathlib import Path

import torch
import torch.distributed as td
import torch.multiprocessing as mp
from torch import nn

from sam2ms.train.sync_batchnorm import CpuSyncBatchNorm2d, synchronise_batchnorm


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 5, 6, generator=g) * 3 + 1, torch.randn(4, 3, 5, 6, generator=g)


def _bn() -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return bn


def _worker(rank: int, init: str, out: str) -> None:
    td.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    x, w = _batch()
    half = slice(2 * rank, 2 * rank + 2)
    bn = synchronise_batchnorm(nn.Sequential(_bn()), torch.device("cpu"))[0]
    xr = x[half].clone().requires_grad_(True)
    for _ in range(2):  # two steps: running statistics accumulate
        y = bn(xr)
        (y * w[half]).sum().backward()
    torch.save(
        {
            "y": y.detach(),
            "gx": xr.grad,
            "gw": bn.weight.grad,
            "gb": bn.bias.grad,
            "rm": bn.running_mean,
            "rv": bn.running_var,
            "n": bn.num_batches_tracked,
        },
        f"{out}/rank{rank}.pt",
    )
    td.destroy_process_group()


def test_two_ranks_equal_one_batchnorm_on_the_whole_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(f"file://{tmp_path}/store", str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    x, w = _batch()
    bn = _bn()
    x = x.requires_grad_(True)
    for _ in range(2):
        y = bn(x)
        (y * w).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # noqa: E731
    close(torch.cat([r0["y"], r1["y"]]), y.detach())
    close(torch.cat([r0["gx"], r1["gx"]]), x.grad)  # input gradients through the global statistics
    close(r0["gw"] + r1["gw"], bn.weight.grad)  # DDP sums (averages) the local parameter gradients
    close(r0["gb"] + r1["gb"], bn.bias.grad)
    for r in (r0, r1):  # running statistics: the whole batch's, on every rank
        close(r["rm"], bn.running_mean)
        close(r["rv"], bn.running_var)
        assert int(r["n"]) == 2


def test_without_a_process_group_it_is_plain_batchnorm() -> None:
    x, _ = _batch()
    ours = _bn()
    ours.__class__ = CpuSyncBatchNorm2d
    torch.testing.assert_close(ours(x), _bn()(x), rtol=0, atol=0)
    assert isinstance(synchronise_batchnorm(nn.Sequential(_bn()), torch.device("cpu"))[0], CpuSyncBatchNorm2d)
