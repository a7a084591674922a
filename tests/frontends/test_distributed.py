"""The data-order rule of ``fastbp.distributed`` (pure functions: no MPI needed)."""

import numpy as np
import pytest

from fastbp import distributed as dist


@pytest.mark.parametrize("n,size", [(10, 1), (10, 3), (7, 7), (100, 4), (5, 8)])
def test_shard_bounds_cover_rows_in_order(n, size):
    bounds = [dist.shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, hi), (lo2, _) in zip(bounds, bounds[1:]):
        assert hi == lo2
    lens = [hi - lo for lo, hi in bounds]
    assert max(lens) - min(lens) <= 1
    assert lens == [len(a) for a in np.array_split(np.arange(n), size)]


def test_shard_order_is_seeded_per_epoch_and_rank():
    a = dist.shard_order(3, 0, 1, 20)
    assert sorted(a) == list(range(20)) and a.dtype == np.int64
    assert np.array_equal(a, dist.shard_order(3, 0, 1, 20))
    assert not np.array_equal(a, dist.shard_order(3, 1, 1, 20))
    assert not np.array_equal(a, dist.shard_order(3, 0, 0, 20))
    assert np.array_equal(dist.shard_order(3, 0, 1, 20, shuffle=False), np.arange(20))


def test_equivalent_order_interleaves_local_batches():
    # shards of 5 and 4 rows, b = 2, no shuffling: global batches are
    # [0 1 | 5 6], [2 3 | 7 8], [4 | -]
    order = dist.equivalent_order([5, 4], 2, seed=0, epoch=0, shuffle=False)
    assert order.tolist() == [0, 1, 5, 6, 2, 3, 7, 8, 4]
    rows = dist._rows_per_step([5, 4], 2)
    assert rows.tolist() == [[2, 2, 1], [2, 2, 0]]
    shuffled = dist.equivalent_order([5, 4], 2, seed=0, epoch=3)
    assert sorted(shuffled) == list(range(9))
    first = dist.shard_order(0, 3, 0, 5)
    second = dist.shard_order(0, 3, 1, 4)
    assert shuffled[:4].tolist() == [*first[:2], *(5 + second[:2])]


def test_fit_has_a_finite_default_timeout():
    """A rank that fails before calling fit must not leave the others blocked forever."""
    import inspect
    import math

    default = inspect.signature(dist.fit).parameters["timeout"].default
    assert default == dist.DEFAULT_TIMEOUT and math.isfinite(default) and 0 < default <= 3600
    assert "default 600" in dist.fit.__doc__
