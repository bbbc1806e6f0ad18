"""DDP set-up from torchrun's environment (gloo on CPU, nccl on GPU), or a single process."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as td

from ..errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the process that logs and writes)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world > 1

    @classmethod
    def single(cls, device: torch.device | None = None) -> Dist:
        """One process, no process group."""
        return cls(0, 1, 0, device or torch.device("cpu"))

    @classmethod
    def from_env(cls, device: str = "auto") -> Dist:
        """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
        dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(dev)
        if world > 1 and not td.is_initialized():
            td.init_process_group(backend="nccl" if use_cuda else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world, local_rank, dev)

    def barrier(self) -> None:
        """Wait for every rank (nothing with one process)."""
        if self.enabled:
            td.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (just ``[obj]`` in a single process)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        td.all_gather_object(out, obj)
        out[self.rank] = obj
        return out

    def agree(self, check: Callable[[], T]) -> T:
        """Run ``check`` on every rank; where it raises a UsageError on any rank, raise it on all.

        A rank that stopped alone (its node lacks the data, cannot see the run folder) would leave
        the others waiting in their next collective until the timeout; this way every process
        exits at once with the message of the rank (and host) that failed.
        """
        result, failure = None, None
        try:
            result = check()
        except UsageError as exc:
            if not self.enabled:
                raise
            failure = (socket.gethostname(), str(exc))
        failures = {rank: f for rank, f in enumerate(self.gather_objects(failure)) if f is not None}
        if failures:
            messages = {message for _, message in failures.values()}
            if len(messages) == 1 and len(failures) == self.world:  # every rank failed alike: say it once
                raise UsageError(messages.pop())
            raise UsageError(
                "; ".join(f"rank {rank} on {host}: {message}" for rank, (host, message) in failures.items())
            )
        return result  # type: ignore[return-value]  # check() returned on every rank

    def same_everywhere(self, value: Any, what: str, fix: str) -> None:
        """UsageError on every rank unless ``value`` is equal on all of them."""
        values = self.gather_objects(value)
        if any(v != values[0] for v in values):
            each = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise UsageError(f"the ranks disagree on {what} ({each}); {fix}")

    def mean(self, value: float) -> float:
        """Average a float over ranks (for logging)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        td.all_reduce(t)
        return float(t.item()) / self.world

    def close(self) -> None:
        """Leave the process group where one was joined."""
        if self.enabled and td.is_initialized():
            td.destroy_process_group()
