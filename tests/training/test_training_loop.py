"""The training loop: validation, early stopping, callbacks, progress bar, weights,
partial_fit, continuation and reset, evaluate, initialisers, argument checking."""

import warnings

import numpy as np
import pytest
from naive_train import loss_grad

from fastbp import ConvergenceWarning, EarlyStopping, Model
from fastbp.optim import SGD


def _clf(n=40, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int) * (classes - 2)
    return X, y


def _model(seed=1, **kw):
    return Model([4, 6, 3], activation="tanh", loss="cross_entropy", seed=seed, **kw)


# ---------------------------------------------------------------- validation
def test_validation_data_metrics_are_end_of_epoch_evaluations():
    X, y = _clf()
    Xv, yv = _clf(n=15, seed=1)
    m = _model()
    seen = []
    h = m.fit(X, y, epochs=3, optimizer="adam", validation_data=(Xv, yv),
              callbacks=[lambda e, logs: seen.append((m.evaluate(Xv, yv), logs))])
    for (ev, logs), vl, va in zip(seen, h["val_loss"], h["val_accuracy"], strict=True):
        assert ev["loss"] == logs["val_loss"] == vl
        assert ev["accuracy"] == logs["val_accuracy"] == va
    assert set(h.keys()) >= {"loss", "lr", "time", "accuracy", "val_loss", "val_accuracy"}
    assert len(h["val_loss"]) == h.epochs == 3


def test_validation_split_holds_out_a_seeded_subset():
    X, y = _clf(n=50)
    a = _model(seed=7)
    ha = a.fit(X, y, epochs=2, validation_split=0.2)
    val = np.sort(np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(7, spawn_key=(3,)))).permutation(50)[:10])
    train = np.setdiff1d(np.arange(50), val)
    b = _model(seed=7)
    hb = b.fit(X[train], y[train], epochs=2, validation_data=(X[val], y[val]))
    assert np.array_equal(a.params, b.params)
    assert ha["val_loss"] == hb["val_loss"] and ha["loss"] == hb["loss"]


def test_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    m = Model([2, 3, 1], seed=0)
    h = m.fit(X, X.sum(1), epochs=2, validation_split=0.25)
    assert "accuracy" not in h and "val_accuracy" not in h and "val_loss" in h
    assert set(m.evaluate(X, X.sum(1))) == {"loss"}


# ---------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_and_restores_best():
    X, y = _clf()
    Xv, yv = _clf(n=20, seed=3)
    m = _model()
    snapshots = []
    es = EarlyStopping(patience=3, restore_best=True)
    h = m.fit(X, y, epochs=200, batch_size=4, learning_rate=0.5, optimizer="adam",
              validation_data=(Xv, yv), early_stopping=es,
              callbacks=[lambda e, logs: snapshots.append(m.params.copy())])
    assert h.epochs < 200
    assert es.stopped_epoch == h.epochs - 1
    best = int(np.argmin(h["val_loss"]))
    assert es.best_epoch == best and h.epochs - 1 - best == 3
    assert np.array_equal(m.params, snapshots[best])
    assert m.evaluate(Xv, yv)["loss"] == es.best == min(h["val_loss"])


def test_early_stopping_min_delta_and_no_restore():
    X, y = _clf()
    m = _model()
    es = EarlyStopping(patience=2, min_delta=10.0, restore_best=False, monitor="loss")
    last = []
    h = m.fit(X, y, epochs=50, early_stopping=es,
              callbacks=[lambda e, logs: last.append(m.params.copy())])
    assert h.epochs == 3 and es.best_epoch == 0  # nothing improves by 10
    assert np.array_equal(m.params, last[-1])


def test_early_stopping_on_accuracy_maximises():
    X, y = _clf()
    m = _model()
    es = EarlyStopping(patience=4, monitor="accuracy")
    h = m.fit(X, y, epochs=30, learning_rate=0.05, early_stopping=es)
    assert es.best == max(h["accuracy"])


