"""Learning-rate schedules: the recorded lr sequence against each formula."""

import math

import numpy as np
import pytest

from fastbp import Model, schedules
from fastbp.schedules import (
    Constant,
    CosineAnnealing,
    ExponentialDecay,
    InverseScaling,
    ReduceOnPlateau,
    StepDecay,
)


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([1.0, -2.0, 0.5])


def _lrs(schedule, epochs=12, lr=0.1, **kw):
    X, y = _data()
    m = Model([3, 4, 1], activation="tanh", seed=1)
    return m.fit(X, y, epochs=epochs, learning_rate=lr, schedule=schedule, **kw)["lr"]


@pytest.mark.parametrize(
    "schedule, formula",
    [
        (Constant(), lambda e: 0.1),
        (InverseScaling(power_t=0.25), lambda e: 0.1 / (e + 1) ** 0.25),
        (InverseScaling(unit="samples"), lambda e: 0.1 / (20 * e + 1) ** 0.5),
        (StepDecay(step_size=3, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 3)),
        (ExponentialDecay(gamma=0.9), lambda e: 0.1 * 0.9**e),
        (CosineAnnealing(T_max=8, eta_min=0.01),
         lambda e: 0.01 + 0.09 * (1 + math.cos(math.pi * min(e, 8) / 8)) / 2),
    ],
)
def test_lr_sequence_follows_formula(schedule, formula):
    lrs = _lrs(schedule)
    np.testing.assert_allclose(lrs, [formula(e) for e in range(12)], rtol=1e-15)


def test_the_lr_is_really_used():
    X, y = _data()
    a = Model([3, 4, 1], activation="tanh", seed=2)
    b = Model([3, 4, 1], activation="tanh", seed=2)
    a.fit(X, y, epochs=3, learning_rate=0.1, schedule=StepDecay(1, 0.5), shuffle=False)
    for e in range(3):
        b.fit(X, y, epochs=1, learning_rate=0.1 * 0.5**e, shuffle=False, schedule="constant")
    assert np.array_equal(a.params, b.params)


def test_names_are_accepted_and_bad_ones_rejected():
    assert _lrs("exponential_decay", epochs=2)[1] == pytest.approx(0.095)
    with pytest.raises(ValueError, match="Did you mean 'step_decay'"):
        schedules.get_schedule("step_decy")
    with pytest.raises(TypeError, match="schedule must be"):
        schedules.get_schedule(0.5)
    with pytest.raises(ValueError, match="gamma"):
        StepDecay(step_size=2, gamma=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealing(T_max=0)


def test_schedule_progress_continues_across_fit_calls():
    X, y = _data()
    m = Model([3, 4, 1], activation="tanh", seed=3)
    m.fit(X, y, epochs=4, learning_rate=0.1, schedule=ExponentialDecay(0.5))
    m.fit(X, y, epochs=2, learning_rate=0.1, schedule=ExponentialDecay(0.5))
    m.fit(X, y, epochs=1, learning_rate=0.1)  # None keeps the schedule
    np.testing.assert_allclose(m.history["lr"], [0.1 * 0.5**e for e in range(7)])
    m.fit(X, y, epochs=1, learning_rate=0.1, schedule=ExponentialDecay(0.9))  # new: restarts
    assert m.history["lr"][-1] == 0.1


def _reference_plateau(metrics, lr, factor, patience, threshold, mode, cooldown, min_lr,
                       eps=1e-8):
    """torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min') written out."""
    best, bad, cool, out = math.inf, 0, 0, []
    for v in metrics:
        out.append(lr)
        better = v < best * (1 - threshold) if mode == "rel" else v < best - threshold
        if better:
            best, bad = v, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            if lr - max(lr * factor, min_lr) > eps:
                lr = max(lr * factor, min_lr)
            cool, bad = cooldown, 0
    return out


@pytest.mark.parametrize("mode", ["rel", "abs"])
def test_reduce_on_plateau_against_reference(mode):
    rng = np.random.default_rng(0)
    metrics = list(np.maximum.accumulate(rng.uniform(0, 1, 40))[::-1] + rng.uniform(0, 0.05, 40))
    kw = dict(factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.02)
    s = ReduceOnPlateau(threshold_mode=mode, **kw)
    got = []
    for v in metrics:
        got.append(s.lr(0.1))
        s.step(v, 10)
    ref = _reference_plateau(metrics, 0.1, mode=mode, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-15)
    assert min(got) < 0.1


def test_reduce_on_plateau_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    metrics = list(1 / np.arange(1, 31) + rng.uniform(0, 0.2, 30))
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=2, cooldown=1)
    s = ReduceOnPlateau(factor=0.3, patience=2, cooldown=1)
    for v in metrics:
        assert s.lr(0.1) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        s.step(v, 1)
        ts.step(v)


