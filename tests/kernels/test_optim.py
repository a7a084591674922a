"""Optimizers: each step kernel against a NumPy transcription of the torch.optim formula."""

import warnings

import numpy as np
import pytest
from naive_train import adagrad, adam, loss_grad, rmsprop, sgd, weight_mask

import fastbp
from fastbp import Model
from fastbp.optim import LBFGS, SGD, Adagrad, Adam, AdamW, RMSprop

SIZES = [3, 4, 2]
N_STEPS = 100


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], n)
    T = np.eye(SIZES[-1])[y]
    return X, y, T


# (fastbp optimizer, NumPy reference, reference kwargs, learning rate)
CASES = {
    "sgd": (SGD(), sgd, {}, 0.1),
    "sgd_momentum": (SGD(momentum=0.9, dampening=0.1), sgd,
                     dict(momentum=0.9, dampening=0.1), 0.05),
    "sgd_nesterov": (SGD(momentum=0.8, nesterov=True), sgd,
                     dict(momentum=0.8, nesterov=True), 0.05),
    "adam": (Adam(betas=(0.8, 0.99), eps=1e-6), adam, dict(betas=(0.8, 0.99), eps=1e-6), 0.01),
    "adamw": (AdamW(weight_decay=0.1), adam, dict(weight_decay=0.1), 0.01),
    "rmsprop": (RMSprop(alpha=0.9), rmsprop, dict(alpha=0.9), 0.01),
    "rmsprop_centered_momentum": (RMSprop(momentum=0.5, centered=True), rmsprop,
                                  dict(momentum=0.5, centered=True), 0.005),
    "adagrad": (Adagrad(lr_decay=0.01, initial_accumulator_value=0.1), adagrad,
                dict(lr_decay=0.01, initial_accumulator_value=0.1), 0.1),
}


def _reference_run(theta0, case, X, T, l2, steps=N_STEPS):
    _, ref, kw, lr = CASES[case]
    wm = weight_mask(SIZES)
    if ref is adam and "weight_decay" in kw:
        kw = dict(kw, wmask=wm)
    p, st = theta0.astype(np.float64).copy(), {}
    for t in range(1, steps + 1):
        _, g = loss_grad(p, SIZES, "tanh", "cross_entropy", X, T)
        p = ref(p, g, st, t, lr, l2 * wm, **kw)
    return p


def max_param_diff(case, l2=1e-2, dtype="float64"):
    """Largest |fastbp - NumPy reference| after 100 full-batch steps (used in the report)."""
    X, y, T = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=3, dtype=dtype)
    theta0 = m.params.copy()
    opt, _, _, lr = CASES[case]
    m.fit(X, y, epochs=N_STEPS, batch_size=None, shuffle=False, learning_rate=lr,
          optimizer=opt, l2=l2)
    ref = _reference_run(theta0, case, X, T, l2)
    return np.abs(m.params - ref).max(), np.abs(ref - theta0).max()


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_numpy_reference_over_100_steps(case):
    diff, moved = max_param_diff(case)
    assert moved > 1e-2  # the run really trained
    assert diff < 1e-10, f"{case}: max |param diff| = {diff:.3g}"


@pytest.mark.parametrize("case", ["sgd_momentum", "adam"])
def test_float32_tracks_float64_reference(case):
    diff, _ = max_param_diff(case, dtype="float32")
    assert diff < 1e-4


def test_minibatches_and_partial_last_batch_match_reference():
    X, y, T = _data(n=11)
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=4, dtype="float64")
    p = m.params.copy()
    m.fit(X, y, epochs=3, batch_size=4, shuffle=False, learning_rate=0.01, optimizer="adam")
    st, t = {}, 0
    for _ in range(3):
        for s in range(0, 11, 4):
            t += 1
            _, g = loss_grad(p, SIZES, "tanh", "cross_entropy", X[s:s + 4], T[s:s + 4])
            p = adam(p, g, st, t, 0.01, 0.0)
    assert m.optimizer_steps == 9
    np.testing.assert_allclose(m.params, p, rtol=0, atol=1e-12)


def test_plain_sgd_driver_matches_core_train_epoch_sgd_bitwise():
    from fastbp._validation.arrays import check_targets
    from fastbp.kernels._drivers import train_epoch_sgd

    X, y, _ = _data(n=20)
    a = Model(SIZES, activation="relu", loss="cross_entropy", seed=5)
    b = Model(SIZES, activation="relu", loss="cross_entropy", seed=5)
    a.fit(X, y, epochs=1, batch_size=6, shuffle=False, learning_rate=0.1)
    Xc = X.astype(b.dtype)
    T = check_targets(y, 20, "cross_entropy", 2, b.dtype)
    ws = b.network.workspace(6).arrays(dropout=False)
    train_epoch_sgd(Xc, T, np.arange(20), b.network.args(), ws, 6, 0.1)
    assert np.array_equal(a.params, b.params)


