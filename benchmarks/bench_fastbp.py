"""fastbp profiles: forward, forward + backward, one training epoch and predict, for each
workload.

Run with timing: ``pytest benchmarks/bench_fastbp.py --benchmark-enable``. Each profile also
checks what it ran against a NumPy float64 reference (or, for the full-size epoch, that the
loss is finite and decreases).
"""

import numpy as np
import pytest
from _fixtures import _data_cache, label, rounds, timing, workload_data  # noqa: F401
from _workloads import (
    WORKLOADS,
    FastbpRunner,
    one_hot,
    reference_epoch,
    reference_forward,
    reference_loss_and_grad,
)

NAMES = list(WORKLOADS)


def _init(runner):
    m = runner.model
    return [(W.copy(), b.copy()) for W, b in zip(m.weights, m.biases)]


@pytest.mark.parametrize("name", NAMES)
def test_fastbp_epoch(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = FastbpRunner(w, X, y)
    init = _init(r)
    first = r.epoch()  # warm-up: compiles (or loads from the cache)
    second = r.epoch()
    assert np.isfinite(first) and second < first
    label(benchmark, w, "epoch", w.samples, timing)
    loss = benchmark.pedantic(r.epoch, setup=r.reset, rounds=rounds(timing, w), iterations=1)
    assert loss == first  # every round starts from the same weights: bitwise the same epoch
    if not timing:
        ref_loss, ref_params = reference_epoch(init, X, y, w)
        assert loss == pytest.approx(ref_loss, rel=1e-4)
        for (W, b), (Wr, br) in zip(zip(r.model.weights, r.model.biases), ref_params):
            np.testing.assert_allclose(W, Wr, rtol=1e-3, atol=1e-4)
            np.testing.assert_allclose(b, br, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_fastbp_forward(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = FastbpRunner(w, X, y)
    r.forward()
    label(benchmark, w, "forward", r.nb, timing)
    out = benchmark.pedantic(r.forward, rounds=rounds(timing, w) * 20, iterations=1)
    ref = reference_forward(_init(r), X[: r.nb], w.regression)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_fastbp_backward(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = FastbpRunner(w, X, y)
    r.forward()
    r.backward()
    label(benchmark, w, "backward", r.nb, timing)
    loss, grads = benchmark.pedantic(r.forward_backward, rounds=rounds(timing, w) * 20,
                                     iterations=1)
    T = y[: r.nb].astype(np.float64) if w.regression else one_hot(y[: r.nb], w.sizes[-1], float)
    ref_loss, ref_grads = reference_loss_and_grad(_init(r), X[: r.nb], T, w.regression)
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    m = r.model
    for p, (gW, gb) in enumerate(ref_grads):
        n_in, n_out = w.sizes[p], w.sizes[p + 1]
        o = int(m.network.w_off[p])
        got = grads[o : o + n_in * n_out].reshape(n_out, n_in)
        scale = np.abs(gW).max() + 1e-12
        np.testing.assert_allclose(got / scale, gW / scale, atol=1e-4)
        ob = int(m.network.b_off[p])
        np.testing.assert_allclose(grads[ob : ob + n_out], gb, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_fastbp_predict(benchmark, workload_data, timing, name):
    w, X, y = workload_data(name)
    r = FastbpRunner(w, X, y)
    r.predict(X[:10])
    label(benchmark, w, "predict", X.shape[0], timing)
    out = benchmark.pedantic(r.predict, args=(X,), rounds=rounds(timing, w), iterations=1)
    np.testing.assert_allclose(out, reference_forward(_init(r), X, w.regression),
                               rtol=1e-3, atol=1e-4)
