"""Out-of-core training: ``partial_fit`` over chunks of a file against ``fit`` on all of it.

Writes a float32 data set to ``.npy`` files (default 400,000 rows x 64 features, 102 MB,
labels of 10 classes from a random teacher network), opens them read-only as memory maps,
as data bigger than memory is opened, and times one epoch over the same rows two ways:

- ``fit``: ``Model.fit(X, y, epochs=1)`` on the whole memory map;
- ``partial_fit``: ``Model.partial_fit(X[i:i + chunk], y[i:i + chunk])`` over consecutive
  chunks of 10,000 rows (each call checks and converts its chunk, trains on it, records an
  epoch in the history).

Both keep the rows' order (``shuffle=False``) with a batch size that divides the chunk, so
the two runs take exactly the same steps; the script checks that they end with bitwise
equal parameters, then prints samples/s (the best of ``--repeats``, fit and partial_fit
alternating, with the medians) and the ratio partial_fit / fit. The target is >= 0.90:
the per-call work of ``partial_fit`` (argument checks, the rollback snapshot, the
history; about 0.12 ms) must stay small against 10,000 rows of training.

    python benchmarks/out_of_core.py                       # the defaults above
    python benchmarks/out_of_core.py --hidden 256,128 --batch 100 --rows 200000

The figures depend on the machine and on how busy it is: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import fastbp


def write_data(folder: str, rows: int, features: int, classes: int, seed: int = 0):
    """``X.npy`` (rows, features) float32 and ``y.npy`` (rows,) int64, written by chunks;
    returned opened read-only as memory maps."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), "w+", np.float32,
                                  (rows, features))
    y = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), "w+", np.int64, (rows,))
    for i in range(0, rows, 50_000):
        block = rng.standard_normal((min(50_000, rows - i), features), dtype=np.float32)
        X[i:i + len(block)] = block
        y[i:i + len(block)] = np.argmax(np.tanh(block) @ teacher, axis=1)
    X.flush()
    y.flush()
    del X, y
    return (np.load(os.path.join(folder, "X.npy"), mmap_mode="r"),
            np.load(os.path.join(folder, "y.npy"), mmap_mode="r"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--hidden", default="64,32", help="hidden layer sizes, comma-separated")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default=None, help="folder for the data files (default: a "
                    "temporary folder, removed afterwards)")
    args = ap.parse_args(argv)
    sizes = [args.features] + [int(h) for h in args.hidden.split(",") if h] + [args.classes]

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        X, y = write_data(folder, args.rows, args.features, args.classes)
        print(f"data: {args.rows:,} x {args.features} float32 ({X.nbytes / 1e6:.0f} MB) in "
              f"{folder}, read-only memory map; layers {'-'.join(map(str, sizes))}, batch "
              f"{args.batch}, chunks of {args.chunk:,} rows "
              f"({-(-args.rows // args.chunk)} partial_fit calls), fastbp "
              f"{fastbp.__version__}")
        return measure(X, y, sizes, args)


def measure(X, y, sizes, args) -> dict:
    """Median seconds of one epoch by fit and by partial_fit over chunks; prints them."""
    same_steps = args.chunk % args.batch == 0

    def model():
        return fastbp.Model(sizes, loss="cross_entropy", seed=0)

    def run_fit():
        m = model()
        t0 = time.perf_counter()
        m.fit(X, y, epochs=1, batch_size=args.batch, shuffle=False)
        return time.perf_counter() - t0, m

    def run_partial():
        m = model()
        t0 = time.perf_counter()
        for i in range(0, args.rows, args.chunk):
            m.partial_fit(X[i:i + args.chunk], y[i:i + args.chunk], batch_size=args.batch,
                          shuffle=False)
        return time.perf_counter() - t0, m

    # warm-up: compiled code (or the cache), the page cache, the calls' tuning of their
    # compiled-call length
    run_fit()
    run_partial()
    fit_s, part_s = [], []
    for _ in range(args.repeats):
        t, m_fit = run_fit()
        fit_s.append(t)
        t, m_part = run_partial()
        part_s.append(t)
    if same_steps:
        assert np.array_equal(m_fit.params, m_part.params), (
            "fit and partial_fit took different steps")
    # the best of the repeats: the run least disturbed by other processes (timeit's rule)
    fit_rate = args.rows / min(fit_s)
    part_rate = args.rows / min(part_s)
    ratio = part_rate / fit_rate
    calls = -(-args.rows // args.chunk)
    overhead = (min(part_s) - min(fit_s)) / calls
    print(f"fit          {fit_rate / 1e3:9.1f} k samples/s   (best of {args.repeats}: "
          f"{min(fit_s):.3f} s, median {statistics.median(fit_s):.3f} s)")
    print(f"partial_fit  {part_rate / 1e3:9.1f} k samples/s   (best of {args.repeats}: "
          f"{min(part_s):.3f} s, median {statistics.median(part_s):.3f} s; "
          f"{overhead * 1e3:+.2f} ms a call against fit)")
    print(f"partial_fit / fit = {ratio:.3f}  (target >= 0.90: "
          f"{'met' if ratio >= 0.9 else 'NOT met'})"
          + ("; parameters bitwise equal" if same_steps else
             "; the batch does not divide the chunk: the steps differ, parameters not "
             "compared"))
    return {"fit": fit_rate, "partial_fit": part_rate, "ratio": ratio}


if __name__ == "__main__":
    main()
