"""Every warning fastbp issues carries the caller's file and line, never fastbp's own (the
estimators' methods are wrapped by a decorator, and the training loop is several calls
deep: ``fastbp._errors.warn_from_caller`` finds the first frame outside the package)."""

import ast
import pathlib
import signal
import sys
import warnings

import numpy as np
import pytest

import fastbp

FASTBP = pathlib.Path(fastbp.__file__).parent


def _next_line() -> int:
    """The number of the line after the caller's."""
    return sys._getframe(1).f_lineno + 1


def _caught(category, run):
    """Warnings of ``category`` issued while ``run()`` runs, whatever the filters say."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w for w in caught if issubclass(w.category, category)]


def _assert_at(caught, line):
    assert caught, "no warning"
    for w in caught:
        assert (w.filename, w.lineno) == (__file__, line), (w.filename, w.lineno, w.message)


def test_no_fastbp_module_calls_warnings_warn_itself():
    """The one place that issues warnings is ``warn_from_caller``."""
    offenders = []
    for path in FASTBP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                    "warnings.warn", "warn", "warnings.warn_explicit"):
                offenders.append(f"{path.relative_to(FASTBP)}:{node.lineno}")
    assert len(offenders) == 1 and offenders[0].startswith("_errors.py:"), offenders


# ------------------------------------------------------------------ Model
def test_model_divergence_warning_points_at_the_fit_call():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.normal(size=40)
    m = fastbp.Model([5, 8, 1], seed=0)
    line = _next_line()
    caught = _caught(fastbp.DivergenceWarning, lambda: m.fit(
        X, y, epochs=5, batch_size=10, learning_rate=1e30, on_divergence="warn"))
    _assert_at(caught, line)
    line = _next_line()
    caught = _caught(fastbp.DivergenceWarning, lambda: m.partial_fit(
        X, y, learning_rate=1e30, on_divergence="warn"))
    _assert_at(caught, line)


def test_model_no_progress_warning_points_at_the_fit_call():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    m = fastbp.Model([64, 32, 10], loss="cross_entropy", seed=0)
    line = _next_line()  # unscaled pixels, 0..256: no progress
    caught = _caught(fastbp.ConvergenceWarning, lambda: m.fit(X * 16, y, epochs=6,
                                                              learning_rate=0.1))
    _assert_at(caught, line)


# ------------------------------------------------------------------ estimators
sk = pytest.importorskip("fastbp.sklearn")  # the rest needs scikit-learn
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning  # noqa: E402


def _data(n=60):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_estimator_max_iter_warning_points_at_fit(solver):
    X, y = _data()
    est = sk.MLPClassifier((5,), solver=solver, max_iter=2, random_state=0)
    line = _next_line()
    caught = _caught(ConvergenceWarning, lambda: est.fit(X, y))
    _assert_at(caught, line)


def test_estimator_lbfgs_warning_points_at_fit():
    X, y = _data()
    est = sk.MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=2, random_state=0)
    line = _next_line()
    caught = _caught(ConvergenceWarning, lambda: est.fit(X, y.astype(float)))
    _assert_at(caught, line)


def test_estimator_batch_size_and_column_y_warnings_point_at_the_call():
    X, y = _data()
    est = sk.MLPRegressor(hidden_layer_sizes=(5,), batch_size=500, max_iter=1, random_state=0)
    line = _next_line()
    caught = _caught(UserWarning, lambda: est.fit(X, y.astype(float).reshape(-1, 1)))
    assert {w.category for w in caught} == {UserWarning, ConvergenceWarning,
                                            DataConversionWarning}
    _assert_at(caught, line)
    clf = sk.MLPClassifier((5,), max_iter=1, random_state=0)
    line = _next_line()
    caught = _caught(DataConversionWarning, lambda: clf.partial_fit(
        X, y[:, None], classes=[0, 1, 2]))
    _assert_at(caught, line)
    assert clf.n_iter_ == 1  # and it trained, on the raveled labels


def test_estimator_interrupt_warning_points_at_fit(monkeypatch):
    from conftest import sigint_on_call

    import fastbp._training.loop as loop

    monkeypatch.setattr(loop, "CALL_SECONDS", 0.0)  # one batch per compiled call
    sigint_on_call(monkeypatch, loop, "train_steps", 2)
    X, y = _data()
    est = sk.MLPClassifier((5,), batch_size=16, max_iter=5, random_state=0)
    line = _next_line()
    caught = _caught(UserWarning, lambda: est.fit(X, y))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert [str(w.message) for w in caught] == ["Training interrupted by user."]
    _assert_at(caught, line)


def test_a_warning_inside_a_scikit_learn_meta_estimator_points_at_its_caller():
    """Inside ``GridSearchCV`` the caller of ``fit`` is scikit-learn's code: the warning
    carries that file, never fastbp's."""
    from sklearn.model_selection import GridSearchCV

    X, y = _data(90)
    search = GridSearchCV(sk.MLPClassifier((5,), max_iter=1, random_state=0),
                          {"alpha": [1e-4]}, cv=2, n_jobs=None)
    caught = _caught(ConvergenceWarning, lambda: search.fit(X, y))
    assert caught and all(not w.filename.startswith(str(FASTBP)) for w in caught)
    assert all("sklearn" in w.filename for w in caught)