def test_early_stopping_needs_validation_for_val_monitor():
    X, y = _clf()
    m = _model()
    with pytest.raises(ValueError, match="no validation data"):
        m.fit(X, y, early_stopping=EarlyStopping())
    rng = np.random.default_rng(0)
    r = Model([2, 1], seed=0)
    with pytest.raises(ValueError, match="not a classification loss"):
        r.fit(rng.normal(size=(5, 2)), rng.normal(size=5),
              early_stopping=EarlyStopping(monitor="accuracy"))


# ---------------------------------------------------------------- callbacks and verbose
def test_callback_can_stop_and_sees_metrics():
    X, y = _clf()
    m = _model()
    calls = []

    def cb(epoch, logs):
        calls.append((epoch, dict(logs)))
        return epoch == 2

    h = m.fit(X, y, epochs=10, callbacks=[cb])
    assert h.epochs == 3 and [c[0] for c in calls] == [0, 1, 2]
    assert calls[1][1]["loss"] == h["loss"][1] and "lr" in calls[1][1]
    m.fit(X, y, epochs=1, callbacks=cb)  # a single callable is accepted; epochs keep counting
    assert calls[-1][0] == 3


def test_bad_callbacks_rejected():
    X, y = _clf()
    with pytest.raises(TypeError, match=r"callbacks\[1\]"):
        _model().fit(X, y, callbacks=[print, 3])


def test_verbose_shows_progress_and_silent_otherwise(capsys):
    X, y = _clf()
    m = _model()
    m.fit(X, y, epochs=2)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    m.fit(X, y, epochs=2, verbose=True, validation_split=0.2)
    err = capsys.readouterr().err
    assert "loss=" in err and "val_loss=" in err and "samples/s" in err and "2/2" in err


# ---------------------------------------------------------------- sample and class weights
def test_sample_weight_two_equals_duplicated_row():
    X, y = _clf(n=12)
    w = np.ones(12)
    w[[2, 5]] = 2.0
    Xd = np.vstack([X, X[[2, 5]]])
    yd = np.concatenate([y, y[[2, 5]]])
    a = _model(dtype="float64")
    b = _model(dtype="float64")
    ha = a.fit(X, y, epochs=5, batch_size=None, optimizer=SGD(momentum=0.5), sample_weight=w)
    hb = b.fit(Xd, yd, epochs=5, batch_size=None, optimizer=SGD(momentum=0.5))
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-13)
    # the same objective for L-BFGS and the gradient
    np.testing.assert_allclose(a.gradient(X, y, sample_weight=w)[1], a.gradient(Xd, yd)[1],
                               atol=1e-14)


def test_sample_weight_matches_numpy_weighted_gradient_step():
    X, y = _clf(n=10)
    w = np.linspace(0, 3, 10)
    m = _model(dtype="float64")
    p0 = m.params.copy()
    m.fit(X, y, epochs=1, batch_size=None, learning_rate=0.3, sample_weight=w)
    _, g = loss_grad(p0, [4, 6, 3], "tanh", "cross_entropy", X, np.eye(3)[y], sw=w)
    np.testing.assert_allclose(m.params, p0 - 0.3 * g, atol=1e-14)


def test_sample_weight_scale_does_not_change_training():
    X, y = _clf()
    a, b = _model(), _model()
    a.fit(X, y, epochs=2, batch_size=8, sample_weight=np.full(40, 1.0))
    b.fit(X, y, epochs=2, batch_size=8, sample_weight=np.full(40, 7.0))
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6)


def test_class_weight_balanced_and_dict():
    X, y = _clf(n=30)
    counts = np.bincount(y, minlength=3)
    balanced = 30 / (np.count_nonzero(counts) * counts[y])
    a, b, c, d = _model(), _model(), _model(), _model()
    a.fit(X, y, epochs=2, batch_size=8, class_weight="balanced")
    b.fit(X, y, epochs=2, batch_size=8, sample_weight=balanced)
    assert np.array_equal(a.params, b.params)
    c.fit(X, y, epochs=2, batch_size=8, class_weight={0: 2.0, 2: 0.5},
          sample_weight=np.full(30, 3.0))
    d.fit(X, y, epochs=2, batch_size=8, sample_weight=3.0 * np.array([2.0, 1.0, 0.5])[y])
    assert np.array_equal(c.params, d.params)
    assert not np.array_equal(a.params, _fit_plain(X, y))


