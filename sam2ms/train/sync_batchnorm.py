"""BatchNorm statistics over the whole global batch, on GPUs *and* CPUs.

SAM2MS's DRB, MSSM and decoder normalise with BatchNorm. Under DDP each process would otherwise
normalise with the statistics of its own few images, so N processes with batch b would not train
the model that one process with batch N*b trains, and BatchNorm's running statistics would be
those of rank 0 alone. ``torch.nn.SyncBatchNorm`` fixes that on GPUs but refuses CPU tensors
("expected input tensor to be on GPU"), and CPU-only DDP (gloo) is what multi-node training is
tested with here and what CPU clusters run. :func:`synchronise_batchnorm` uses torch's class (and
its fused kernels) on accelerators and :class:`CpuSyncBatchNorm2d` on CPUs, the same arithmetic:
per-channel sums all-reduced in the forward pass (mean, then the centred sum of squares: two
passes, as exact as a single process's) and the two gradient sums in the backward pass.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as td
from torch import nn
from typing_extensions import override


def _all_reduce(t: torch.Tensor, group: Any) -> torch.Tensor:
    td.all_reduce(t, group=group)
    return t


def _channel_layout(ndim: int) -> tuple[list[int], list[int]]:
    """The dimensions a per-channel statistic sums over, and the shape that broadcasts it back."""
    return [0, *range(2, ndim)], [1, -1] + [1] * (ndim - 2)


class _CpuSyncBatchNorm(torch.autograd.Function):
    """Training-mode batch norm whose statistics and input gradient span every rank of ``group``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        running_mean: torch.Tensor | None,
        running_var: torch.Tensor | None,
        eps: float,
        momentum: float,
        group: Any,
    ) -> torch.Tensor:
        dims, shape = _channel_layout(x.dim())
        xf = x.float()
        sums = _all_reduce(torch.cat([xf.sum(dims), torch.tensor([xf.numel() / xf.shape[1]])]), group)
        count = float(sums[-1])
        mean = sums[:-1] / count
        centred = xf - mean.view(shape)
        var = _all_reduce(centred.square().sum(dims), group) / count
        invstd = torch.rsqrt(var + eps)
        xhat = centred * invstd.view(shape)
        y = xhat if weight is None or bias is None else xhat * weight.view(shape) + bias.view(shape)
        if running_mean is not None and running_var is not None:
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var * (count / max(count - 1, 1)), alpha=momentum)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.count, ctx.group, ctx.in_dtype = count, group, x.dtype
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xhat, invstd, weight = ctx.saved_tensors
        dims, shape = _channel_layout(xhat.dim())
        g = grad_out.float()
        sum_dy, sum_dy_xhat = g.sum(dims), (g * xhat).sum(dims)
        grad_weight = sum_dy_xhat.clone() if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy.clone() if weight is not None and ctx.needs_input_grad[2] else None
        both = _all_reduce(torch.cat([sum_dy, sum_dy_xhat]), ctx.group) / ctx.count
        mean_dy, mean_dy_xhat = both.chunk(2)
        scale = invstd if weight is None else invstd * weight.float()
        grad_x = (g - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)) * scale.view(shape)
        return grad_x.to(ctx.in_dtype), grad_weight, grad_bias, None, None, None, None, None


class CpuSyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics span every rank (same parameters and buffers, so the
    same checkpoints). Not a ``torch.nn.SyncBatchNorm``: DDP refuses those on CPU modules.
    """

    @override
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not td.is_initialized() or td.get_world_size() == 1:
            return super().forward(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as torch's BatchNorm
                momentum = 1.0 / float(self.num_batches_tracked)
        out: torch.Tensor = _CpuSyncBatchNorm.apply(
            input, self.weight, self.bias, self.running_mean, self.running_var, self.eps, momentum, td.group.WORLD
        )
        return out


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm synchronised over the process group: torch's
    ``SyncBatchNorm`` (fused kernels) on accelerators, :class:`CpuSyncBatchNorm2d` on CPU. The
    returned module is the one to train (torch's converter may return a new one).
    """
    if device.type != "cpu":
        synced: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        return synced
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = CpuSyncBatchNorm2d  # adds behaviour only: same parameters and buffers
    return model
