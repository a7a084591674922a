"""fastbp.sklearn: scikit-learn's estimator checks, and equality with scikit-learn's MLPs.

The estimators follow scikit-learn's definitions and random-number use exactly, so with the
same ``random_state`` they must reach scikit-learn's weights up to floating-point rounding.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# ------------------------------------------------------------------ scikit-learn's checks
# scikit-learn runs its own MLPs through these checks with max_iter=100 (and its default
# hidden layer of 100 units); the same settings keep the quality checks meaningful here.
CHECKED = [
    MLPClassifier(max_iter=100, random_state=0),
    MLPClassifier(solver="lbfgs", max_iter=100, random_state=0),
    MLPRegressor(max_iter=100, random_state=0),
    MLPRegressor(solver="sgd", max_iter=100, random_state=0),
]


def _expected_failed_checks(estimator):
    """Checks that are expected to fail, with the reason (empty: none)."""
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ------------------------------------------------------------------ equality with scikit-learn
def _close_to_sklearn(ours, theirs, rtol=1e-9, atol=1e-10):
    assert ours.n_iter_ == theirs.n_iter_
    for name in ("loss_curve_", "validation_scores_"):
        if getattr(theirs, name, None) is not None:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _fit_both(ours_cls, theirs_cls, X, y, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**params).fit(X, y, sample_weight=sample_weight)
        theirs = theirs_cls(**params).fit(X, y, sample_weight=sample_weight)
    return ours, theirs


@pytest.fixture(scope="module")
def multiclass():
    X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    return X, y


BASE = dict(hidden_layer_sizes=(7, 5), max_iter=15, random_state=0, batch_size=16,
            learning_rate_init=0.01)

SOLVER_SETTINGS = [
    dict(solver="sgd"),
    dict(solver="sgd", nesterovs_momentum=False, momentum=0.5, learning_rate="invscaling"),
    dict(solver="sgd", momentum=0.0, learning_rate="adaptive", n_iter_no_change=2, tol=0.5),
    dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, alpha=0.1),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2, n_iter_no_change=3),
    dict(solver="adam", shuffle=False, batch_size=50),
    dict(solver="lbfgs", max_iter=30),
]


@pytest.mark.parametrize("settings", SOLVER_SETTINGS, ids=lambda s: "-".join(
    f"{v}" for v in s.values()))
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_classifier_matches_sklearn(multiclass, settings, activation):
    X, y = multiclass
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X, y,
                             **{**BASE, **settings, "activation": activation})
    _close_to_sklearn(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_binary_string_labels_and_sample_weight_match_sklearn(solver):
    X, y01 = make_classification(90, 5, random_state=1)
    y = np.where(y01 == 1, "spam", "ham")
    sw = np.random.default_rng(0).uniform(0.2, 2.0, size=len(y))
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X, y, sample_weight=sw,
                             solver=solver, **{**BASE, "max_iter": 10})
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert ours.n_outputs_ == 1
    assert list(ours.classes_) == ["ham", "spam"]
    _close_to_sklearn(ours, theirs)
    assert ours.predict_proba(X).shape == (90, 2)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_multilabel_matches_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5]).astype(int)
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X, Y, **BASE)
    assert ours.out_activation_ == "logistic" and ours.n_outputs_ == 3
    _close_to_sklearn(ours, theirs)
    assert ours.predict(X).shape == Y.shape
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_matches_sklearn(solver, n_targets):
    X, y = make_regression(100, 5, n_targets=n_targets, noise=0.1, random_state=0)
    y = y / 100
    ours, theirs = _fit_both(MLPRegressor, sk_nn.MLPRegressor, X, y, solver=solver,
                             **{**BASE, "learning_rate_init": 0.001})
    if solver == "lbfgs" and n_targets > 1:
        # documented difference: scikit-learn hands L-BFGS a loss divided by n_outputs
        # with an undivided gradient; ours are consistent, so the paths differ
        assert ours.score(X, y) > 0.5
        return
    _close_to_sklearn(ours, theirs)
    assert ours.predict(X).shape == theirs.predict(X).shape
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("n_targets", [1, 2])
def test_poisson_regressor_matches_sklearn(solver, n_targets):
    """loss='poisson': exp output, half Poisson deviance, same path as scikit-learn."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(90, 5))
    rate = np.exp(0.4 * X[:, :n_targets] + 0.2 * X[:, [4]])
    y = rng.poisson(rate).astype(float)  # zeros included
    y = y.ravel() if n_targets == 1 else y
    sw = rng.uniform(0.5, 2.0, size=len(y)) if solver == "adam" else None
    ours, theirs = _fit_both(MLPRegressor, sk_nn.MLPRegressor, X, y, sample_weight=sw,
                             solver=solver, loss="poisson", **BASE)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.model_.loss == "poisson"
    _close_to_sklearn(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-10)
    assert (ours.predict(X) > 0).all()


