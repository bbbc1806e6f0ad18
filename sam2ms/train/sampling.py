"""Which samples each process trains on, step by step: a DistributedSampler that keeps exact resume.

An epoch is one seeded permutation of the training set, padded by repeating its start to a whole
number of *global* batches (``world x batch x accum`` samples per optimizer step). Step ``k`` of
the epoch is the slice ``[k*G, (k+1)*G)`` of that order, whatever the number of processes: its
``accum`` micro-rounds are consecutive slices of ``world x batch``, and each rank takes its own
``batch`` from every round. So

* the samples of an optimizer step depend only on (seed, epoch, step, global batch): a job on two
  nodes of one process sees, step by step, the batches of one process with a twice larger batch;
* a position inside an epoch is just the step index, which the checkpoint records, so a resumed
  run (on the same global batch, even with another ``world x accum`` split) replays the rest of
  the epoch exactly, with no sampler state to save;
* every rank gets the same number of full batches (BatchNorm needs more than one value per
  channel, and DDP needs equal step counts).
"""

from __future__ import annotations

import numpy as np


def epoch_order(n: int, seed: int, epoch: int, global_batch: int) -> list[int]:
    """The epoch's global sample order, padded to a multiple of ``global_batch``."""
    order: list[int] = np.random.default_rng([seed, 10_000 + epoch]).permutation(n).tolist()
    return order + [order[i % n] for i in range((-n) % global_batch)]


def rank_steps(
    n: int, seed: int, epoch: int, *, world: int, rank: int, batch: int, accum: int
) -> list[list[list[int]]]:
    """This rank's optimizer steps of ``epoch``: each a list of ``accum`` micro-batches of indices."""
    round_size = world * batch
    order = epoch_order(n, seed, epoch, round_size * accum)
    micro = [order[start + rank * batch : start + (rank + 1) * batch] for start in range(0, len(order), round_size)]
    return [micro[i : i + accum] for i in range(0, len(micro), accum)]
