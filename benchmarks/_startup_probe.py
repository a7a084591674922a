"""Seconds of ``import`` + first fit in this (fresh) process: ``python _startup_probe.py
fastbp|jax`` prints them. ``_measure.measure_startup`` runs it with an empty and then a
filled compile cache (``NUMBA_CACHE_DIR``; JAX: the directory in ``FASTBP_JAX_CACHE``).

What is timed is the import of the library and the first training epoch of a small network,
compilation included; making the data is not timed."""

import time

t0 = time.perf_counter()  # before anything of the library is imported

import os  # noqa: E402
import sys  # noqa: E402


def fastbp_first_fit(t0: float) -> float:
    import fastbp

    t1 = time.perf_counter()
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50000, 64), dtype=np.float32)
    y = rng.integers(0, 10, 50000)
    t2 = time.perf_counter()
    m = fastbp.Model([64, 32, 10], loss="cross_entropy", seed=0)
    m.fit(X, y, batch_size=32, learning_rate=0.01, shuffle=False)
    return (t1 - t0) + (time.perf_counter() - t2)


def jax_first_fit(t0: float) -> float:
    import jax

    cache = os.environ.get("FASTBP_JAX_CACHE")
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    t1 = time.perf_counter()
    from _workloads import WORKLOADS, JaxRunner, make_data

    w = WORKLOADS["small"]
    X, y = make_data(w)
    t2 = time.perf_counter()
    JaxRunner(w, X, y).epoch()
    return (t1 - t0) + (time.perf_counter() - t2)


if __name__ == "__main__":
    print({"fastbp": fastbp_first_fit, "jax": jax_first_fit}[sys.argv[1]](t0))