def test_float32_follows_sklearn(multiclass):
    X, y = multiclass
    X = X.astype(np.float32)
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X, y, **BASE)
    assert ours.coefs_[0].dtype == np.float32
    assert ours.predict_proba(X).dtype == np.float32
    _close_to_sklearn(ours, theirs, rtol=2e-3, atol=2e-4)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16, y


DIGITS = dict(hidden_layer_sizes=(100,), random_state=0, batch_size=64, max_iter=20)


def _max_weight_difference(ours, theirs):
    return max(float(np.abs(a - b).max()) for a, b in
               zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_))


def test_what_docs_sklearn_md_says_of_float64_and_float32(digits):
    """docs/sklearn.md, "Same results as scikit-learn", on digits (one hidden layer of 100,
    batch 64, 20 epochs): float64 weights agree to rounding; float32 sgd weights stay
    within a few float32 ulps; float32 adam lets single weights drift apart (by about 1e-2)
    while losses, probabilities and every predicted class stay the same."""
    X, y = digits
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X, y, solver="adam",
                             **DIGITS)
    assert _max_weight_difference(ours, theirs) < 1e-13
    X32 = X.astype(np.float32)
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X32, y, solver="sgd",
                             **DIGITS)
    assert ours.coefs_[0].dtype == np.float32
    assert _max_weight_difference(ours, theirs) < 2e-7  # a few ulps of weights up to 0.5
    ours, theirs = _fit_both(MLPClassifier, sk_nn.MLPClassifier, X32, y, solver="adam",
                             **DIGITS)
    drift = _max_weight_difference(ours, theirs)
    assert 1e-4 < drift < 0.05, drift  # measured 9e-3: rounding amplified by Adam
    assert abs(ours.loss_ - theirs.loss_) < 1e-3 * theirs.loss_
    p_ours, p_theirs = ours.predict_proba(X32), theirs.predict_proba(X32)
    assert np.abs(p_ours - p_theirs).max() < 1e-2
    np.testing.assert_array_equal(p_ours.argmax(axis=1), p_theirs.argmax(axis=1))
    assert ours.score(X32, y) == theirs.score(X32, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_and_warm_start_match_sklearn(multiclass, solver):
    X, y = multiclass
    params = {**BASE, "solver": solver}
    ours, theirs = MLPClassifier(**params), sk_nn.MLPClassifier(**params)
    for est in (ours, theirs):
        for i in range(3):
            est.partial_fit(X[i::3], y[i::3], classes=np.unique(y))
    _close_to_sklearn(ours, theirs)

    params["warm_start"] = True
    ours, theirs = MLPClassifier(**params), sk_nn.MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.fit(X, y)
            est.fit(X, y)
    assert ours.n_iter_ == BASE["max_iter"] and len(ours.loss_curve_) == 2 * BASE["max_iter"]
    _close_to_sklearn(ours, theirs)


# ------------------------------------------------------------------ behaviour
def test_lbfgs_has_no_partial_fit():
    est = MLPClassifier(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    assert hasattr(MLPClassifier(solver="adam"), "partial_fit")


def test_partial_fit_needs_classes_on_first_call(multiclass):
    X, y = multiclass
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)


def test_clone_pickle_and_views(multiclass):
    X, y = multiclass
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    proba = est.predict_proba(X)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params() and not hasattr(cloned, "coefs_")

    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    # coefs_ / intercepts_ are views into the fastbp model's buffer, also after unpickling
    for e in (est, restored):
        assert np.shares_memory(e.coefs_[0], e.model_.params)
        e.intercepts_[-1][:] = [100.0, 0.0, 0.0]
        assert (e.predict(X) == e.classes_[0]).all()
    # and partial_fit goes on after unpickling
    restored2 = pickle.loads(pickle.dumps(clone(est).set_params(max_iter=3)
                                          .partial_fit(X, y, classes=np.unique(y))))
    restored2.partial_fit(X, y)
    assert restored2.n_iter_ == 1 and len(restored2.loss_curve_) == 2


def test_unsupported_and_invalid_parameters(multiclass):
    X, y = multiclass
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="huber").fit(X, y.astype(float))
    with pytest.raises(ValueError, match="loss='poisson' must be >= 0"):
        MLPRegressor(loss="poisson").fit(X, y.astype(float) - 1)
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="rmsprop").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate_init"):
        MLPClassifier(learning_rate_init=0).fit(X, y)