def _fit_plain(X, y):
    m = _model()
    m.fit(X, y, epochs=2, batch_size=8)
    return m.params


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(sample_weight=-np.ones(40)), ValueError, ">= 0"),
        (dict(sample_weight=np.zeros(40)), ValueError, "zero for every sample"),
        (dict(sample_weight=np.ones(3)), ValueError, "one weight per sample"),
        (dict(class_weight="balance"), ValueError, "balanced"),
        (dict(class_weight={5: 1.0}), ValueError, "class labels 0..2"),
        (dict(class_weight=[1, 2]), TypeError, "class_weight must be"),
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(validation_split=0.1, validation_data=([[0, 0, 0, 0]], [0])), ValueError, "not both"),
        (dict(validation_data=([[0, 0, 0]], [0])), ValueError, "validation_data"),
        (dict(early_stopping=3), TypeError, "early_stopping"),
        (dict(epochs=0), ValueError, "epochs"),
        (dict(reset="yes"), TypeError, "reset"),
    ],
)
def test_rejected_call_changes_nothing(kw, exc, match):
    X, y = _clf()
    m = _model()
    m.fit(X, y, epochs=1, optimizer="adam")
    state = (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps,
             m.state.shuffle_rng.bit_generator.state, dict(m.history.metrics))
    with pytest.raises(exc, match=match):
        m.fit(X, y, **kw)
    assert np.array_equal(state[0], m.params) and np.array_equal(state[1], m.optimizer_state)
    assert state[2:] == (m.optimizer_steps, m.state.shuffle_rng.bit_generator.state,
                         m.history.metrics)


def test_class_weight_needs_classification():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="class_weight needs"):
        Model([2, 1], seed=0).fit(rng.normal(size=(5, 2)), rng.normal(size=5),
                                  class_weight="balanced")


def test_class_weight_binary_cross_entropy():
    X, y = _clf(n=20, classes=2)
    a = Model([4, 3, 1], loss="binary_cross_entropy", seed=0)
    b = Model([4, 3, 1], loss="binary_cross_entropy", seed=0)
    a.fit(X, y, epochs=2, class_weight={1: 3.0})
    b.fit(X, y, epochs=2, sample_weight=np.where(y == 1, 3.0, 1.0))
    assert np.array_equal(a.params, b.params)


# ---------------------------------------------------------------- continuation
def test_partial_fit_keeps_optimizer_state_and_equals_fit_epochs():
    X, y = _clf()
    a, b = _model(), _model()
    a.fit(X, y, epochs=3, batch_size=8, optimizer="rmsprop", learning_rate=0.01)
    b.partial_fit(X, y, batch_size=8, optimizer="rmsprop", learning_rate=0.01)
    state1 = b.optimizer_state.copy()
    b.partial_fit(X, y, batch_size=8, learning_rate=0.01)
    b.partial_fit(X, y, batch_size=8, learning_rate=0.01)
    assert (state1 != 0).any() and b.optimizer_steps == 15
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.optimizer_state, b.optimizer_state)


def test_fit_continues_and_reset_starts_over():
    X, y = _clf()
    a, b, fresh = _model(), _model(), _model()
    init = fresh.params.copy()
    a.fit(X, y, epochs=5, optimizer="adam")
    b.fit(X, y, epochs=2, optimizer="adam")
    b.fit(X, y, epochs=3)
    assert np.array_equal(a.params, b.params) and b.history.epochs == 5
    b.fit(X, y, epochs=2, optimizer="adam", reset=True)
    fresh.fit(X, y, epochs=2, optimizer="adam")
    assert np.array_equal(b.params, fresh.params) and b.history.epochs == 2
    assert not np.array_equal(init, b.params)


def test_evaluate():
    X, y = _clf()
    m = _model()
    m.fit(X, y, epochs=3)
    ev = m.evaluate(X, y)
    assert ev["loss"] == m.loss_value(X, y)
    assert ev["accuracy"] == np.mean(m.predict(X).argmax(1) == y)
    w = np.arange(40.0)
    ref, _ = loss_grad(m.params.astype(np.float64), [4, 6, 3], "tanh", "cross_entropy", X,
                       np.eye(3)[y], sw=w)
    assert m.evaluate(X, y, sample_weight=w)["loss"] == pytest.approx(ref, rel=1e-5)


