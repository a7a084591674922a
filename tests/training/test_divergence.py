"""Divergence: a non-finite loss or non-finite parameters stop training at once, the model
goes back to the end of the last healthy epoch of the call (or to its state before the
call), the history records where it happened, and the user gets an error that says which
state was restored (or a warning with on_divergence="warn")."""

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
    """Wrap the compiled chunk driver: record the status of every call."""
    calls = []
    real = model_mod.train_steps

    def wrapper(*args):
        status, reached = real(*args)
        calls.append((int(status), int(reached)))
        return status, reached

    monkeypatch.setattr(model_mod, "train_steps", wrapper)
    return calls


def _state(m):
    return (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps,
            str(m.state.shuffle_rng.bit_generator.state), {k: list(v) for k, v in
                                                           m.history.metrics.items()})


def _same_state(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:4] == b[2:4]
    np.testing.assert_equal(a[4], b[4])


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
    start = _state(m)
    with pytest.raises(fastbp.DivergenceError, match="diverged") as info:
        m.fit(X, y, epochs=50, batch_size=10, learning_rate=1e30)
    ev = info.value.event
    assert m.history.events[-1] == ev and ev["event"] == "diverged"
    # stopped at once: the failing call was the last one
    assert record_calls[-1][0] != 0 and all(c[0] == 0 for c in record_calls[:-1])
    # no epoch of this call was healthy: back to the state before the call, and it says so
    assert ev["restored"] == "the state before this call"
    assert "the state before this call" in str(info.value)
    assert ev["epoch"] == 2 and ev["step"] == start[2] and 0 <= ev["bad_batch"] < 12
    now = _state(m)
    _same_state(now, start)
    # the model is usable and can train on from there with a sensible rate
    m.fit(X, y, epochs=1, batch_size=10, learning_rate=1e-4)
    assert np.isfinite(m.params).all() and m.history.epochs == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_after_healthy_epochs_restores_the_last_healthy_one(dtype):
    """Epochs 0-2 train normally; a callback then blows the weights up (after epoch 2's
    state was kept). The loss explodes (possibly finite for an epoch) and then overflows:
    the model goes back to the end of epoch 2, not to an exploded state."""
    X, y = _data()
    seen = {}

    def blow_up(epoch, logs):
        if epoch == 2:
            seen["kept"] = m.params.copy()
            m.params[...] *= 1e4

    m = fastbp.Model([5, 16, 1], activation="relu", seed=0, dtype=dtype)
    with pytest.raises(fastbp.DivergenceError) as info:
        m.fit(X, y, epochs=30, batch_size=10, learning_rate=1e-2, callbacks=[blow_up])
    ev = info.value.event
    assert ev["restored"] == "the end of epoch 2" and ev["epoch"] >= 3
    np.testing.assert_array_equal(m.params, seen["kept"])
    assert m.history.epochs == 3 and np.isfinite(m.history["loss"]).all()
    assert max(m.history["loss"]) < 1e3  # no exploded epoch kept in the history
    m.fit(X, y, epochs=1, batch_size=10, learning_rate=1e-3)  # trains on from there
    assert np.isfinite(m.params).all()


def test_divergence_with_restore_best_keeps_the_best_weights():
    X, y = _data()
    Xv, yv = _data(40, seed=1)
    seen = {}

    def blow_up(epoch, logs):
        seen.setdefault("val", []).append(logs["val_loss"])
        if epoch == 3:
            m.params[...] *= 1e4

    m = fastbp.Model([5, 16, 1], activation="relu", seed=0, dtype="float64")
    with pytest.raises(fastbp.DivergenceError, match="best epoch"):
        m.fit(X, y, epochs=30, batch_size=10, learning_rate=1e-2, callbacks=[blow_up],
              validation_data=(Xv, yv), early_stopping=fastbp.EarlyStopping(patience=50))
    assert np.isclose(m.loss_value(Xv, yv), min(seen["val"]), rtol=1e-6)


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