@pytest.mark.parametrize("name, canonical", [("Sigmoid", "logistic"), ("sigmoid", "logistic"),
                                             ("ReLU", "relu"), ("Tanh", "tanh"),
                                             ("linear", "identity")])
def test_keras_and_pytorch_activation_names_fit_as_sklearns(multiclass, name, canonical):
    X, y = multiclass
    params = {**BASE, "max_iter": 3, "solver": "sgd"}
    ours = MLPClassifier(**params, activation=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        ref = sk_nn.MLPClassifier(**params, activation=canonical).fit(X, y)
    # scikit-learn's initialisation follows the activation too (logistic: a smaller bound)
    _close_to_sklearn(ours, ref)
    assert ours.get_params()["activation"] == name and clone(ours).activation == name
    assert ours.model_.activations == [canonical] * 2
    with pytest.raises(ValueError, match="Did you mean 'logistic'"):
        MLPClassifier(activation="sigmod").fit(X, y)


def test_pipeline_gridsearch_cross_val_score(multiclass):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = multiclass
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, learning_rate_init=0.01,
                                                         random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(5,), (20,)],
                                     "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert scores.shape == (3,) and (scores > 0.5).all()
    assert search.best_score_ > 0.5
    assert search.best_estimator_.predict(X).shape == y.shape