# ---------------------------------------------------------------- initialisers
@pytest.mark.parametrize(
    "init, std",
    [
        ("glorot_uniform", np.sqrt(2 / (200 + 100))),
        ("glorot_normal", np.sqrt(2 / (200 + 100))),
        ("he_uniform", np.sqrt(2 / 200)),
        ("he_normal", np.sqrt(2 / 200)),
        ("lecun_normal", np.sqrt(1 / 200)),
    ],
)
def test_initialisers_by_name(init, std):
    m = Model([200, 100, 1], init=init, seed=0, dtype="float64")
    W = m.weights[0]
    assert abs(W.std() / std - 1) < 0.03 and abs(W.mean()) < 0.05 * std
    assert (m.biases[0] == 0).all()
    if init.endswith("uniform"):
        assert np.abs(W).max() <= np.sqrt(3) * std


def test_default_initialiser_follows_activation():
    relu = Model([200, 100, 1], activation="relu", seed=0, dtype="float64")
    tanh = Model([200, 100, 1], activation="tanh", seed=0, dtype="float64")
    assert abs(relu.weights[0].std() / np.sqrt(2 / 200) - 1) < 0.03
    assert abs(tanh.weights[0].std() / np.sqrt(2 / 300) - 1) < 0.03


# ---------------------------------------------------------------- no progress
def _digits():
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_digits(return_X_y=True)


def _fit_recording(m, *args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.fit(*args, **kw)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_no_progress_on_unscaled_pixels_warns_once_naming_the_cause():
    X, y = _digits()
    pixels = X * 16  # 0..256, as unscaled 8-bit images
    m = Model([64, 32, 10], loss="cross_entropy", seed=0)
    caught = _fit_recording(m, pixels, y, epochs=6, learning_rate=0.1)
    assert len(caught) == 1
    w = caught[0]
    assert issubclass(w.category, UserWarning) and w.filename == __file__  # the user's line
    text = str(w.message)
    assert "no progress" in text and "Scale the inputs" in text and "[0, 256]" in text
    assert "Lower the learning rate (it is 0.1" in text
    assert abs(m.history["loss"][-1] - np.log(10)) < 0.05 and m.history["accuracy"][-1] < 0.15
    # once per model: more stuck epochs, or stuck partial_fit calls, warn no more
    assert _fit_recording(m, pixels, y, epochs=3, learning_rate=0.1) == []
    # reset starts the check afresh; online training is judged across calls
    m.fit(pixels[:10], y[:10], reset=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(0, 5 * 1700, 100):  # 4 steps a call: blocks of 13 calls
            j = i % 1700
            m.partial_fit(pixels[j:j + 100], y[j:j + 100], learning_rate=0.1)
    assert [w.category for w in caught] == [ConvergenceWarning]


def test_no_progress_with_a_tiny_learning_rate_suggests_a_higher_one():
    X, y = _digits()
    m = Model([64, 32, 10], loss="cross_entropy", seed=0)
    caught = _fit_recording(m, X / 16, y, epochs=8, learning_rate=1e-4)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "too low; try 10 times higher" in text and "Scale the inputs" not in text


@pytest.mark.parametrize("kw", [dict(learning_rate=0.01), dict(learning_rate=1e-3),
                                dict(optimizer="adam", learning_rate=1e-3)])
def test_healthy_training_does_not_warn(kw):
    X, y = _digits()
    m = Model([64, 32, 10], activation="tanh", loss="cross_entropy", seed=0)
    assert _fit_recording(m, X / 16, y, epochs=12, **kw) == []
    assert m.history["loss"][-1] < 0.95 * np.log(10)


def test_no_progress_check_skips_regression():
    X, _ = _digits()
    rng = np.random.default_rng(0)
    noise = rng.normal(size=len(X))  # nothing to learn: the loss stays at the baseline
    m = Model([64, 8, 1], seed=0)
    assert _fit_recording(m, X / 16, noise, epochs=6) == []
