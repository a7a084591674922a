"""Fuzzing the scikit-learn estimators with bad inputs: only ValueError/TypeError come out
(scikit-learn's InvalidParameterError is both), never a crash, and a fitted estimator that
rejected a call is unchanged."""

import copy
import os
import pickle
import warnings

import numpy as np
import pytest

sk = pytest.importorskip("fastbp.sklearn")

N_CASES = int(os.environ.get("FASTBP_FUZZ_CASES", "5000")) // 5
rng0 = np.random.default_rng(0)
X = rng0.normal(size=(30, 3))
YC = rng0.integers(0, 3, 30)
YR = rng0.normal(size=30)

# (scikit-learn converts numeric strings and object arrays of numbers: not bad here)
BAD_X = [None, "abc", X[:, 0], X[None], X[:0], np.where(X > 1, np.nan, X),
         np.where(X > 1, np.inf, X), X.astype(complex), np.array([["a"] * 3] * 30),
         np.array([[object()] * 3] * 30),
         [[1, 2], [3]], {"a": 1}]
BAD_Y = [None, YC[:29], np.full(30, np.nan), YC[:, None, None], np.array([object()] * 30),
         YC.astype(complex)]
BAD_SW = [np.ones(29), np.full(30, np.nan), "w", np.ones((30, 2))]
BAD_PARAMS = {
    "hidden_layer_sizes": [(0,), (-1,), "a", (2.5,)], "activation": ["rleu", 3],
    "solver": ["sdg", None], "alpha": [-1.0, "x"], "batch_size": [0, "big", -3],
    "learning_rate_init": [0.0, -1.0, "x"], "max_iter": [0, -1, 1.5], "momentum": [2.0, -1],
    "validation_fraction": [1.0, -0.1], "beta_1": [1.0, -0.1], "tol": [-1.0],
}


def _state(est):
    return pickle.dumps({k: v for k, v in vars(est).items()})


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = sk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, YC)
        r = sk.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, YR)
    return {"clf": c, "reg": r}


def test_fuzz_estimators(fitted):
    rng = np.random.default_rng(7)
    counts = {"cases": 0, "rejected": 0}
    for _ in range(N_CASES):
        kind = "clf" if rng.random() < 0.5 else "reg"
        est = fitted[kind]
        y = YC if kind == "clf" else YR
        method = ["fit", "partial_fit", "predict", "score", "params"][int(rng.integers(5))]
        if kind == "clf" and rng.random() < 0.2:
            method = "predict_proba"
        counts["cases"] += 1
        before = _state(est)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "params":
                target = copy.deepcopy(est)
                name = sorted(BAD_PARAMS)[int(rng.integers(len(BAD_PARAMS)))]
                value = BAD_PARAMS[name][int(rng.integers(len(BAD_PARAMS[name])))]
                target.set_params(**{name: value})
                with pytest.raises((ValueError, TypeError)):
                    target.fit(X, y)
                counts["rejected"] += 1
                continue
            args = [X, y]
            kw = {}
            what = int(rng.integers(3 if method in ("fit", "partial_fit") else 2))
            if what == 0 or method in ("predict", "predict_proba"):
                bad = BAD_X + ([X[:, :2]] if method not in ("fit", "partial_fit") else [])
                args[0] = bad[int(rng.integers(len(bad)))]
            elif what == 1:
                args[1] = BAD_Y[int(rng.integers(len(BAD_Y)))]
            else:
                kw["sample_weight"] = BAD_SW[int(rng.integers(len(BAD_SW)))]
            if method in ("predict", "predict_proba"):
                args = args[:1]
            with pytest.raises((ValueError, TypeError)):
                getattr(est, method)(*args, **kw)
        counts["rejected"] += 1
        assert _state(est) == before, method  # rejected: unchanged, still usable
    print("estimator fuzz counts:", counts)
    assert counts["rejected"] == N_CASES
