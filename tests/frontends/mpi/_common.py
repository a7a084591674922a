"""Helpers shared by the scripts that ``tests/frontends/test_distributed_mpi.py`` runs under
mpiexec."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))

import fastbp  # noqa: E402
from fastbp.distributed import world  # noqa: E402


def warm_kernels(comm):
    """Compile the distributed step kernels (float32 and float64) on rank 0 while the other
    ranks wait, so that they load them from Numba's disk cache instead of compiling too."""
    if comm.Get_rank() == 0:
        from fastbp.kernels import OptimizerArgs
        from fastbp.kernels._drivers import all_finite, apply_step, local_step_gradient

        for dtype in ("float32", "float64"):
            m = fastbp.Model([3, 4, 2], loss="cross_entropy", dtype=dtype, seed=0,
                             dropout=0.5)
            net = m.kernel_args()._replace(drop_seed=1)  # as each rank's seed replaces it
            ws = m.network.workspace(2).arrays()
            X = np.zeros((2, 3), dtype)
            T = np.zeros((2, 2), dtype)
            order = np.arange(2, dtype=np.int64)
            totals = np.zeros(3)
            for SW in (np.zeros(0, dtype), np.ones(2, dtype)):
                for scale in (np.float64(0.5), 0.5):
                    local_step_gradient(X, T, SW, order, 0, 2, scale, net, ws, np.int64(1),
                                        totals)
            state = np.zeros((2, m.params.shape[0]), dtype)
            all_finite(m.params)
            all_finite(state)
            apply_step(net, OptimizerArgs(0, np.zeros(4), state, np.zeros(1, np.int64)), 0.1,
                       0.0, 0.0)
    comm.Barrier()


def gather_equal(comm, arr):
    """True on rank 0 when every rank's ``arr`` is bitwise equal to rank 0's."""
    arrs = comm.gather(np.array(arr, copy=True), root=0)
    if comm.Get_rank() != 0:
        return True
    return all(a.tobytes() == arrs[0].tobytes() for a in arrs)


__all__ = ["fastbp", "gather_equal", "warm_kernels", "world"]