def test_import_fastbp_does_not_import_sklearn():
    code = (
        "import sys, fastbp, fastbp.kernels; "
        "assert 'sklearn' not in sys.modules, 'sklearn was imported'"
    )
    import os
    from pathlib import Path

    import fastbp

    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(fastbp.__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_verbose_prints_progress_without_deprecated_scipy_options(multiclass, solver, capsys):
    X, y = multiclass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", DeprecationWarning)
        MLPClassifier(solver=solver, max_iter=3, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out


# ------------------------------------------------------------------ assigned weights
def _assign(est, coefs, intercepts):
    est.coefs_ = [np.array(c) for c in coefs]
    est.intercepts_ = [np.array(b) for b in intercepts]


def test_assigned_weights_are_what_predict_and_partial_fit_use(multiclass):
    X, y = multiclass
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, batch_size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(X, y)
        theirs = sk_nn.MLPClassifier(**kw).fit(X, y)
    rng = np.random.default_rng(5)  # small weights: no probability near sklearn's clipping
    coefs = [rng.normal(scale=0.3, size=c.shape) for c in theirs.coefs_]
    intercepts = [rng.normal(scale=0.3, size=b.shape) for b in theirs.intercepts_]
    for est in (ours, theirs):
        _assign(est, coefs, intercepts)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    # partial_fit continues from the assigned weights (and the kept Adam state), as sklearn
    for est in (ours, theirs):
        est.partial_fit(X, y)
    _close_to_sklearn(ours, theirs)
    # one item, through the list
    ours.intercepts_[-1] = np.array([50.0, 0.0, 0.0])
    assert (ours.predict(X) == 0).all() and ours.intercepts_[-1][0] == 50.0
    assert np.shares_memory(ours.coefs_[0], ours.model_.params)
    with pytest.raises(TypeError, match="one array per layer"):
        ours.coefs_.append(coefs[0])


@pytest.mark.parametrize("value, exc, match", [
    ("nope", TypeError, "coefs_ must be a list of arrays"),
    ([np.zeros((5, 6)), np.zeros((6, 3))], ValueError,
     r"coefs_\[0\] must have shape \(6, 6\), the shape of this fitted estimator's layer 0"),
    ([np.zeros((6, 3))], ValueError, "coefs_ must hold 2 arrays"),
    ([np.zeros(6), np.zeros((6, 3))], ValueError, r"coefs_\[0\] must be a 2-D array"),
    ([np.full((6, 6), np.nan), np.zeros((6, 3))], ValueError, "NaN"),
])
def test_assigned_weights_are_checked_on_a_fitted_estimator(multiclass, value, exc, match):
    X, y = multiclass
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    before = est.predict_proba(X)
    with pytest.raises(exc, match=match):
        est.coefs_ = value
    np.testing.assert_array_equal(est.predict_proba(X), before)  # nothing was written


def test_assigned_weights_on_an_unfitted_estimator(multiclass):
    X, y = multiclass
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(6, 4)), rng.normal(size=(4, 3))]
    intercepts = [rng.normal(size=4), rng.normal(size=3)]
    # regressor: the weights are the model
    reg = MLPRegressor(hidden_layer_sizes=(4,), activation="tanh")
    assert not hasattr(reg, "coefs_")
    _assign(reg, coefs, intercepts)
    expected = np.tanh(X @ coefs[0] + intercepts[0]) @ coefs[1] + intercepts[1]
    np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-12)
    assert reg.n_features_in_ == 6 and reg.n_outputs_ == 3
    with pytest.raises(ValueError, match="6 features"):
        reg.predict(X[:, :5])
    # classifier: also needs to know its classes
    clf = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh")
    clf.coefs_ = coefs
    with pytest.raises(NotFittedError, match="no intercepts_; assign intercepts_ too"):
        clf.predict(X)
    clf.intercepts_ = intercepts
    with pytest.raises(NotFittedError, match="assign classes_ too"):
        clf.predict(X)
    clf.classes_ = np.array(["a", "b", "c"])
    logits = np.tanh(X @ coefs[0] + intercepts[0]) @ coefs[1] + intercepts[1]
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[logits.argmax(axis=1)])
    # shapes must chain, and match what partial_fit's data and hidden_layer_sizes give:
    # checked when the weights are used (predict, partial_fit, fit with warm_start)
    bad = MLPClassifier(hidden_layer_sizes=(4,), warm_start=True)
    bad.coefs_ = [coefs[0], np.zeros((5, 3))]
    bad.intercepts_ = intercepts
    bad.classes_ = np.array([0, 1, 2])
    for use in (lambda: bad.predict(X), lambda: bad.partial_fit(X, y),
                lambda: bad.fit(X, y)):
        with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(5, 3\).*4 rows"):
            use()
        assert not hasattr(bad, "model_") and bad.coefs_[1].shape == (5, 3)  # as it was
    bad.coefs_ = coefs
    bad.intercepts_ = [intercepts[0], np.zeros(2)]
    with pytest.raises(ValueError, match=r"intercepts_\[1\] has shape \(2,\)"):
        bad.partial_fit(X, y)
    wrong = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    _assign(wrong, coefs, intercepts)
    with pytest.raises(ValueError, match=r"set hidden_layer_sizes=\(4,\)"):
        wrong.partial_fit(X, y, classes=[0, 1, 2])


