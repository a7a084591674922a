"""``make_plan`` / ``FitPlan`` directly: the one table of fit options, the checks, the sizing
(batch clamp, sample-weight rescale, over several processes too) and that nothing changes."""

import dataclasses
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastbp
from fastbp import distributed
from fastbp._training.plan import (
    FIT_DEFAULTS,
    FIT_OPTIONS,
    FitPlan,
    check_fit,
    make_plan,
    size_plan,
)
from fastbp.optim import LBFGS, SGD, Adam
from fastbp.schedules import Constant, StepDecay


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3)), rng.integers(0, 2, size=40)


def _model(**kw):
    return fastbp.Model([3, 4, 2], loss="cross_entropy", seed=0, **kw)


@pytest.mark.parametrize("func", [fastbp.Model.fit, fastbp.Model.partial_fit,
                                  distributed.fit])
def test_front_ends_take_their_defaults_from_the_table(func):
    params = inspect.signature(func).parameters
    shared = [name for name in FIT_OPTIONS if name in params]
    assert len(shared) >= 12
    for name in shared:
        assert params[name].default is FIT_OPTIONS[name].default, name


def test_defaults_give_the_documented_plan(data):
    X, y = data
    plan = make_plan(_model(), X, y)
    assert isinstance(plan, FitPlan)
    assert (plan.epochs, plan.batch_size, plan.lr, plan.shuffle) == (1, 32, 0.01, True)
    assert plan.optimizer == SGD() and plan.schedule == Constant()
    assert (plan.l2, plan.clip_norm, plan.verbose, plan.reset) == (0.0, 0.0, False, False)
    assert plan.on_divergence == "raise" and plan.callbacks == () and plan.stopping is None
    assert plan.Xv is None and plan.SW.shape == (0,) and plan.n_rows == 40
    assert plan.X.dtype == np.float32 and plan.X.flags.c_contiguous
    np.testing.assert_array_equal(plan.T, np.eye(2, dtype=np.float32)[y])
    assert FIT_DEFAULTS.learning_rate == 0.01 and FIT_DEFAULTS.batch_size == 32


