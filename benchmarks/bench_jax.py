"""JAX (CPU; the whole epoch jitted with lax.scan) on the same workloads; skipped without jax."""

import numpy as np
import pytest

pytest.importorskip("jax")

from _fixtures import (  # noqa: E402, F401
    _data_cache,
    label,
    rounds,
    timing,
    workload_data,
)
from _peer_checks import check_epoch_loss, check_forward, check_predict  # noqa: E402
from _workloads import WORKLOADS, JaxRunner, initial_weights  # noqa: E402

NAMES = list(WORKLOADS)


@pytest.mark.parametrize("name", NAMES)
def test_jax_epoch(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = JaxRunner(w, X, y)
    r.epoch()  # warm-up
    label(benchmark, w, "epoch", w.samples, timing)
    loss = benchmark.pedantic(r.epoch, setup=r.reset, rounds=rounds(timing, w), iterations=1)
    check_epoch_loss(loss, w, X, y, timing)


@pytest.mark.parametrize("name", NAMES)
def test_jax_forward(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = JaxRunner(w, X, y)
    r.forward()
    label(benchmark, w, "forward", r.nb, timing)
    out = np.asarray(benchmark.pedantic(r.forward, rounds=rounds(timing, w) * 20, iterations=1))
    check_forward(out, initial_weights(w), w, X[: r.nb])


@pytest.mark.parametrize("name", NAMES)
def test_jax_backward(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = JaxRunner(w, X, y)
    r.backward()
    label(benchmark, w, "backward", r.nb, timing)
    loss = benchmark.pedantic(r.backward, rounds=rounds(timing, w) * 20, iterations=1)
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", NAMES)
def test_jax_predict(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = JaxRunner(w, X, y)
    r.predict(X[:10])
    label(benchmark, w, "predict", X.shape[0], timing)
    out = benchmark.pedantic(r.predict, args=(X,), rounds=rounds(timing, w), iterations=1)
    check_predict(out, initial_weights(w), w, X)
