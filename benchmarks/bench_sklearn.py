"""scikit-learn's MLPClassifier/MLPRegressor (solver="sgd", one epoch by partial_fit) on the
same workloads; skipped without scikit-learn. sklearn has no separate forward/backward API,
so only the epoch and predict are profiled."""

import pytest

pytest.importorskip("sklearn")

from _fixtures import (  # noqa: E402, F401
    _data_cache,
    label,
    rounds,
    timing,
    workload_data,
)
from _peer_checks import check_epoch_loss, check_predict  # noqa: E402
from _workloads import WORKLOADS, SklearnRunner, initial_weights  # noqa: E402

NAMES = list(WORKLOADS)


@pytest.mark.parametrize("name", NAMES)
def test_sklearn_epoch(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = SklearnRunner(w, X, y)
    label(benchmark, w, "epoch", w.samples, timing)
    loss = benchmark.pedantic(r.epoch, setup=r.reset, rounds=1 if name == "wide" else
                              rounds(timing, w), iterations=1)
    check_epoch_loss(loss, w, X, y, timing)


@pytest.mark.parametrize("name", NAMES)
def test_sklearn_predict(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = SklearnRunner(w, X, y)
    label(benchmark, w, "predict", X.shape[0], timing)
    out = benchmark.pedantic(r.predict, args=(X,), rounds=rounds(timing, w), iterations=1)
    check_predict(out, initial_weights(w), w, X)