class _Recorder(ReduceOnPlateau):
    def step(self, metric, n_samples):
        self.seen.append(metric)
        super().step(metric, n_samples)


def test_reduce_on_plateau_monitors_val_loss_else_loss():
    X, y = _data()
    Xv, yv = _data(seed=1)
    for kw, key in [(dict(validation_data=(Xv, yv)), "val_loss"), ({}, "loss")]:
        m = Model([3, 4, 1], activation="tanh", seed=4)
        s = _Recorder(patience=0, factor=0.5)
        s.seen = []
        m.fit(X, y, epochs=5, learning_rate=0.1, schedule=s, **kw)
        assert m.schedule.seen == m.history[key]


def test_reduce_on_plateau_reduces_in_training():
    X, y = _data()
    m = Model([3, 4, 1], activation="tanh", seed=5)
    # a huge threshold means no epoch counts as an improvement after the first
    h = m.fit(X, y, epochs=6, learning_rate=0.1,
              schedule=ReduceOnPlateau(factor=0.5, patience=1, threshold=0.99))
    np.testing.assert_allclose(h["lr"], [0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("lr, kw", [
    (2e-7, dict(factor=0.5)),  # 2e-7 -> ... -> 1.25e-8; halving that changes it by < eps
    (0.1, dict(factor=0.5, min_lr=0.02)),  # at min_lr, reductions change nothing
    (0.1, dict(factor=0.5, eps=0.03)),  # a larger eps stops earlier: 0.1 -> 0.05 only
])
def test_reduce_on_plateau_skips_reductions_smaller_than_eps(lr, kw):
    metrics = [1.0] * 12  # never improves after the first epoch: a reduction every epoch
    s = ReduceOnPlateau(patience=0, **kw)
    got = []
    for v in metrics:
        got.append(s.lr(lr))
        s.step(v, 1)
    ref = _reference_plateau(metrics, lr, patience=0, threshold=1e-4, mode="rel",
                             cooldown=0, **{"min_lr": 0.0, "eps": 1e-8, **kw})
    np.testing.assert_allclose(got, ref, rtol=1e-15)
    assert got[-1] == got[-2] == min(got) > 0
    assert s.get_config()["eps"] == kw.get("eps", 1e-8)
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, **kw)
    for v, mine in zip(metrics, got):
        assert opt.param_groups[0]["lr"] == pytest.approx(mine, rel=1e-12)
        ts.step(v)


def test_reduce_on_plateau_eps_is_checked_and_saved():
    with pytest.raises(ValueError, match="ReduceOnPlateau eps"):
        ReduceOnPlateau(eps=-1.0)
    assert ReduceOnPlateau(eps=1e-3) != ReduceOnPlateau()
    assert schedules.from_config("reduce_on_plateau", ReduceOnPlateau(eps=1e-3).get_config(),
                                 ReduceOnPlateau().get_state()) == ReduceOnPlateau(eps=1e-3)


def test_adaptive_divides_the_rate_when_asked_until_min_lr():
    """scikit-learn's ``adaptive``: the estimators' rule calls ``reduce``; with Model.fit a
    callback can. Successive divisions, as scikit-learn's ``learning_rate /= 5``."""
    X, y = _data()
    m = Model([3, 4, 1], activation="tanh", seed=1)
    reduced = []
    h = m.fit(X, y, epochs=8, learning_rate=0.1, schedule=schedules.Adaptive(min_lr=1e-3),
              callbacks=[lambda e, logs: reduced.append(m.schedule.reduce())])
    rate, expected = 0.1, []
    for _ in range(8):
        expected.append(rate)
        rate = rate / 5.0 if rate > 1e-3 else rate
    assert h["lr"] == expected
    assert reduced == [True, True, True, False, False, False, False, False]
    assert schedules.get_schedule("adaptive") == schedules.Adaptive()
    with pytest.raises(ValueError, match="Adaptive divisor must be a finite number > 1"):
        schedules.Adaptive(divisor=1.0)


def test_adaptive_progress_is_saved(tmp_path):
    X, y = _data()
    m = Model([3, 4, 1], activation="tanh", seed=1)
    m.fit(X, y, epochs=2, schedule=schedules.Adaptive(),
          callbacks=[lambda e, logs: m.schedule.reduce() and None])  # (True would stop)
    m.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    assert loaded.schedule.n_reductions == 2
    assert loaded.fit(X, y, epochs=1)["lr"][-1] == 0.01 / 5 / 5


def test_inverse_scaling_in_samples_starts_at_the_base_rate():
    """Its first epoch runs at lr whatever count its progress starts from (scikit-learn's
    invscaling after a warm start: a new optimizer starts at learning_rate_init)."""
    s = InverseScaling(power_t=0.5, unit="samples")
    s.samples_seen = 99
    assert s.lr(0.1) == 0.1
    s.step(None, 20)
    assert s.lr(0.1) == 0.1 / (119 + 1) ** 0.5