def test_state_kept_between_fit_calls_and_reset_on_kind_change():
    X, y, _ = _data()
    a = Model(SIZES, activation="tanh", loss="cross_entropy", seed=6)
    b = Model(SIZES, activation="tanh", loss="cross_entropy", seed=6)
    a.fit(X, y, epochs=4, batch_size=5, optimizer="adam")
    b.fit(X, y, epochs=2, batch_size=5, optimizer="adam")
    b.fit(X, y, epochs=2, batch_size=5)  # optimizer=None keeps Adam and its state
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.optimizer_state, b.optimizer_state)
    assert b.optimizer_steps == 12 and isinstance(b.optimizer, Adam)
    b.fit(X, y, epochs=1, batch_size=5, optimizer=SGD(momentum=0.9))
    assert b.optimizer_steps == 3 and b.optimizer_state.shape == (1, b.params.size)


def test_changed_hyperparameters_keep_state_of_same_kind():
    X, y, _ = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=6)
    m.fit(X, y, epochs=2, batch_size=6, optimizer=Adam())
    state = m.optimizer_state.copy()
    m.fit(X, y, epochs=1, batch_size=6, optimizer=Adam(betas=(0.5, 0.9)))
    assert m.optimizer_steps == 6
    assert m.optimizer.get_config()["betas"] == [0.5, 0.9]
    assert not np.array_equal(state, m.optimizer_state)


def test_l2_is_not_applied_to_biases():
    X, y, T = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=7, dtype="float64")
    p0 = m.params.copy()
    _, g = loss_grad(p0, SIZES, "tanh", "cross_entropy", X, T)
    m.fit(X, y, epochs=1, batch_size=None, shuffle=False, learning_rate=0.5, l2=0.3)
    expected = p0 - 0.5 * (g + 0.3 * weight_mask(SIZES) * p0)
    np.testing.assert_allclose(m.params, expected, rtol=0, atol=1e-14)


def test_lbfgs_matches_scipy_on_numpy_objective():
    scipy_opt = pytest.importorskip("scipy.optimize")
    X, y, T = _data(n=15)
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=8, dtype="float64")
    p0 = m.params.copy()
    h = m.fit(X, y, epochs=30, optimizer=LBFGS(m=5), l2=1e-3)
    wm = weight_mask(SIZES)

    def f(p):
        loss, g = loss_grad(p, SIZES, "tanh", "cross_entropy", X, T)
        return loss + 0.5e-3 * (wm * p * p).sum(), g + 1e-3 * wm * p

    res = scipy_opt.minimize(f, p0, jac=True, method="L-BFGS-B",
                             options=dict(maxiter=30, maxcor=5, gtol=1e-5, ftol=2.2e-9))
    np.testing.assert_allclose(m.params, res.x, atol=1e-6)
    assert h.epochs == res.nit == m.optimizer_steps
    assert h["loss"][-1] < h["loss"][0]


