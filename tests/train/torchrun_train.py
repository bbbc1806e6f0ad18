"""``sam2ms train`` for torchrun in the multi-node tests, with two test-only hooks (environment variables).

* ``SAM2MS_TEST_DUMP=DIR``: after training, every rank saves its own weights to ``DIR/rankR.pt``
  (the run writes rank 0's only), so a test can compare the replicas;
* ``SAM2MS_TEST_KILL_AT=N``: on reaching optimizer step N this "node" dies the way a lost machine
  does: its torchrun agent and then its worker are killed with SIGKILL, nothing is cleaned up.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from sam2ms.cli import main
from sam2ms.train.trainer import Trainer

_fit, _step = Trainer.fit, Trainer._step


def fit(self: Trainer) -> dict[str, Any]:
    summary = _fit(self)
    if dump := os.environ.get("SAM2MS_TEST_DUMP"):
        torch.save(self.model.state_dict(), Path(dump) / f"rank{self.dist.rank}.pt")
    return summary


def step(self: Trainer, group: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    if self.pos.global_step + 1 == int(os.environ.get("SAM2MS_TEST_KILL_AT", "0")):
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    return _step(self, group)


Trainer.fit, Trainer._step = fit, step  # type: ignore[method-assign]
if __name__ == "__main__":
    sys.argv = ["sam2ms", "train", *sys.argv[1:]]
    main()
