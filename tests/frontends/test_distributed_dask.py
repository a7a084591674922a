"""Model search on a Dask cluster: the scikit-learn estimators under
``joblib.parallel_backend("dask")`` with ``GridSearchCV`` on a small ``LocalCluster``."""

import numpy as np
import pytest

pytest.importorskip("dask.distributed",
                    reason="dask[distributed] is not installed: pip install '.[dask]'")
pytest.importorskip("sklearn")

import joblib  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from fastbp.distributed import numba_compile_stats  # noqa: E402
from fastbp.sklearn import MLPClassifier  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=120) > 0).astype(int)
    return X, y


def _predict_proba(model, X):
    return model.predict_proba(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_local_cluster_matches_local_and_compiles_once_per_worker():
    X, y = _data()
    grid = {"hidden_layer_sizes": [(4,), (8,)], "alpha": [1e-4, 1e-2]}
    est = MLPClassifier(max_iter=30, random_state=0, learning_rate_init=0.01)
    # the same search in this process: the reference, and a warm on-disk Numba cache so
    # that the workers load the kernels instead of compiling them
    local = GridSearchCV(est, grid, cv=2).fit(X, y)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    try:
        with Client(cluster) as client:
            with joblib.parallel_backend("dask"):
                search = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X, y)
            first = client.run(numba_compile_stats)
            with joblib.parallel_backend("dask"):
                GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X, y)
            second = client.run(numba_compile_stats)
            # a fitted model pickles to a worker and predicts there exactly as here
            remote = client.submit(_predict_proba, local.best_estimator_, X).result()
    finally:
        cluster.close()

    # the candidates were fitted on the workers, deterministically: same scores as locally
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"])
    assert search.best_params_ == local.best_params_
    assert search.best_estimator_.score(X, y) == local.best_estimator_.score(X, y)
    np.testing.assert_array_equal(remote, local.best_estimator_.predict_proba(X))
    # each worker process compiled (or loaded) every kernel once; unpickling more models
    # in a second search adds no compilation
    assert len(first) == 2
    assert sum(s["signatures"] for s in first.values()) > 0
    for addr, stats in first.items():
        assert second[addr] == stats, (first, second)
