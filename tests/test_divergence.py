"""Divergence: a non-finite loss or non-finite parameters stop training at once, the last
finite state is restored, the history records where it happened, and the user gets an
error (or a warning with on_divergence="warn")."""

import numpy as np
import pytest

import fastbp
import fastbp._training.loop as model_mod


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = X @ rng.normal(size=5) * 10
    return X, y


@pytest.fixture
def record_calls(monkeypatch):
    """Wrap the compiled chunk driver: record the status of every call and the parameters
    after each call that reported a finite state."""
    calls = []
    real = model_mod.train_steps

    def wrapper(*args):
        status, reached = real(*args)
        calls.append((int(status), int(reached), args[4].copy(), args[6].copy(),
                      int(args[9][0])))
        return status, reached

    monkeypatch.setattr(model_mod, "train_steps", wrapper)
    return calls


@pytest.mark.parametrize("call_seconds", [0.0, 1e9])  # one batch per call / growing calls
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_huge_learning_rate_stops_restores_and_raises(monkeypatch, record_calls, call_seconds,
                                                       optimizer):
    monkeypatch.setattr(model_mod, "CALL_SECONDS", call_seconds)
    X, y = _data()
    m = fastbp.Model([5, 16, 1], activation="relu", seed=0)
    m.fit(X, y, epochs=2, batch_size=10, learning_rate=1e-3, optimizer=optimizer)
    assert m.history.epochs == 2
    record_calls.clear()
    start = (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps)
    with pytest.raises(fastbp.DivergenceError, match="diverged") as info:
        m.fit(X, y, epochs=50, batch_size=10, learning_rate=1e30)
    ev = info.value.event
    assert m.history.events[-1] == ev and ev["event"] == "diverged"
    # stopped at once: the failing call was the last one, and no later epoch was recorded
    assert record_calls[-1][0] != 0 and all(c[0] == 0 for c in record_calls[:-1])
    assert m.history.epochs == ev["epoch"] and len(m.history["loss"]) == ev["epoch"]
    assert np.isfinite(m.history["loss"]).all()
    # restored: parameters, optimizer state and step count of the last finite call
    last_good = [c[2:] for c in record_calls if c[0] == 0]
    p, s, t = last_good[-1] if last_good else start  # else: diverged in the first call
    assert np.isfinite(m.params).all() and np.isfinite(m.optimizer_state).all()
    np.testing.assert_array_equal(m.params, p)
    np.testing.assert_array_equal(m.optimizer_state, s)
    assert m.optimizer_steps == t == ev["step"]
    assert 0 <= ev["batch"] <= ev["bad_batch"] < ev["n_batches"] == 12
    # the model is usable afterwards (the last finite state may still be a poor one)
    assert m.predict(X).shape == (len(X), 1)
    m.fit(X, y, epochs=1, batch_size=10, learning_rate=1e-4, reset=True)
    assert np.isfinite(m.params).all()


def test_nonfinite_parameters_after_a_finite_loss_are_caught(monkeypatch):
    """lr so large that one update overflows float32 while the loss before it was finite."""
    monkeypatch.setattr(model_mod, "CALL_SECONDS", 0.0)
    X, y = _data()
    m = fastbp.Model([5, 1], seed=0)
    before = m.params.copy()
    with pytest.raises(fastbp.DivergenceError) as info:
        m.fit(X, y, epochs=3, batch_size=10, learning_rate=3e38)
    assert info.value.event["reason"].startswith("the parameters")
    np.testing.assert_array_equal(m.params, before)  # the very first update overflowed
    assert m.optimizer_steps == 0 and m.history.epochs == 0


def test_warn_option_returns_history():
    X, y = _data()
    m = fastbp.Model([5, 16, 1], activation="relu", seed=0)
    with pytest.warns(fastbp.DivergenceWarning, match="diverged"):
        h = m.fit(X, y, epochs=20, batch_size=10, learning_rate=1e30, on_divergence="warn")
    assert h is m.history and h.events[-1]["event"] == "diverged"
    assert h.epochs < 20 and np.isfinite(m.params).all()


def test_divergence_event_survives_save_and_load(tmp_path):
    X, y = _data()
    m = fastbp.Model([5, 8, 1], seed=0)
    with pytest.warns(fastbp.DivergenceWarning):
        m.fit(X, y, epochs=5, learning_rate=1e30, on_divergence="warn")
    m.save(tmp_path / "m.npz")
    assert fastbp.Model.load(tmp_path / "m.npz").history.events == m.history.events


def test_nonfinite_parameters_are_rejected_before_training():
    X, y = _data()
    m = fastbp.Model([5, 1], seed=0)
    m.params[0] = np.nan
    with pytest.raises(ValueError, match="parameters contain NaN"):
        m.fit(X, y)
    assert np.isnan(m.params[0]) and m.history.epochs == 0
    m.fit(X, y, reset=True)  # starting over is allowed
    assert np.isfinite(m.params).all()


def test_lbfgs_divergence_restores_last_accepted_iterate():
    X, y = _data()
    y = y * 1e30  # squared error overflows float32
    m = fastbp.Model([5, 4, 1], seed=0)
    before = m.params.copy()
    try:
        m.fit(X, y, epochs=5, optimizer="lbfgs", on_divergence="raise")
    except fastbp.DivergenceError:
        np.testing.assert_array_equal(m.params, before)
    assert np.isfinite(m.params).all()