def test_lbfgs_refuses_dropout_clipping_and_schedules():
    X, y, _ = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=1, dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        m.fit(X, y, optimizer="lbfgs")
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=1)
    with pytest.raises(ValueError, match="clip_norm"):
        m.fit(X, y, optimizer="lbfgs", clip_norm=1.0)
    with pytest.raises(ValueError, match="schedule"):
        m.fit(X, y, optimizer="lbfgs", schedule="exponential_decay")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(optimizer="adamm"), ValueError, "Did you mean 'adam'"),
        (dict(optimizer=3), TypeError, "optimizer must be a name"),
        (dict(l2=-1.0), ValueError, "l2"),
        (dict(clip_norm=0.0), ValueError, "clip_norm"),
    ],
)
def test_bad_optimizer_arguments_are_rejected_without_changes(kwargs, exc, match):
    X, y, _ = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=1)
    m.fit(X, y, epochs=1, optimizer="adam")
    before = (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps, m.history.epochs)
    with pytest.raises(exc, match=match):
        m.fit(X, y, **kwargs)
    assert np.array_equal(before[0], m.params)
    assert np.array_equal(before[1], m.optimizer_state)
    assert before[2:] == (m.optimizer_steps, m.history.epochs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SGD(momentum=-0.1), "momentum"),
        (lambda: SGD(nesterov=True), "nesterov"),
        (lambda: Adam(betas=(0.9,)), "betas"),
        (lambda: Adam(eps=0), "eps"),
        (lambda: RMSprop(alpha=1.0), "alpha"),
        (lambda: Adagrad(lr_decay=-1), "lr_decay"),
        (lambda: LBFGS(m=0), "m"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_names_give_default_hyperparameters():
    assert fastbp.optim.get_optimizer("adam") == Adam()
    assert fastbp.optim.get_optimizer("adamw").get_config()["weight_decay"] == 0.01


# ---------------------------------------------------------------- against torch itself
TORCH_CASES = {
    "sgd_momentum": lambda t, w, b: t.optim.SGD(
        [{"params": w, "weight_decay": 1e-2}, {"params": b, "weight_decay": 0}],
        lr=0.05, momentum=0.9, dampening=0.1),
    "sgd_nesterov": lambda t, w, b: t.optim.SGD(
        [{"params": w, "weight_decay": 1e-2}, {"params": b, "weight_decay": 0}],
        lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda t, w, b: t.optim.Adam(
        [{"params": w, "weight_decay": 1e-2}, {"params": b, "weight_decay": 0}],
        lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    "adamw": lambda t, w, b: t.optim.AdamW(
        [{"params": w, "weight_decay": 0.1}, {"params": b, "weight_decay": 0}], lr=0.01),
    "rmsprop_centered_momentum": lambda t, w, b: t.optim.RMSprop(
        [{"params": w, "weight_decay": 1e-2}, {"params": b, "weight_decay": 0}],
        lr=0.005, momentum=0.5, centered=True),
    "adagrad": lambda t, w, b: t.optim.Adagrad(
        [{"params": w, "weight_decay": 1e-2}, {"params": b, "weight_decay": 0}],
        lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_optim(case):
    torch = pytest.importorskip("torch")
    X, y, _ = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=3, dtype="float64")
    layers = [torch.nn.Linear(a, b).double() for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)]
    with torch.no_grad():
        for lin, W, b in zip(layers, m.weights, m.biases, strict=True):
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
    ws = [lin.weight for lin in layers]
    bs = [lin.bias for lin in layers]
    opt = TORCH_CASES[case](torch, ws, bs)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layers[1](torch.tanh(layers[0](Xt))), yt)
        loss.backward()
        opt.step()
    fb_opt, _, _, lr = CASES[case]
    l2 = 0.0 if case == "adamw" else 1e-2
    m.fit(X, y, epochs=N_STEPS, batch_size=None, shuffle=False, learning_rate=lr,
          optimizer=fb_opt, l2=l2)
    flat = np.concatenate([t.detach().numpy().ravel() for lin in layers
                           for t in (lin.weight, lin.bias)])
    np.testing.assert_allclose(m.params, flat, rtol=0, atol=1e-9)


def test_lbfgs_with_validation_callbacks_early_stopping_and_weights():
    pytest.importorskip("scipy")
    X, y, T = _data(n=20)
    w = np.linspace(0.5, 2, 20)
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=9, dtype="float64")
    seen = []
    h = m.fit(X, y, epochs=50, optimizer="lbfgs", sample_weight=w, validation_split=0.25,
              callbacks=[lambda e, logs: seen.append(logs["val_loss"]) or e == 4])
    assert h.epochs == 5 == len(seen) == m.optimizer_steps
    assert h["val_loss"] == seen and np.isnan(h["lr"]).all()
    assert h["loss"] == sorted(h["loss"], reverse=True)  # L-BFGS decreases the objective
    m2 = Model(SIZES, activation="tanh", loss="cross_entropy", seed=9, dtype="float64")
    es = fastbp.EarlyStopping(patience=2, min_delta=1e9, monitor="loss")
    h2 = m2.fit(X, y, epochs=50, optimizer="lbfgs", early_stopping=es)
    assert h2.epochs == 3 and es.best_epoch == 0


def _on_each_thread_count(run):
    """``run()`` with 1 thread and with all of Numba's threads: the results, in that order."""
    import numba

    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(run())
    finally:
        numba.set_num_threads(before)
    return results


def _wide_layer_data():
    """Data for a 520-512 first layer: above the optimizers' parallel threshold."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 520)), rng.integers(0, 2, 24)


def test_parallel_update_path_is_independent_of_thread_count():
    """A layer above the parallel threshold of the step kernel (2**18 elements): Adam with
    L2, AdamW decay, clipping and dropout give the same bits with 1 and with all threads."""
    from fastbp.kernels._updates import _PARALLEL_MIN_ELEMENTS

    X, y = _wide_layer_data()

    def run():
        m = Model([520, 512, 2], activation="relu", loss="cross_entropy", seed=0, dropout=0.2)
        assert m.weights[0].size >= _PARALLEL_MIN_ELEMENTS
        m.fit(X, y, epochs=2, batch_size=12, optimizer=AdamW(), l2=1e-3, clip_norm=0.5,
              learning_rate=1e-3)
        return m.params.copy(), m.optimizer_state.copy()

    results = _on_each_thread_count(run)
    for p, s in results[1:]:
        assert np.array_equal(p, results[0][0]) and np.array_equal(s, results[0][1])


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sklearn_rules_parallel_path_is_independent_of_thread_count(solver):
    """scikit-learn's rules on a layer above the parallel threshold (the estimators' update
    runs on all threads there): the same bits, loss included, with 1 and with all threads."""
    from fastbp.kernels._updates import _PARALLEL_MIN_ELEMENTS
    from fastbp.sklearn import MLPClassifier

    X, y = _wide_layer_data()

    def run():
        est = MLPClassifier(hidden_layer_sizes=(512,), solver=solver, batch_size=12,
                            max_iter=2, alpha=1e-3, momentum=0.9, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached
            est.fit(X, y)
        assert est.coefs_[0].size >= _PARALLEL_MIN_ELEMENTS
        return np.concatenate([c.ravel() for c in est.coefs_]), est.loss_

    results = _on_each_thread_count(run)
    for coefs, loss in results[1:]:
        assert np.array_equal(coefs, results[0][0]) and loss == results[0][1]
