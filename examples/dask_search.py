"""Distributed model search: fastbp's scikit-learn estimators on a Dask cluster.

    python examples/dask_search.py                 # a 2-worker LocalCluster on 127.0.0.1
    python examples/dask_search.py --scheduler tcp://host:8786   # an existing cluster

``GridSearchCV`` / ``RandomizedSearchCV`` send (estimator, parameters, fold) tasks through
joblib; ``joblib.parallel_backend("dask")`` runs them on the Dask workers. Estimators are
pickled to the workers; fastbp's kernels are module-level Numba functions with an on-disk
cache, so each worker process compiles (or loads) them once, however many candidates it
fits. Needs the ``dask`` extra: ``pip install ".[dask]"``.
"""

import argparse
import time
import warnings

import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, train_test_split

from fastbp.distributed import numba_compile_stats
from fastbp.sklearn import MLPClassifier


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", help="address of a running Dask scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=60)
    p.add_argument("--random", type=int, default=0,
                   help="RandomizedSearchCV with this many candidates instead of a grid")
    args = p.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    est = MLPClassifier(max_iter=args.max_iter, random_state=0, early_stopping=True)
    if args.random:
        search = RandomizedSearchCV(
            est, {"hidden_layer_sizes": [(32,), (64,), (64, 32)],
                  "alpha": loguniform(1e-5, 1e-1), "learning_rate_init": loguniform(1e-4, 1e-1)},
            n_iter=args.random, cv=3, n_jobs=-1, random_state=0)
    else:
        search = GridSearchCV(
            est, {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2],
                  "learning_rate_init": [1e-3, 1e-2]},
            cv=3, n_jobs=-1)

    est.fit(X_train[:50], y_train[:50])  # compile here once, so workers load the disk cache

    if args.scheduler:
        cluster = None
        client = Client(args.scheduler)
    else:
        # one Numba thread per single-threaded worker process: no oversubscription
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        client = Client(cluster)
    try:
        print(f"cluster: {client}")
        t0 = time.perf_counter()
        with joblib.parallel_backend("dask"):
            search.fit(X_train, y_train)
        elapsed = time.perf_counter() - t0
        n_fits = len(search.cv_results_["params"]) * search.n_splits_
        print(f"{type(search).__name__}: {n_fits} fits in {elapsed:.1f} s on the cluster")
        print(f"best parameters: {search.best_params_}")
        print(f"best CV accuracy: {search.best_score_:.4f}, "
              f"test accuracy: {search.score(X_test, y_test):.4f}")
        for worker, stats in sorted(client.run(numba_compile_stats).items()):
            print(f"  worker {worker}: {stats['signatures']} kernel signatures, compiled "
                  f"{stats['compiled']}, loaded from the disk cache {stats['cache_loaded']}")
        ranked = np.argsort(search.cv_results_["rank_test_score"])[:3]
        for i in ranked:
            print(f"  {search.cv_results_['mean_test_score'][i]:.4f}  "
                  f"{search.cv_results_['params'][i]}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    # short max_iter for a quick demo; scikit-learn forwards this filter to the workers
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main()
