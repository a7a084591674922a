"""Concurrency: kernels release the GIL, models trained in parallel Python threads give
the same bits as trained one after another, and per-call thread counts are restored."""

import importlib
import threading

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import fastbp
from fastbp import _threads


def test_every_compiled_function_releases_the_gil():
    names = ["_activations", "_dense", "_gemm", "_network", "_updates", "_drivers"]
    found = 0
    for name in names:
        mod = importlib.import_module(f"fastbp.kernels.{name}")
        for attr, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                if obj.targetoptions.get("inline") == "always":
                    continue  # only ever inlined into the callers checked here
                found += 1
                assert obj.targetoptions.get("nogil"), f"fastbp.kernels.{name}.{attr} holds the GIL"
    assert found > 20


def test_threading_layer_is_thread_safe_or_serialised():
    layer = _threads.threading_layer()
    assert _threads.serialize_kernels() == (layer not in ("tbb", "omp"))


def _train(seed, n_threads, out, key):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(256, 64))
    y = rng.integers(0, 10, 256)
    m = fastbp.Model([64, 128, 10], loss="cross_entropy", seed=seed, dropout=0.1)
    m.fit(X, y, epochs=3, batch_size=64, learning_rate=0.05, optimizer="adam",
          n_threads=n_threads)  # 64 x 64 x 128 per layer product: the parallel path
    out[key] = (m.params.copy(), m.predict(X, n_threads=n_threads), m.history["loss"])


def test_models_trained_in_threads_equal_sequential_training():
    n_max = numba.config.NUMBA_NUM_THREADS
    jobs = [(1, 1), (2, n_max), (3, None), (4, 1)]
    seq = {}
    for seed, nt in jobs:
        _train(seed, nt, seq, seed)
    par = {}
    threads = [threading.Thread(target=_train, args=(seed, nt, par, seed)) for seed, nt in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(par) == sorted(seq)
    for k in seq:
        for a, b in zip(seq[k], par[k]):
            np.testing.assert_array_equal(a, b)


def test_one_model_shared_by_threads_is_not_corrupted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 64))
    m = fastbp.Model([64, 128, 10], loss="cross_entropy", seed=0)
    expected = m.predict(X)
    errors = []

    def work():
        for _ in range(5):
            if not np.array_equal(m.predict(X), expected):
                errors.append("predict differs")
            m.gradient(X[:50], rng.integers(0, 10, 50) * 0)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_n_threads_is_applied_and_restored_even_on_error():
    before = numba.get_num_threads()
    seen = []
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    m = fastbp.Model([3, 1], seed=0)

    def cb(epoch, logs):
        seen.append(numba.get_num_threads())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m.fit(X, y, epochs=2, n_threads=1, callbacks=[cb])
    assert seen == [1] and numba.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        m.predict(X, n_threads=numba.config.NUMBA_NUM_THREADS + 1)
    with pytest.raises(TypeError, match="n_threads"):
        m.fit(X, y, n_threads=1.5)
    assert numba.get_num_threads() == before and m.history.epochs == 0  # raised: no trace


WORKQUEUE_SCRIPT = """
import threading
import numpy as np
import fastbp
from fastbp import _threads

def train(seed, out):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(256, 64)), rng.integers(0, 10, 256)
    m = fastbp.Model([64, 128, 10], loss="cross_entropy", seed=seed)
    m.fit(X, y, epochs=2, batch_size=64)
    out[seed] = m.params.copy()

seq, par = {}, {}
for s in range(3):
    train(s, seq)
ts = [threading.Thread(target=train, args=(s, par)) for s in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(_threads.threading_layer(), _threads.serialize_kernels(),
      all(np.array_equal(seq[s], par[s]) for s in range(3)))
"""


def test_workqueue_layer_is_serialised_instead_of_aborting():
    """workqueue aborts the process on concurrent parallel launches; fastbp takes turns."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastbp.__file__)), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", WORKQUEUE_SCRIPT], env=env, text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["workqueue", "True", "True"], res.stdout


# ---------------------------------------------------------------- workers' share of the cores
def _cores():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.fixture
def no_thread_env(monkeypatch):
    for var in ("OMP_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_worker_threads_follow_the_environment(no_thread_env):
    monkeypatch = no_thread_env
    assert _threads.worker_threads() is None  # a plain process: Numba's own count
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as joblib's and Dask's processes set it
    assert _threads.worker_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", str(10**6))
    assert _threads.worker_threads() == numba.config.NUMBA_NUM_THREADS  # never above it


def test_worker_threads_in_joblib_workers(no_thread_env):
    joblib = pytest.importorskip("joblib")
    # thread workers share this process's cores with an unknown number of others
    got = joblib.Parallel(n_jobs=2, backend="threading")(
        joblib.delayed(_threads.worker_threads)() for _ in range(2))
    assert got == [1, 1]
    # process workers (loky) get OMP_NUM_THREADS = their share of the cores from joblib
    got = joblib.Parallel(n_jobs=2)(joblib.delayed(_threads.worker_threads)() for _ in range(2))
    share = max(1, joblib.cpu_count() // 2)
    assert got == [min(share, numba.config.NUMBA_NUM_THREADS)] * 2


def test_worker_threads_in_a_dask_worker(no_thread_env):
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            got = client.submit(_threads.worker_threads, pure=False).result()
    finally:
        cluster.close()
    assert got == min(max(1, _cores() // 2), numba.config.NUMBA_NUM_THREADS)
