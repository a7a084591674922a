"""``fastbp.sklearn.MLPClassifier`` beside ``fastbp.Model`` on the same training task.

Usage (from the repository root)::

    python benchmarks/estimator_overhead.py            # 5 repeats, alternating
    python benchmarks/estimator_overhead.py --alpha 1e-4   # with scikit-learn's L2 default

An MNIST-5k-like task: 5,000 random 784-feature rows, 10 classes, layers 784-256-128-10
(ReLU), Adam (lr 1e-3), batch 128, 20 epochs, shuffled, float32; the estimator with
``tol=0`` and ``n_iter_no_change`` above ``max_iter`` so that it runs all 20 epochs as
``Model`` does, and ``alpha=0`` (no L2 term, as ``Model``'s default: the same arithmetic
per step; ``--alpha 1e-4``, scikit-learn's default, adds the penalty's pass over the
weights). Both are warmed up first (compilation excluded); the two fits alternate, and the
script prints each one's median wall time and their ratio. The estimator's target: within
1.1x of ``Model``.
"""

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier  # noqa: E402

N, D, CLASSES, EPOCHS, BATCH = 5_000, 784, 10, 20, 128


def main(repeats=5, alpha=0.0):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D), dtype=np.float32)
    y = rng.integers(0, CLASSES, N)

    def model_fit():
        m = fastbp.Model([D, 256, 128, CLASSES], loss="cross_entropy", seed=0)
        m.fit(X, y, epochs=EPOCHS, batch_size=BATCH, learning_rate=1e-3, optimizer="adam")

    def estimator_fit():
        est = MLPClassifier(hidden_layer_sizes=(256, 128), solver="adam",
                            learning_rate_init=1e-3, batch_size=BATCH, max_iter=EPOCHS,
                            tol=0.0, n_iter_no_change=EPOCHS + 1, alpha=alpha,
                            random_state=0)
        est.fit(X, y)
        assert est.n_iter_ == EPOCHS, est.n_iter_

    times = {"Model": [], "MLPClassifier": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random labels: no progress, and max_iter reached
        model_fit()
        estimator_fit()  # warm-up: compilation
        for _ in range(repeats):
            for name, fit in (("Model", model_fit), ("MLPClassifier", estimator_fit)):
                t0 = time.perf_counter()
                fit()
                times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:14s} median {med[k]:.3f} s  ({', '.join(f'{t:.3f}' for t in v)})")
    print(f"MLPClassifier / Model: {med['MLPClassifier'] / med['Model']:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.0)
    args = ap.parse_args()
    main(args.repeats, args.alpha)
