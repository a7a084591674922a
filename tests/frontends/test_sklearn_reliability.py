"""fastbp.sklearn under failure: a warm-start fit that diverges leaves the estimator exactly as
it was, Ctrl-C stops within a fraction of an epoch and leaves a consistent estimator, and
estimators fitted in several threads at once neither crash nor change their results."""

import _thread
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")

from conftest import sigint_on_call  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ATTRS = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
         "best_validation_score_")


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y


def _target(est, X, y):
    return X @ np.arange(1.0, 6.0) if isinstance(est, MLPRegressor) else y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, _target(est, X, y))


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _snapshot(est, X):
    attrs = {a: pickle.loads(pickle.dumps(getattr(est, a, None))) for a in ATTRS}
    return _outputs(est, X), [c.copy() for c in est.coefs_ + est.intercepts_], attrs


def _assert_same(est, X, snap):
    out, params, attrs = snap
    np.testing.assert_array_equal(_outputs(est, X), out)
    for a, b in zip(est.coefs_ + est.intercepts_, params, strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ATTRS:
        assert getattr(est, name, None) == attrs[name], name


ESTIMATORS = {
    "classifier-sgd": lambda: MLPClassifier((8,), solver="sgd", batch_size=16),
    "classifier-adam": lambda: MLPClassifier((8,), batch_size=16),
    "classifier-adam-early-stopping": lambda: MLPClassifier(
        (8,), batch_size=16, early_stopping=True, n_iter_no_change=50),
    "regressor-adam": lambda: MLPRegressor(hidden_layer_sizes=(8,), batch_size=16),
}


# ------------------------------------------------------------------ divergence
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_warm_start_fit_that_diverges_leaves_the_estimator_as_before(name):
    """scikit-learn's error for non-finite weights, and nothing of the call is kept: the
    weights predict uses, n_iter_, loss_curve_, ... are those of before the call, and
    training on equals training a copy that never saw the failed call."""
    X, y = _data()
    est = ESTIMATORS[name]().set_params(warm_start=True, max_iter=4, random_state=0,
                                        learning_rate_init=0.01)
    _fit(est, X, y)
    twin = pickle.loads(pickle.dumps(est))
    before = _snapshot(est, X)
    est.set_params(learning_rate_init=1e300)
    with pytest.raises(ValueError, match="non-finite"):
        _fit(est, X, y)
    _assert_same(est, X, before)
    est.set_params(learning_rate_init=0.01)
    _fit(est, X, y)
    _fit(twin, X, y)
    _assert_same(est, X, _snapshot(twin, X))


@pytest.mark.parametrize("name", ["classifier-adam", "classifier-adam-early-stopping",
                                  "regressor-adam"])
def test_divergence_after_healthy_epochs_goes_back_to_the_start_of_the_call(name,
                                                                           monkeypatch):
    """Three epochs of the call train normally, then the loss becomes non-finite: the model
    is not left at the end of the last healthy epoch (as ``Model.fit`` does) but at the
    start of the call, so that it agrees with the estimator's rolled-back attributes."""
    import fastbp._training.loop as loop
    from fastbp.kernels import _codes

    monkeypatch.setattr(loop, "CALL_SECONDS", 0.0)  # one batch per compiled call
    real = loop.train_steps
    calls = {"n": 0, "fail_at": None}

    def wrapper(*args):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            return _codes.STATUS_NONFINITE_LOSS, 0
        return real(*args)

    monkeypatch.setattr(loop, "train_steps", wrapper)
    X, y = _data()
    est = ESTIMATORS[name]().set_params(warm_start=True, max_iter=3, random_state=0,
                                        learning_rate_init=0.01)
    _fit(est, X, y)
    twin = pickle.loads(pickle.dumps(est))
    before = _snapshot(est, X)
    n_train = len(X) - (int(np.ceil(0.1 * len(X))) if est.early_stopping else 0)
    n_batches = -(-n_train // 16)
    calls["n"], calls["fail_at"] = 0, 3 * n_batches + 2  # the second batch of epoch 3
    est.set_params(max_iter=10)
    with pytest.raises(ValueError, match="non-finite"):
        _fit(est, X, y)
    assert calls["n"] == calls["fail_at"]  # three healthy epochs ran first
    assert est.model_.history.events[-1]["restored"] == "the state before this call"
    _assert_same(est, X, before)
    calls["fail_at"] = None
    est.set_params(max_iter=2)
    twin.set_params(max_iter=2)
    _fit(est, X, y)
    _fit(twin, X, y)
    _assert_same(est, X, _snapshot(twin, X))


# ------------------------------------------------------------------ Ctrl-C
def test_sigint_during_an_estimator_epoch_stops_after_the_running_call(monkeypatch):
    """A SIGINT that arrives while a compiled call runs is honoured when that call returns
    (not at the end of the epoch); the estimator warns as scikit-learn's does, keeps the
    completed steps and stays consistent: no epoch was completed, and it trains on."""
    import fastbp._training.loop as loop

    monkeypatch.setattr(loop, "CALL_SECONDS", 0.0)  # one batch per compiled call
    calls = sigint_on_call(monkeypatch, loop, "train_steps", 3)
    X, y = _data()
    est = MLPClassifier((8,), batch_size=16, max_iter=20, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert len(calls) == 3 and est.model_.optimizer_steps == 3
    assert est.n_iter_ == 0 and est.loss_curve_ == [] and est.t_ == 0
    assert est.model_.history.events[-1] == {"event": "interrupted", "epoch": 0, "batch": 3,
                                             "n_batches": 8, "step": 3}
    assert np.isfinite(est.predict_proba(X)).all()
    est.partial_fit(X, y)  # trains on from the kept steps
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 1
    assert est.model_.optimizer_steps == 3 + 8


def test_sigint_during_lbfgs_keeps_an_accepted_iterate_and_counts_it(monkeypatch):
    """L-BFGS raises the interrupt on, as scikit-learn's does, after the objective
    evaluation that was running; the model holds the last accepted iterate, and n_iter_ and
    loss_ describe it."""
    import fastbp._training.passes as lbfgs  # the dense objective L-BFGS evaluates

    real = lbfgs.data_pass
    calls = []

    def wrapper(mode, *args):
        if mode == lbfgs.PASS_GRADIENT:
            calls.append(1)
            if len(calls) == 6:
                signal.raise_signal(signal.SIGINT)
        return real(mode, *args)

    monkeypatch.setattr(lbfgs, "data_pass", wrapper)
    X, y = _data()
    est = MLPClassifier((8,), solver="lbfgs", max_iter=100, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert len(calls) == 7  # no step after the interrupt; the 7th evaluation is loss_'s
    history = est.model_.history
    assert history.events[-1]["event"] == "interrupted"
    assert 1 <= est.n_iter_ == history.epochs
    # loss_ is scikit-learn's objective at the kept parameters
    penalty = 0.5 * est.alpha * sum(float((W ** 2).sum()) for W in est.coefs_) / len(X)
    data_loss = est.model_.evaluate(X, y)["loss"]  # classes_ are 0, 1, 2: the same labels
    assert est.loss_ == pytest.approx(data_loss + penalty, rel=1e-12)
    assert np.isfinite(est.predict_proba(X)).all()


def test_ctrl_c_stops_an_estimator_within_a_fraction_of_an_epoch():
    """``_thread.interrupt_main`` (what Ctrl-C does) from another thread while an epoch of
    several seconds runs: fit returns within a fraction of that epoch, before its end."""
    rng = np.random.default_rng(0)
    n_features = 128
    Xs = rng.normal(size=(8192, n_features)).astype(np.float32)
    ys = rng.integers(0, 10, len(Xs))

    def fit_seconds(hidden, rows):  # the faster of two one-epoch fits
        probe = MLPClassifier((hidden,), batch_size=32, max_iter=1, shuffle=False,
                              random_state=0)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            _fit(probe, Xs[:rows], ys[:rows])
            times.append(time.perf_counter() - t)
        return min(times)

    for hidden in (256, 1024, 4096):  # wider on fast machines: an epoch of about 3 s
        fit_seconds(hidden, 64)  # compile / load the kernels
        # per row from two sizes: a fit's fixed costs (checks, initial weights) cancel
        per_row = max(1e-9, (fit_seconds(hidden, 8192) - fit_seconds(hidden, 2048)) / 6144)
        n = int(max(len(Xs), 3.0 / per_row))
        if n <= 100_000:
            break
    n = min(n, 400_000)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = rng.integers(0, 10, n)
    est = MLPClassifier((hidden,), batch_size=32, max_iter=5, shuffle=False, random_state=0)
    sent = {}

    def interrupt():
        sent["t"] = time.perf_counter()
        _thread.interrupt_main()

    start = time.perf_counter()
    timer = threading.Timer(0.6, interrupt)
    timer.start()
    try:
        with pytest.warns(UserWarning, match="interrupted by user"):
            est.fit(X, y)
        done = time.perf_counter()
    finally:
        timer.cancel()
    assert "t" in sent
    latency = done - sent["t"]
    steps = est.model_.optimizer_steps
    epoch_steps = -(-n // 32)
    # stopped inside the first epoch, with part of it done and consistent bookkeeping
    assert est.n_iter_ == 0 and est.loss_curve_ == [] and 0 < steps < epoch_steps, (
        steps, epoch_steps, done - start)
    epoch_seconds = (done - start) * epoch_steps / steps  # this run's own pace
    assert latency < max(0.75, 0.25 * epoch_seconds), (latency, epoch_seconds)
    assert np.isfinite(est.predict_proba(X[:10])).all()


# ------------------------------------------------------------------ threads
def _fit_and_record(est, X, y, r, out, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, r if isinstance(est, MLPRegressor) else y)
    out[key] = [c.copy() for c in est.coefs_ + est.intercepts_] + [est.predict(X)]


def _thread_estimators():
    # 64 inputs, 128 hidden units and batches of 64: the kernels' parallel paths
    return [
        MLPClassifier((128,), batch_size=64, max_iter=4, random_state=0, early_stopping=True,
                      n_iter_no_change=50),
        MLPRegressor(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=15, random_state=1),
        MLPClassifier((128,), solver="sgd", batch_size=64, max_iter=4, random_state=2),
    ]


def _thread_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 64))
    return X, rng.integers(0, 4, 512), X[:, :3].sum(axis=1)


WORKQUEUE_SCRIPT = """
import sys, threading, warnings
import numpy as np
warnings.simplefilter("ignore")
sys.path[:0] = {tests!r}  # this file and conftest
from test_sklearn_reliability import _fit_and_record, _thread_data, _thread_estimators
from fastbp import _threads

X, y, r = _thread_data()
seq = {{}}
for i, est in enumerate(_thread_estimators()):
    _fit_and_record(est, X, y, r, seq, i)
same = True
for _ in range(3):  # a collision in Numba's workqueue aborts the whole process
    par = {{}}
    ts = [threading.Thread(target=_fit_and_record, args=(est, X, y, r, par, i))
          for i, est in enumerate(_thread_estimators())]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    same &= sorted(par) == sorted(seq) and all(
        np.array_equal(a, b) for k in seq for a, b in zip(seq[k], par[k]))
print(_threads.threading_layer(), _threads.serialize_kernels(), same)
"""


def test_estimators_in_threads_take_turns_under_the_workqueue_layer():
    """workqueue aborts the process on concurrent parallel launches: the estimators (SGD,
    Adam with early stopping, L-BFGS) take the same process-wide turns as Model."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastbp.__file__)), env.get("PYTHONPATH", "")])
    here = os.path.dirname(os.path.abspath(__file__))
    script = WORKQUEUE_SCRIPT.format(tests=[here, os.path.dirname(here)])
    res = subprocess.run([sys.executable, "-c", script], env=env, text=True,
                         capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["workqueue", "True", "True"], res.stdout


def test_divergence_with_early_stopping_ends_at_the_best_epoch_as_sklearn():
    """scikit-learn's test_mlp_diverging_loss: with early stopping a diverging run ends at
    its best validation epoch, records a NaN score for the diverged one, and raises nothing."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=1e-4,
              learning_rate="constant", learning_rate_init=1, max_iter=20,
              early_stopping=True, n_iter_no_change=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPRegressor(**kw).fit(X, y)
    assert str(mlp.validation_scores_[-1]) == "nan"
    assert isinstance(mlp.validation_scores_[-1], float)
    assert np.isfinite(mlp.predict(X)).all()
    assert all(np.isfinite(W).all() for W in mlp.coefs_)
    assert mlp.model_.history.events[-1]["event"] == "diverged"
    assert len(mlp.loss_curve_) == mlp.n_iter_ == len(mlp.validation_scores_)
