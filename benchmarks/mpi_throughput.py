"""Throughput of ``fastbp.distributed.fit`` and the cost of its per-step Allreduce.

    mpiexec -n 1 python benchmarks/mpi_throughput.py
    mpiexec -n 2 python benchmarks/mpi_throughput.py

One Numba thread per rank by default (``NUMBA_NUM_THREADS`` wins), so that ``P`` ranks use
``P`` cores. For each network and per-rank batch ``b`` it reports, on rank 0: global
training throughput (samples/s, median epoch), the time per step, and the time of one
``Allreduce`` of the flat float32 gradient alone (median over repeated calls, each after
a barrier, of the slowest rank). Not collected by pytest (not named ``bench_*.py``);
results are in ``benchmarks/DISTRIBUTED.md``.
"""

import os
import time

from mpi4py import MPI

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastbp  # noqa: E402
from fastbp import distributed as dist  # noqa: E402

comm = MPI.COMM_WORLD
rank, P = comm.Get_rank(), comm.Get_size()
CONFIGS = [  # (layer sizes, per-rank batch); FASTBP_BENCH_CONFIGS=0,1 picks a subset
    ([32, 64, 64, 10], 32),
    ([32, 256, 256, 10], 32),
    ([32, 256, 256, 10], 256),
    ([256, 1024, 1024, 10], 32),
    ([256, 1024, 1024, 10], 256),
]
if os.environ.get("FASTBP_BENCH_CONFIGS"):
    CONFIGS = [CONFIGS[int(i)] for i in os.environ["FASTBP_BENCH_CONFIGS"].split(",")]
N_GLOBAL = 16384  # training rows over all ranks


def allreduce_time(n_params, dtype, reps=200):
    buf = np.ones(n_params, dtype=dtype)
    times = np.empty(reps)
    for i in range(reps):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times[i] = time.perf_counter() - t0
    slowest = np.empty_like(times)
    comm.Allreduce(times, slowest, op=MPI.MAX)
    return float(np.median(slowest))


def main():
    rng = np.random.default_rng(0)
    if rank == 0:
        print(f"ranks={P} NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']} "
              f"rows={N_GLOBAL} float32 adam", flush=True)
        print("| layers | params | b/rank | global batch | samples/s | us/step | "
              "allreduce us | allreduce MB/s |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
    for sizes, b in CONFIGS:
        X = rng.normal(size=(N_GLOBAL, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], size=N_GLOBAL)
        Xl, yl = dist.shard(X, y, comm=comm)
        model = fastbp.Model(sizes, loss="cross_entropy", seed=0)
        epochs = 4 if sizes[1] < 1024 else 2
        dist.fit(model, Xl[: b * 2], yl[: b * 2], comm=comm, epochs=1,
                 batch_size=b, optimizer="adam")  # compile / warm up
        h = dist.fit(model, Xl, yl, comm=comm, epochs=epochs, batch_size=b, optimizer="adam",
                     learning_rate=1e-4)
        t_epoch = float(np.median(h["time"][-epochs:]))
        steps = -(-len(Xl) // b)
        n = model.params.shape[0]
        t_ar = allreduce_time(n, np.float32) if P > 1 else 0.0
        if rank == 0:
            bw = f"{4 * n / t_ar / 1e6:,.0f}" if t_ar else "-"
            print(f"| {sizes} | {n:,} | {b} | {P * b} | {N_GLOBAL / t_epoch:,.0f} | "
                  f"{t_epoch / steps * 1e6:,.0f} | {t_ar * 1e6:,.1f} | {bw} |", flush=True)


if __name__ == "__main__":
    main()