def test_placeholders_filled_item_by_item_as_in_scikit_learn(multiclass):
    """scikit-learn's own idiom (its test_fit): ``coefs_ = [0] * 2``, then each item; what
    is assigned is checked when it is used, with the errors of a whole assignment."""
    X, y = multiclass
    rng = np.random.default_rng(3)
    coefs = [rng.normal(scale=0.3, size=(6, 4)), rng.normal(scale=0.3, size=(4, 3))]
    intercepts = [rng.normal(scale=0.3, size=4), rng.normal(scale=0.3, size=3)]
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=len(X),
              learning_rate_init=0.1, random_state=0)
    ests = []
    for cls in (MLPClassifier, sk_nn.MLPClassifier):
        est = cls(**kw)
        est.coefs_ = [0] * 2
        est.intercepts_ = [0] * 2
        for i in range(2):
            est.coefs_[i] = coefs[i]
            est.intercepts_[i] = intercepts[i]
        # what scikit-learn's partial_fit then needs of its own (fastbp sets these itself)
        est.n_features_in_, est.n_outputs_, est.n_layers_ = 6, 3, 3
        est.out_activation_, est.n_iter_, est.t_ = "softmax", 0, 0
        est.best_loss_, est.loss_curve_, est._no_improvement_count = np.inf, [], 0
        est.partial_fit(X, y, classes=[0, 1, 2])
        ests.append(est)
    ours, theirs = ests
    _close_to_sklearn(ours, theirs)
    # an item left a placeholder: the same error as assigning it whole, where it is used
    est = MLPClassifier(**kw, warm_start=True)
    est.coefs_ = [0] * 2
    est.intercepts_ = intercepts
    est.coefs_[0] = coefs[0]
    est.classes_ = np.array([0, 1, 2])
    for use in (lambda: est.predict(X), lambda: est.partial_fit(X, y),
                lambda: est.fit(X, y)):
        with pytest.raises(ValueError, match=r"coefs_\[1\] must be a 2-D array of shape "
                                             r"\(fan_in, fan_out\); got shape \(\)"):
            use()
        assert est.coefs_[1] == 0 and not hasattr(est, "model_")
    est.coefs_[1] = coefs[1]
    est.partial_fit(X, y)
    assert np.shares_memory(est.coefs_[1], est.model_.params)
    # what cannot be a list of layers is refused at once
    with pytest.raises(TypeError, match="coefs_ must be a list of arrays"):
        MLPClassifier().coefs_ = "nope"


def test_partial_fit_starts_from_weights_assigned_before_fitting(multiclass):
    X, y = multiclass
    rng = np.random.default_rng(1)
    coefs = [rng.normal(size=(6, 4)), rng.normal(size=(4, 3))]
    intercepts = [rng.normal(size=4), rng.normal(size=3)]
    kw = dict(hidden_layer_sizes=(4,), alpha=0.0, batch_size=len(X), random_state=0)
    ref = MLPClassifier(**kw)
    _assign(ref, coefs, intercepts)
    ref.classes_ = np.array([0, 1, 2])
    start = log_loss(y, ref.predict_proba(X))
    est = MLPClassifier(**kw)
    _assign(est, coefs, intercepts)
    est.partial_fit(X, y, classes=[0, 1, 2])
    # the first (and only) batch's loss is measured before its update: the assigned weights'
    assert est.n_iter_ == 1 and est.loss_curve_[0] == pytest.approx(start, rel=1e-9)
    assert not np.allclose(est.coefs_[0], coefs[0])
    # fit(warm_start=True) starts from them too; plain fit draws fresh weights as sklearn
    warm = MLPClassifier(**kw, warm_start=True, max_iter=1)
    _assign(warm, coefs, intercepts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y)
    assert warm.loss_curve_[0] == pytest.approx(start, rel=1e-9)
    cold = MLPClassifier(**kw, max_iter=1)
    _assign(cold, coefs, intercepts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X, y)
    assert cold.loss_curve_[0] != pytest.approx(start, rel=1e-3)


# ------------------------------------------------------------------ errors like sklearn's
@pytest.mark.parametrize("y", [[0, 0, 0, 1], [False, False, False, True], ["a", "a", "a", "b"]])
def test_early_stopping_stratified_error_is_sklearns(y):
    X = [[1, 2], [2, 3], [3, 4], [4, 5]]
    msg = r"The least populated classes in y have only 1 member.*too few members are: \['True'\]"
    for cls in (MLPClassifier, sk_nn.MLPClassifier):
        with pytest.raises(ValueError, match=msg):
            cls(early_stopping=True).fit(X, y)


@pytest.mark.parametrize("params", [
    dict(alpha=-1.0), dict(solver="rmsprop"), dict(activation="softmax"), dict(max_iter=0),
    dict(batch_size=0), dict(batch_size="big"), dict(hidden_layer_sizes=(3, 0)),
    dict(hidden_layer_sizes="3"), dict(momentum=1.5), dict(learning_rate="linear"),
    dict(validation_fraction=1.0), dict(beta_1=1.0), dict(epsilon=0.0), dict(tol=-1e-4),
    dict(n_iter_no_change=0), dict(shuffle="yes"), dict(n_threads=0), dict(n_threads=1.5),
])
def test_invalid_hyperparameters_raise_sklearns_invalid_parameter_error(multiclass, params):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = multiclass
    name = next(iter(params))
    calls = [lambda e: e.fit(X, y)]
    if name != "solver":  # partial_fit exists for the stochastic solvers only
        calls.append(lambda e: e.partial_fit(X, y, classes=[0, 1, 2]))
    for call in calls:
        with pytest.raises(InvalidParameterError, match=name):
            call(MLPClassifier(**params))
    assert issubclass(InvalidParameterError, ValueError)


