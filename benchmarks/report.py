"""Run the fastbp / PyTorch / JAX / scikit-learn comparison and write RESULTS.md and a chart.

Usage (from the repository root)::

    python benchmarks/report.py                 # everything, all cores, ~5-10 minutes
    python benchmarks/report.py --quick         # fewer repeats
    python benchmarks/report.py --systems fastbp,torch --workloads small,mnist
    python benchmarks/report.py --scaling 1,2,4,8,16 --out /tmp/results   # on a bigger box

Every system runs in its own subprocess (so that no two thread pools -- Numba's, PyTorch's
OpenMP, XLA's -- ever share the cores, and so that memory is measured per system). Each
training measurement is one epoch of plain minibatch SGD (lr 0.01, no shuffling) from the
same initial weights, timed after a warm-up epoch that excludes compile time; the median of
several epochs is reported. The "GEMM roofline" of a workload is the machine's real float32
matrix-multiply peak divided by the workload's training FLOPs per sample (forward + backward
deltas + weight gradients). The peak is measured in a child process with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its environment (some machines
set them, forcing OpenBLAS onto AVX2 kernels at about half the AVX-512 rate): NumPy sgemm
2048^3, median of 7, at the run's thread count and at 1 thread; the report names the
OpenBLAS kernels that ran (threadpoolctl's ``architecture``). NumPy's rate under the
inherited environment is reported beside it, never used as the roofline.

The busy-neighbour table trains the mnist workload with fastbp's default settings while one
other process spins on a core, against the quiet single-thread rate of the same process.

Measuring is ``_measure.py`` (each measurement a subprocess; the run's data go to
``results.json``), rendering ``_render.py`` (``RESULTS.md`` and ``results.png`` from that
data alone: ``--rerender`` measures nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _measure import SYSTEMS, measure  # noqa: E402
from _render import write_report  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--workloads", default="tiny_online,small,mnist,wide")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="3 repeats")
    p.add_argument("--threads", type=int, default=None, help="threads per system (all cores)")
    p.add_argument("--scaling", default=None,
                   help="fastbp thread counts for the scaling table (default 1..cores, doubling)")
    p.add_argument("--no-startup", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-contention", action="store_true", help="skip the busy-neighbour run")
    p.add_argument("--out", default=HERE, help="folder for RESULTS.md and results.png")
    p.add_argument("--rerender", action="store_true",
                   help="measure nothing: rewrite RESULTS.md from OUT/results.json")
    p.add_argument("--note", default=None, help="a remark printed under the machine description")
    p.add_argument("--include", action="append", metavar="RESULTS_JSON=TITLE",
                   help="append the tables of an earlier run (e.g. another machine)")
    args = p.parse_args(argv)

    if args.rerender:
        with open(os.path.join(args.out, "results.json")) as fh:
            data = json.load(fh)
    else:
        os.makedirs(args.out, exist_ok=True)
        data = measure(args)
    if args.note:
        data["note"] = args.note
    data.setdefault("systems", list(data["results"]))
    data.setdefault("names", list(next(iter(data["results"].values()))))
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(data, fh, indent=1)
    print(write_report(data, args.out, args.include or []))


if __name__ == "__main__":
    main()
