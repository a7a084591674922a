"""SHA-256 of the parameters of a fixed set of trained models: a refactoring guard.

A change that should not alter any result (moving code, renaming, re-plumbing arguments)
must leave every hash below unchanged, bit for bit. Run it before and after and compare::

    python benchmarks/param_hashes.py > before.json
    ... change ...
    python benchmarks/param_hashes.py > after.json && diff before.json after.json

``--mpi`` adds data-parallel runs on 2 ranks (needs the ``mpi`` extra; it launches
``mpiexec -n 2`` on this script). Only public API is used, so the script runs unchanged
on either side of a refactoring.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np


def _h(arr) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]


def _data(n=300, n_in=12, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_out, size=n)
    return X, y


def model_runs() -> dict:
    import fastbp
    from fastbp.optim import SGD, Adagrad, Adam, AdamW, RMSprop
    from fastbp.schedules import CosineAnnealing, ReduceOnPlateau, StepDecay

    X, y = _data()
    Xr = X[:, :5]
    yr = np.sin(X[:, :2]) @ np.ones((2, 1)) * np.ones((1, 2))
    ybin = (X[:, :3] > 0).astype(float)
    out = {}

    def run(name, sizes, fit_kw, model_kw=None, data=(X, y), loss="cross_entropy"):
        for dtype in ("float32", "float64"):
            kw = dict(activation="tanh", loss=loss, dtype=dtype, seed=3)
            kw.update(model_kw or {})
            m = fastbp.Model(sizes, **kw)
            m.fit(*data, **fit_kw)
            out[f"model/{name}/{dtype}"] = _h(m.params) + " " + _h(m.optimizer_state)

    base = dict(epochs=4, batch_size=16, learning_rate=0.05)
    sw = np.random.default_rng(1).uniform(0, 2, size=X.shape[0])
    run("sgd", [12, 16, 3], base)
    run("sgd_full_batch", [12, 16, 3], dict(base, batch_size=None))
    run("sgd_online", [12, 8, 3], dict(base, batch_size=1, epochs=1))
    run("momentum", [12, 16, 3], dict(base, optimizer=SGD(momentum=0.9)))
    run("nesterov", [12, 16, 3], dict(base, optimizer=SGD(momentum=0.9, nesterov=True)))
    run("adam", [12, 16, 3], dict(base, optimizer=Adam(), learning_rate=1e-2))
    run("adamw", [12, 16, 3], dict(base, optimizer=AdamW(), learning_rate=1e-2))
    run("rmsprop", [12, 16, 3], dict(base, optimizer=RMSprop(momentum=0.5, centered=True),
                                     learning_rate=1e-3))
    run("adagrad", [12, 16, 3], dict(base, optimizer=Adagrad(lr_decay=0.01)))
    run("l2_clip", [12, 16, 3], dict(base, l2=1e-3, clip_norm=0.5))
    run("dropout", [12, 16, 16, 3], base, dict(dropout=[0.2, 0.5], activation="relu"))
    run("sample_weight", [12, 16, 3], dict(base, sample_weight=sw, class_weight="balanced"))
    run("early_stopping", [12, 16, 3], dict(
        base, epochs=30, validation_split=0.2,
        early_stopping=fastbp.EarlyStopping(patience=2)))
    run("schedules", [12, 16, 3], dict(base, epochs=6, schedule=StepDecay(2, 0.5)))
    run("plateau", [12, 16, 3], dict(base, epochs=6, schedule=ReduceOnPlateau(patience=1),
                                     validation_data=(X[:50], y[:50])))
    run("cosine", [12, 16, 3], dict(base, epochs=3, schedule=CosineAnnealing(3)))
    run("lbfgs", [12, 16, 3], dict(epochs=15, optimizer="lbfgs", l2=1e-3))
    run("lbfgs_sw", [12, 16, 3], dict(epochs=15, optimizer="lbfgs", sample_weight=sw))
    run("regression", [5, 16, 2], dict(base, optimizer="adam"), dict(activation="relu"),
        data=(Xr, yr), loss="squared_error")
    run("bce", [12, 8, 3], base, dict(activation="logistic"), data=(X, ybin),
        loss="binary_cross_entropy")
    # shapes that take the tiled, packed and parallel paths
    rng = np.random.default_rng(5)
    Xb = rng.normal(size=(256, 300))
    yb = rng.integers(0, 10, size=256)
    run("large", [300, 256, 128, 10], dict(epochs=1, batch_size=128, learning_rate=0.01),
        dict(activation="relu"), data=(Xb, yb))
    # predict and gradient of a trained model
    m = fastbp.Model([300, 256, 10], activation="relu", loss="cross_entropy", seed=1)
    m.fit(Xb, yb, epochs=1, batch_size=64)
    out["model/predict"] = _h(m.predict(Xb))
    loss, g = m.gradient(Xb, yb, l2=1e-3)
    out["model/gradient"] = _h(g) + f" {loss!r}"
    return out


def estimator_runs() -> dict:
    from fastbp.sklearn import MLPClassifier, MLPRegressor

    X, y = _data(n=240)
    out = {}
    yr = np.column_stack([X[:, 0] * X[:, 1], np.tanh(X[:, 2])])
    sw = np.random.default_rng(2).uniform(0.5, 2, size=X.shape[0])
    cases = {
        "clf_adam": (MLPClassifier, dict(solver="adam"), {}),
        "clf_sgd": (MLPClassifier, dict(solver="sgd", learning_rate="invscaling"), {}),
        "clf_sgd_adaptive": (MLPClassifier, dict(solver="sgd", learning_rate="adaptive",
                                                 momentum=0.5, nesterovs_momentum=False), {}),
        "clf_lbfgs": (MLPClassifier, dict(solver="lbfgs"), {}),
        "clf_early": (MLPClassifier, dict(solver="adam", early_stopping=True,
                                          n_iter_no_change=3), {}),
        "clf_sw": (MLPClassifier, dict(solver="sgd"), {"sample_weight": sw}),
        "clf_lbfgs_sw": (MLPClassifier, dict(solver="lbfgs"), {"sample_weight": sw}),
        "reg_adam": (MLPRegressor, dict(solver="adam"), {}),
        "reg_sgd": (MLPRegressor, dict(solver="sgd"), {}),
        "reg_lbfgs": (MLPRegressor, dict(solver="lbfgs"), {}),
    }
    for name, (cls, kw, fit_kw) in cases.items():
        target = yr if cls is MLPRegressor else y
        for dtype in (np.float32, np.float64):
            est = cls(hidden_layer_sizes=(16, 8), max_iter=25, random_state=0,
                      batch_size=32, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X.astype(dtype), target, **fit_kw)
            flat = np.concatenate([c.ravel() for c in est.coefs_]
                                  + [b.ravel() for b in est.intercepts_])
            out[f"sklearn/{name}/{np.dtype(dtype).name}"] = (
                _h(flat) + f" n_iter={est.n_iter_} loss={est.loss_!r}")
    # partial_fit and warm start
    est = MLPClassifier(hidden_layer_sizes=(16,), random_state=0, batch_size=16)
    for k in range(3):
        est.partial_fit(X[k * 50:(k + 1) * 50], y[k * 50:(k + 1) * 50], classes=[0, 1, 2])
    out["sklearn/partial_fit"] = _h(np.concatenate([c.ravel() for c in est.coefs_]))
    est = MLPRegressor(hidden_layer_sizes=(16,), random_state=0, max_iter=5, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, yr)
        est.fit(X, yr)
    out["sklearn/warm_start"] = _h(np.concatenate([c.ravel() for c in est.coefs_]))
    return out


def mpi_worker() -> None:
    import fastbp
    from fastbp import distributed as dist

    comm = dist.world()
    X, y = _data(n=200)
    res = {}
    for name, kw, mkw in (
        ("sgd", dict(epochs=3, batch_size=8, learning_rate=0.05), {}),
        ("adam_l2_clip", dict(epochs=3, batch_size=8, learning_rate=0.01, optimizer="adam",
                              l2=1e-3, clip_norm=1.0), {}),
        ("local_sgd", dict(epochs=2, batch_size=8, learning_rate=0.05, average_every=3), {}),
        ("dropout", dict(epochs=2, batch_size=8, learning_rate=0.05), dict(dropout=0.3)),
    ):
        m = fastbp.Model([12, 16, 3], activation="tanh", loss="cross_entropy", seed=3, **mkw)
        Xl, yl = dist.shard(X, y, comm=comm)
        dist.fit(m, Xl, yl, comm=comm, **kw)
        res[f"mpi/{name}"] = _h(m.params)
    if comm.Get_rank() == 0:
        print("MPI-HASHES " + json.dumps(res))


def mpi_runs() -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run([exe, "-n", "2", sys.executable, os.path.abspath(__file__),
                           "--mpi-worker"], capture_output=True, text=True, env=env,
                          timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("MPI-HASHES "):
            return json.loads(line[len("MPI-HASHES "):])
    raise RuntimeError(f"mpi run failed:\n{proc.stdout}\n{proc.stderr}")


def main() -> None:
    if "--mpi-worker" in sys.argv:
        mpi_worker()
        return
    out = {}
    out.update(model_runs())
    out.update(estimator_runs())
    if "--mpi" in sys.argv:
        out.update(mpi_runs())
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
