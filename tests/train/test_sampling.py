"""The per-rank sampler: N ranks together take exactly the batches of one process with N x batch."""

import pytest

from sam2ms.train.sampling import epoch_order, rank_steps


@pytest.mark.parametrize("n,world,batch,accum", [(7, 2, 2, 1), (10, 3, 1, 2), (5, 4, 2, 1), (16, 2, 4, 2)])
def test_ranks_together_take_the_single_process_steps(n: int, world: int, batch: int, accum: int) -> None:
    single = rank_steps(n, 0, 3, world=1, rank=0, batch=world * batch, accum=accum)
    ranks = [rank_steps(n, 0, 3, world=world, rank=r, batch=batch, accum=accum) for r in range(world)]
    assert all(len(steps) == len(single) for steps in ranks)  # equal step counts (DDP)
    for k, step in enumerate(single):
        for j, micro in enumerate(step):
            together = [i for r in range(world) for i in ranks[r][k][j]]
            assert sorted(together) == sorted(micro)
            assert all(len(ranks[r][k][j]) == batch for r in range(world))  # full batches (BatchNorm)


def test_every_sample_is_seen_and_epochs_differ() -> None:
    order = epoch_order(7, 0, 0, global_batch=4)
    assert len(order) == 8 and set(order) == set(range(7))
    assert epoch_order(7, 0, 1, 4) != order and epoch_order(7, 1, 0, 4) != order
    assert epoch_order(7, 0, 0, 4) == order  # seeded: resume needs no sampler state


def test_same_global_batch_same_samples_per_step() -> None:
    """A resumed run on half the processes keeps its steps by doubling accum."""
    four = rank_steps(13, 2, 0, world=4, rank=0, batch=2, accum=1)
    two = [rank_steps(13, 2, 0, world=2, rank=r, batch=2, accum=2) for r in range(2)]
    four_all = [rank_steps(13, 2, 0, world=4, rank=r, batch=2, accum=1) for r in range(4)]
    for k in range(len(four)):
        assert sorted(i for r in range(4) for i in four_all[r][k][0]) == sorted(
            i for r in range(2) for mb in two[r][k] for i in mb
        )
