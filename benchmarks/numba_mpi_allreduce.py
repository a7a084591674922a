"""Allreduce from compiled code (numba-mpi) vs from Python (mpi4py), per call.

    pip install numba-mpi
    mpiexec -n 2 python benchmarks/numba_mpi_allreduce.py

Why ``fastbp.distributed`` leaves compiled code once per step: the saving numba-mpi would
bring is this difference (~2 µs per call measured here, see ``DISTRIBUTED.md``), and
numba-mpi 1.3.1 rejects float32 buffers (fastbp's default dtype) with NotImplementedError.
"""

import time

import numba
import numba_mpi as nm
import numpy as np
from mpi4py import MPI

N, REPS = 1000, 10000


@numba.njit
def loop(a, b, k):
    for _ in range(k):
        nm.allreduce(a, b, nm.Operator.SUM)


def main():
    comm = MPI.COMM_WORLD
    a = np.ones(N, np.float64)
    b = np.empty_like(a)
    loop(a, b, 1)
    comm.Barrier()
    t0 = time.perf_counter()
    loop(a, b, REPS)
    t_nm = (time.perf_counter() - t0) / REPS
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(REPS):
        comm.Allreduce(MPI.IN_PLACE, b, op=MPI.SUM)
    t_py = (time.perf_counter() - t0) / REPS
    try:
        loop(a.astype(np.float32), b.astype(np.float32), 1)
        f32 = "supported"
    except Exception as exc:  # noqa: BLE001 - reported
        f32 = f"not supported ({type(exc).__name__})"
    if comm.Get_rank() == 0:
        print(f"{N} float64, {comm.Get_size()} ranks: numba-mpi {t_nm * 1e6:.1f} us, "
              f"mpi4py {t_py * 1e6:.1f} us per allreduce; float32 in numba-mpi: {f32}")


if __name__ == "__main__":
    main()
