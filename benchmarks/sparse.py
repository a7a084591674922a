"""Sparse workload: an MLP on a wide bag-of-words CSR, fastbp vs scikit-learn (vs PyTorch).

A synthetic CSR (default 20,000 x 100,000 at 0.05% density, about 50 non-zeros per row,
labels from a sparse linear teacher) trains a ``[n_in, 64, 10]`` ReLU MLP with Adam,
minibatches of 200, shuffled, in float32 (scikit-learn in float64 too when given float64:
here it gets the float32 CSR, so it computes in float32). Each framework runs in its own
process so that its peak RSS is its own; every process builds the same data from the seed.

    python benchmarks/sparse.py                     # all frameworks, default sizes
    python benchmarks/sparse.py --rows 60000 --epochs 1 --repeats 3
    python benchmarks/sparse.py --only fastbp       # one framework, in this process

Prints, per framework, the median samples/s of the timed epochs (the first epoch, which
compiles / warms up, is not timed), the final training loss and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp


def make_data(rows: int, cols: int, density: float, classes: int, seed: int = 0):
    """A bag-of-words-like CSR (float32, counts 1-3) and labels from a sparse teacher."""
    rng = np.random.default_rng(seed)
    nnz_row = max(1, int(round(cols * density)))
    # Zipf-like column popularity, as word frequencies
    p = 1.0 / np.arange(1, cols + 1) ** 0.8
    p /= p.sum()
    indices = rng.choice(cols, size=rows * nnz_row, p=p).astype(np.int32)
    data = rng.integers(1, 4, size=rows * nnz_row).astype(np.float32)
    indptr = np.arange(0, rows * nnz_row + 1, nnz_row, dtype=np.int32)
    X = sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    X.sum_duplicates()
    teacher = rng.normal(size=(cols, classes)).astype(np.float32)
    y = np.asarray((X @ teacher).argmax(axis=1)).ravel()
    return X, y


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_fastbp(X, y, args):
    import fastbp

    m = fastbp.Model([X.shape[1], args.hidden, args.classes], loss="cross_entropy",
                     dtype="float32", seed=0)
    times, losses = [], []
    for e in range(args.epochs + 1):
        t0 = time.perf_counter()
        h = m.fit(X, y, epochs=1, batch_size=args.batch, learning_rate=1e-3,
                  optimizer="adam")
        if e:
            times.append(time.perf_counter() - t0)
        losses.append(h["loss"][-1])
    return times, losses[-1]


def run_sklearn(X, y, args):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier((args.hidden,), batch_size=args.batch, learning_rate_init=1e-3,
                        random_state=0)
    classes = np.arange(args.classes)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for e in range(args.epochs + 1):
            t0 = time.perf_counter()
            clf.partial_fit(X, y, classes=classes)  # one shuffled epoch per call
            if e:
                times.append(time.perf_counter() - t0)
    return times, float(clf.loss_)


def run_torch(X, y, args):
    import torch

    torch.manual_seed(0)
    n, n_in = X.shape
    Xc = X.tocsr()
    model = torch.nn.Sequential(torch.nn.Linear(n_in, args.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden, args.classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lin0, rest = model[0], model[1:]
    yt = torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(0)
    times, last = [], float("nan")
    for e in range(args.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for s in range(0, n, args.batch):
            idx = order[s : s + args.batch]
            xb = Xc[idx].tocoo()
            xt = torch.sparse_coo_tensor(np.vstack([xb.row, xb.col]).astype(np.int64),
                                         xb.data, xb.shape)
            z = torch.sparse.mm(xt, lin0.weight.t()) + lin0.bias
            loss = torch.nn.functional.cross_entropy(rest(z), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if e:
            times.append(time.perf_counter() - t0)
        last = total / n
    return times, last


RUNNERS = {"fastbp": run_fastbp, "sklearn": run_sklearn, "torch": run_torch}


def run_one(name: str, args) -> dict:
    X, y = make_data(args.rows, args.cols, args.density, args.classes)
    base = peak_rss_mb()
    times, final = RUNNERS[name](X, y, args)
    return {"framework": name, "samples_per_s": X.shape[0] / statistics.median(times),
            "epoch_s": statistics.median(times), "final_loss": float(final),
            "peak_rss_mb": peak_rss_mb(), "rss_after_data_mb": base,
            "csr_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--cols", type=int, default=100_000)
    ap.add_argument("--density", type=float, default=0.0005)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    ap.add_argument("--only", choices=list(RUNNERS))
    ap.add_argument("--json", action="store_true", help="print one JSON line (with --only)")
    args = ap.parse_args()
    if args.only:
        res = run_one(args.only, args)
        print(json.dumps(res) if args.json else res)
        return
    names = ["fastbp", "sklearn"]
    try:
        import torch  # noqa: F401

        names.append("torch")
    except ImportError:
        print("PyTorch not importable: skipped")
    print(f"CSR {args.rows} x {args.cols}, density {args.density}, MLP [{args.cols}, "
          f"{args.hidden}, {args.classes}], Adam, batch {args.batch}, float32, "
          f"{args.epochs} timed epoch(s); NUMBA_NUM_THREADS="
          f"{os.environ.get('NUMBA_NUM_THREADS', 'all cores')}")
    print(f"{'framework':<10} {'samples/s':>12} {'epoch s':>9} {'loss':>8} {'peak RSS MB':>12} "
          f"{'(data) MB':>10}")
    argv = [a for a in sys.argv[1:] if a != "--json"]
    for name in names:
        out = subprocess.run([sys.executable, __file__, *argv, "--only", name, "--json"],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{name:<10} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<10} {r['samples_per_s']:>12.0f} {r['epoch_s']:>9.2f} "
              f"{r['final_loss']:>8.4f} {r['peak_rss_mb']:>12.0f} {r['rss_after_data_mb']:>10.0f}")


if __name__ == "__main__":
    main()
