"""fastbp's scikit-learn estimators next to scikit-learn's own MLPClassifier, on digits.

The two classes take the same parameters and, with the same ``random_state``, follow the
same computation (initial weights, minibatch order, update rules), so they reach the same
accuracy; what differs is the time the forward and backward passes take. Shown three ways:
one fit inside a ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.

Run: ``python examples/sklearn_compare.py [--threads N]``

``--threads`` sets Numba's thread count (default: Numba's, one per core). On a machine whose
cores are busy with other work, fastbp's parallel kernels wait for descheduled threads; one
thread is then much faster (and scikit-learn's BLAS is affected in the same way).
"""

import argparse
import time
import warnings

import numba
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fastbp.sklearn import MLPClassifier as FastbpMLP

warnings.simplefilter("ignore", ConvergenceWarning)

SETTINGS = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=64, max_iter=40,
                learning_rate_init=1e-3, alpha=1e-4, random_state=0)


def pipeline(cls, float32=False, **overrides):
    steps = [StandardScaler()]
    if float32:  # fastbp (and scikit-learn) compute in float32 when X is float32
        steps.append(FunctionTransformer(np.float32))
    return make_pipeline(*steps, cls(**{**SETTINGS, **overrides}))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="Numba threads")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    print(f"digits: {X_train.shape[0]} training / {X_test.shape[0]} test samples, "
          f"{X.shape[1]} features, 10 classes")
    print("settings:", SETTINGS)
    print(f"Numba threads: {numba.get_num_threads()}")
    # compile fastbp's kernels once (Numba caches them on disk for later runs)
    pipeline(FastbpMLP, max_iter=1).fit(X_train[:100], y_train[:100])
    pipeline(FastbpMLP, float32=True, max_iter=1).fit(X_train[:100], y_train[:100])

    print("\n1) one fit of Pipeline(StandardScaler, MLPClassifier) (best of 3 runs)")
    rows = [("scikit-learn MLPClassifier", pipeline(SklearnMLP)),
            ("fastbp.sklearn MLPClassifier", pipeline(FastbpMLP)),
            ("fastbp.sklearn, float32 X", pipeline(FastbpMLP, float32=True))]
    fitted = {}
    for name, pipe in rows:
        seconds = min(timed(lambda p=pipe: p.fit(X_train, y_train))[1] for _ in range(3))
        fitted[name] = pipe
        print(f"   {name:30s} fit {seconds:6.2f} s   test accuracy "
              f"{pipe.score(X_test, y_test):.4f}   epochs {pipe[-1].n_iter_}")
    sk, fb = fitted[rows[0][0]][-1], fitted[rows[1][0]][-1]
    diff = max(np.abs(a - b).max() for a, b in zip(sk.coefs_, fb.coefs_, strict=True))
    print(f"   largest |weight difference| scikit-learn vs fastbp (float64): {diff:.2e}")

    print("\n2) cross_val_score(pipeline, X, y, cv=5)")
    for name, cls in [("scikit-learn", SklearnMLP), ("fastbp", FastbpMLP)]:
        scores, seconds = timed(lambda c=cls: cross_val_score(pipeline(c), X, y, cv=5))
        print(f"   {name:13s} accuracy {scores.mean():.4f} +- {scores.std():.4f}   "
              f"{seconds:6.2f} s")

    print("\n3) GridSearchCV over hidden_layer_sizes x alpha (cv=3)")
    grid = {"mlpclassifier__hidden_layer_sizes": [(50,), (100,)],
            "mlpclassifier__alpha": [1e-4, 1e-1]}
    for name, cls in [("scikit-learn", SklearnMLP), ("fastbp", FastbpMLP)]:
        search, seconds = timed(
            lambda c=cls: GridSearchCV(pipeline(c), grid, cv=3).fit(X_train, y_train))
        best = {k.split("__")[1]: v for k, v in search.best_params_.items()}
        print(f"   {name:13s} best {best}  cv accuracy {search.best_score_:.4f}  test "
              f"{search.score(X_test, y_test):.4f}   {seconds:6.2f} s")


if __name__ == "__main__":
    main()
