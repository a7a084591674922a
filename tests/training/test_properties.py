"""Property-based tests (Hypothesis): random architectures, activations, losses, dtypes."""

import naive
import numpy as np
import pytest
from conftest import make_targets, one_hot_targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbp

HIDDEN = st.sampled_from(["identity", "logistic", "tanh", "relu", "leaky_relu"])
LOSS_OUTPUT = st.sampled_from([
    ("squared_error", "identity"), ("squared_error", "logistic"), ("squared_error", "softmax"),
    ("squared_error", "tanh"), ("cross_entropy", "softmax"), ("binary_cross_entropy", "logistic"),
])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    loss, output = draw(LOSS_OUTPUT)
    if loss == "cross_entropy" and sizes[-1] < 2:
        sizes[-1] = 2
    hidden = draw(st.lists(HIDDEN, min_size=len(sizes) - 2, max_size=len(sizes) - 2))
    return sizes, hidden, loss, output


@SETTINGS
@given(net=networks(), n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_gradient_matches_finite_differences(net, n, seed):
    sizes, hidden, loss, output = net
    rng = np.random.default_rng(seed)
    m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype="float64",
                     seed=seed)
    X = rng.normal(size=(n, sizes[0]))
    y = make_targets(rng, loss, n, sizes[-1])
    T = one_hot_targets(y, loss, sizes[-1])
    acts = hidden + [output]
    _, g = m.gradient(X, y)

    def f(p):
        Ws, bs = naive.unpack(p, sizes)
        zs, as_ = naive.forward(Ws, bs, X, acts)
        return naive.loss(as_[-1], zs[-1], T, loss)

    # relu kinks: skip the (measure-zero, but reachable) case of a unit within eps of 0
    Ws, bs = naive.unpack(m.params, sizes)
    zs, _ = naive.forward(Ws, bs, X, acts)
    kinked = ("relu", "leaky_relu")
    if any(a in kinked and np.abs(z).min() < 1e-4 for a, z in zip(acts, zs)):
        return
    np.testing.assert_allclose(g, naive.central_difference(f, m.params), rtol=1e-4, atol=1e-6)


@SETTINGS
@given(net=networks(), n=st.integers(1, 40), dtype=st.sampled_from(["float32", "float64"]))
def test_predict_shape_and_dtype(net, n, dtype):
    sizes, hidden, loss, output = net
    m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype=dtype, seed=0)
    out = m.predict(np.random.default_rng(n).normal(size=(n, sizes[0])))
    assert out.shape == (n, sizes[-1]) and out.dtype == np.dtype(dtype)
    assert np.isfinite(out).all()
    if output == "softmax":
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


@SETTINGS
@given(net=networks(), n=st.integers(1, 20), batch=st.integers(1, 25),
       dtype=st.sampled_from(["float32", "float64"]))
def test_zero_learning_rate_leaves_parameters_unchanged(net, n, batch, dtype):
    sizes, hidden, loss, output = net
    rng = np.random.default_rng(n)
    m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype=dtype, seed=1)
    before = m.params.copy()
    h = m.fit(rng.normal(size=(n, sizes[0])), make_targets(rng, loss, n, sizes[-1]), epochs=2,
              batch_size=batch, learning_rate=0.0)
    assert np.array_equal(m.params, before)
    assert np.isfinite(h["loss"]).all() and h["loss"][0] == pytest.approx(h["loss"][1], rel=1e-6)


@SETTINGS
@given(net=networks(), n=st.integers(1, 30), batch=st.integers(1, 12),
       optimizer=st.sampled_from(["sgd", "adam", "rmsprop", "adagrad"]),
       dropout=st.sampled_from([0.0, 0.3]), dtype=st.sampled_from(["float32", "float64"]))
def test_epoch_split_into_compiled_calls_gives_the_same_bits(net, n, batch, optimizer, dropout,
                                                             dtype):
    """fit runs each epoch as several bounded compiled calls (for Ctrl-C and divergence
    checks); how the batches are split over calls must not change a single bit."""
    import fastbp._training.loop as model_mod

    sizes, hidden, loss, output = net
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, sizes[0]))
    y = make_targets(rng, loss, n, sizes[-1])
    results = []
    saved = model_mod.CALL_SECONDS
    try:
        for seconds in (0.0, 1e9):  # one batch per call / calls growing 4-fold to a whole epoch
            model_mod.CALL_SECONDS = seconds
            m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype=dtype,
                             seed=3, dropout=dropout if len(sizes) > 2 else 0.0)
            m.fit(X, y, epochs=2, batch_size=batch, learning_rate=0.01, optimizer=optimizer)
            results.append((m.params.copy(), m.optimizer_state.copy(), m.history["loss"]))
    finally:
        model_mod.CALL_SECONDS = saved
    (p0, s0, l0), (p1, s1, l1) = results
    assert np.array_equal(p0, p1) and np.array_equal(s0, s1) and l0 == l1


INPUT_FORMS = st.sampled_from(["int64", "int8", "bool", "float16", ">f8", ">f4", "fortran",
                               "strided", "list", "uint32"])


@SETTINGS
@given(net=networks(), n=st.integers(1, 20), form=INPUT_FORMS,
       dtype=st.sampled_from(["float32", "float64"]))
def test_accepted_input_forms_are_converted_like_float64(net, n, form, dtype):
    sizes, hidden, loss, output = net
    m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype=dtype, seed=0)
    X = np.random.default_rng(n).normal(size=(n, sizes[0])) * 3
    if form == "fortran":
        Xc = np.asfortranarray(X)
    elif form == "strided":
        Xc = np.repeat(X, 2, axis=1)[:, ::2]
    elif form == "list":
        Xc = X.tolist()
    elif form == "bool":
        Xc = X > 0
    else:
        Xc = X.astype(form)
    out = m.predict(Xc)
    assert out.shape == (n, sizes[-1]) and out.dtype == np.dtype(dtype)
    assert np.array_equal(out, m.predict(np.asarray(Xc, dtype=np.float64).astype(dtype)))
