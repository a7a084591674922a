"""A fit/partial_fit that raises leaves the model exactly as it was before the call: the
parameters, the optimizer with its state and step count, the schedule with its progress,
the shuffling generator and the history (KeyboardInterrupt and divergence excepted: they
have their own, documented outcomes)."""

import numpy as np
import pytest

import fastbp
from fastbp.kernels._layout import Network
from fastbp.schedules import StepDecay


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)


def _snapshot(m):
    s = m.state
    return {
        "params": m.params.copy(),
        "opt_state": m.optimizer_state.copy(),
        "steps": m.optimizer_steps,
        "optimizer": repr(m.optimizer),
        "schedule": (repr(m.schedule), m.schedule.get_state() if m.schedule else None),
        "rng": str(s.shuffle_rng.bit_generator.state),
        "history": {k: list(v) for k, v in m.history.metrics.items()},
        "events": list(m.history.events),
    }


def _assert_unchanged(m, before):
    after = _snapshot(m)
    np.testing.assert_array_equal(after.pop("params"), before["params"])
    np.testing.assert_array_equal(after.pop("opt_state"), before["opt_state"])
    np.testing.assert_equal(after, {k: v for k, v in before.items()
                                    if k not in ("params", "opt_state")})


@pytest.fixture
def trained():
    X, y = _data()
    m = fastbp.Model([4, 8, 3], loss="cross_entropy", seed=0)
    m.fit(X, y, epochs=3, batch_size=16, optimizer="adam", learning_rate=0.01,
          schedule=StepDecay(step_size=2, gamma=0.5))
    return m


@pytest.mark.parametrize("change", [
    {}, {"optimizer": "sgd"}, {"schedule": "cosine_annealing"}, {"reset": True},
    {"reset": np.True_}, {"optimizer": "rmsprop", "schedule": "exponential_decay"},
])
def test_exception_in_a_callback_undoes_the_whole_call(trained, change):
    X, y = _data()
    before = _snapshot(trained)

    def boom(epoch, logs):
        if epoch == 4:  # two epochs into this call
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trained.fit(X, y, epochs=5, batch_size=16, callbacks=[boom], **change)
    _assert_unchanged(trained, before)
    # and training goes on exactly as if the failed call never happened
    ref = fastbp.Model([4, 8, 3], loss="cross_entropy", seed=0)
    ref.fit(X, y, epochs=3, batch_size=16, optimizer="adam", learning_rate=0.01,
            schedule=StepDecay(step_size=2, gamma=0.5))
    for m in (trained, ref):
        m.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(trained.params, ref.params)
    assert trained.history["loss"] == ref.history["loss"]


@pytest.mark.parametrize("change", [{}, {"optimizer": "sgd"}, {"reset": True},
                                    {"schedule": "step_decay"}])
def test_memory_error_while_allocating_undoes_the_call(trained, monkeypatch, change):
    """batch_size=None on data too large for memory fails allocating the workspace."""
    X, y = _data()
    before = _snapshot(trained)

    def no_memory(self, capacity):
        raise MemoryError(f"simulated: no memory for a workspace of {capacity} rows")

    monkeypatch.setattr(Network, "workspace", no_memory)
    with pytest.raises(MemoryError):
        trained.fit(X, y, epochs=2, batch_size=None, **change)
    with pytest.raises(MemoryError):
        trained.partial_fit(X, y, batch_size=None,
                            **{k: v for k, v in change.items() if k != "reset"})
    _assert_unchanged(trained, before)


def test_numpy_scalars_are_accepted_wherever_python_ones_are(trained):
    X, y = _data()
    trained.fit(X, y, epochs=np.int64(1), batch_size=np.int32(16),
                learning_rate=np.float32(0.01), shuffle=np.True_, reset=np.False_,
                l2=np.float64(0.0), verbose=np.False_)
    trained.fit(X, y, reset=np.True_)
    assert trained.history.epochs == 1