def test_make_plan_changes_nothing(data):
    X, y = data
    m = _model()
    m.fit(X, y, optimizer="adam")
    params, state, steps = m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps
    X0, y0 = X.copy(), y.copy()
    make_plan(m, X, y, optimizer="sgd", schedule="step_decay", reset=True,
              validation_split=0.25, sample_weight=np.ones(40), class_weight="balanced")
    np.testing.assert_array_equal(m.params, params)
    np.testing.assert_array_equal(m.optimizer_state, state)
    assert m.optimizer_steps == steps and m.optimizer == Adam()
    assert m.history.epochs == 1
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_plan_is_frozen(data):
    plan = make_plan(_model(), *data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.lr = 1.0


def test_unknown_option_is_refused(data):
    with pytest.raises(TypeError, match=r"unknown fit options \['learning_rat'\]"):
        make_plan(_model(), *data, learning_rat=0.1)


@pytest.mark.parametrize("name, value, exc, match", [
    ("epochs", 0, ValueError, "epochs must be an integer >= 1"),
    ("learning_rate", -1.0, ValueError, "learning_rate must be a finite number >= 0"),
    ("optimizer", "adma", ValueError, "Did you mean 'adam'"),
    ("schedule", 3, TypeError, "schedule must be a name"),
    ("callbacks", [None], TypeError, r"callbacks\[0\] must be callable"),
    ("early_stopping", 5, TypeError, "early_stopping must be None or a fastbp.EarlyStopping"),
    ("n_threads", 0, ValueError, "n_threads must be an integer >= 1"),
    ("on_divergence", "ignore", ValueError, "on_divergence='ignore' is not supported"),
])
def test_each_option_is_checked_by_its_table_entry(data, name, value, exc, match):
    with pytest.raises(exc, match=match):
        make_plan(_model(), *data, **{name: value})


def test_optimizer_and_schedule_none_keep_the_current_ones_reset_starts_afresh(data):
    X, y = data
    m = _model()
    m.fit(X, y, optimizer=Adam(), schedule=StepDecay(2))
    plan = make_plan(m, X, y)
    assert plan.optimizer is m.optimizer and plan.schedule is m.schedule
    plan = make_plan(m, X, y, reset=True)
    assert plan.optimizer == SGD() and plan.schedule == Constant()


@pytest.mark.parametrize("batch_size, expected", [(None, 40), (100, 40), (7, 7)])
def test_batch_size_is_clamped_to_the_rows(data, batch_size, expected):
    assert make_plan(_model(), *data, batch_size=batch_size).batch_size == expected


def test_sample_and_class_weights_are_multiplied_and_rescaled_to_mean_one(data):
    X, y = data
    sw = np.linspace(1, 3, 40)
    plan = make_plan(_model(dtype="float64"), X, y, sample_weight=sw, class_weight={1: 2.0})
    expected = sw * np.where(y == 1, 2.0, 1.0)
    np.testing.assert_allclose(plan.SW, expected / expected.mean(), rtol=1e-15)
    assert plan.SW.dtype == np.float64
    assert make_plan(_model(), X, y, sample_weight=sw).SW.dtype == np.float32


def test_validation_split_holds_out_seeded_rows_and_their_weights(data):
    X, y = data
    sw = np.arange(1, 41, dtype=float)
    plan = make_plan(_model(dtype="float64"), X, y, validation_split=0.25, sample_weight=sw)
    assert plan.X.shape == (30, 3) and plan.Xv.shape == (10, 3) and plan.n_rows == 30
    again = make_plan(_model(dtype="float64"), X, y, validation_split=0.25)
    np.testing.assert_array_equal(plan.Xv, again.Xv)
    kept = np.isin(X[:, 0], plan.X[:, 0])
    np.testing.assert_allclose(plan.SW, sw[kept] / sw[kept].mean())


def test_check_fit_leaves_the_plan_unsized(data):
    X, y = data
    plan = check_fit(_model(), X, y, batch_size=None, sample_weight=np.full(40, 4.0))
    assert plan.batch_size is None
    assert plan.SW.dtype == np.float64 and (plan.SW == 4.0).all()
    sized = size_plan(plan)
    assert sized.batch_size == 40 and (sized.SW == 1).all() and sized.SW.dtype == np.float32


def _size_together(*plans):
    """``size_plan`` of each plan in its own thread, ``across`` an allreduce between them
    (as ``fastbp.distributed`` does between ranks)."""
    barrier = threading.Barrier(len(plans))
    slots = [None] * len(plans)

    def across_for(i):
        def across(value, op):
            slots[i] = value
            barrier.wait()
            out = sum(slots) if op == "sum" else max(slots)
            barrier.wait()
            return out
        return across

    with ThreadPoolExecutor(len(plans)) as pool:
        return list(pool.map(lambda i: size_plan(plans[i], across_for(i)), range(len(plans))))


def test_size_plan_over_several_processes(data):
    X, y = data
    m = _model(dtype="float64")
    here = check_fit(m, X, y, batch_size=64, sample_weight=np.full(40, 3.0))
    there = check_fit(m, X[:25], y[:25], batch_size=64, sample_weight=np.ones(25))
    a, b = _size_together(here, there)
    assert a.n_rows == b.n_rows == 65 and a.batch_size == b.batch_size == 40  # largest shard
    mean = (40 * 3.0 + 25) / 65
    np.testing.assert_allclose(a.SW, np.full(40, 3.0 / mean))
    np.testing.assert_allclose(b.SW, np.full(25, 1.0 / mean))


def test_size_plan_rescales_weights_whose_sum_overflows(data):
    X, y = data
    m = _model(dtype="float64")
    plan = check_fit(m, X, y, sample_weight=np.full(40, 1e307))
    np.testing.assert_array_equal(size_plan(plan).SW, np.ones(40))
    # over two processes, where only the total overflows
    small = check_fit(m, X[:10], y[:10], sample_weight=np.full(10, 1e307))
    a, b = _size_together(small, check_fit(m, X, y, sample_weight=np.full(40, 2e307)))
    np.testing.assert_allclose(a.SW, np.full(10, 1 / 1.8))
    np.testing.assert_allclose(b.SW, np.full(40, 2 / 1.8))


def test_lbfgs_plans_refuse_what_it_cannot_take(data):
    with pytest.raises(ValueError, match="clip_norm is not supported"):
        make_plan(_model(), *data, optimizer=LBFGS(), clip_norm=1.0)
    with pytest.raises(ValueError, match="no learning rate to schedule"):
        make_plan(_model(), *data, optimizer="lbfgs", schedule="step_decay")