# ------------------------------------------------------------------ threads
def test_n_threads_sets_the_numba_threads_and_does_not_change_results(multiclass, monkeypatch):
    import numba

    import fastbp._training.loop as loop

    X, y = multiclass
    seen = []
    real = loop.kernel_threads

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(loop, "kernel_threads", spy)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPClassifier(**kw, n_threads=1).fit(X, y)
        many = MLPClassifier(**kw, n_threads=10**6).fit(X, y)  # clamped
        default = MLPClassifier(**kw).fit(X, y)
    assert seen[0] == 1 and seen[1] == numba.config.NUMBA_NUM_THREADS
    np.testing.assert_array_equal(one.coefs_[0], many.coefs_[0])
    np.testing.assert_array_equal(one.coefs_[0], default.coefs_[0])
    assert one.get_params()["n_threads"] == 1 and "n_threads" in clone(one).get_params()


# ------------------------------------------------------------------ learning-rate rules
def test_learning_rate_rules_are_the_models_schedule():
    """invscaling is InverseScaling(power_t, unit="samples") of learning_rate_init, counting
    the samples of earlier fits after a warm start's first epoch, as scikit-learn."""
    from fastbp.schedules import Adaptive, Constant, InverseScaling

    X, y = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    kw = dict(solver="sgd", hidden_layer_sizes=4, max_iter=1, power_t=0.25, warm_start=True,
              random_state=0)
    for rule, kind in (("invscaling", InverseScaling), ("constant", Constant),
                       ("adaptive", Adaptive)):
        ours, theirs = MLPClassifier(learning_rate=rule, **kw), sk_nn.MLPClassifier(
            learning_rate=rule, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for est in (ours, theirs, ours, theirs):
                est.fit(X, y)
        assert type(ours.model_.schedule) is kind
        assert ours.model_.history["lr"] == [0.001, 0.001]  # a new optimizer each fit
        # the rate of the next epoch (partial_fit continues the optimizer)
        assert ours.model_.schedule.lr(0.001) == theirs._optimizer.learning_rate
        if rule == "invscaling":  # scikit-learn's own test_learning_rate_warmstart
            assert ours.model_.schedule.lr(0.001) == 0.001 / pow(8 + 1, 0.25)
        ours.partial_fit(X, y)
        assert ours.model_.history["lr"][-1] == theirs._optimizer.learning_rate


def test_adaptive_rate_is_divided_by_five_until_it_stops(multiclass):
    X, y = multiclass
    kw = dict(solver="sgd", learning_rate="adaptive", tol=0.5, hidden_layer_sizes=(5,),
              random_state=0, max_iter=200)
    ours = MLPClassifier(**kw).fit(X, y)
    theirs = sk_nn.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    lr = ours.model_.history["lr"]
    assert lr[-1] == theirs._optimizer.learning_rate < 1e-6  # the same divisions, bit for bit
    rates = sorted(set(lr), reverse=True)
    assert lr == sorted(lr, reverse=True) and len(rates) > 3
    assert all(b == a / 5 for a, b in zip(rates, rates[1:]))


def test_partial_fit_keeps_the_optimizer_s_rate_as_scikit_learn(multiclass):
    """A new learning_rate_init reaches the next fit that starts afresh, not partial_fit
    (scikit-learn's optimizer keeps the rate it was made with)."""
    X, y = multiclass
    ests = []
    for cls in (MLPClassifier, sk_nn.MLPClassifier):
        est = cls(hidden_layer_sizes=(5,), random_state=0, batch_size=40)
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.set_params(learning_rate_init=0.5)
        est.partial_fit(X, y)
        ests.append(est)
    _close_to_sklearn(*ests)
