"""Repeated fit/predict does not grow memory without bound."""

import tracemalloc

import numpy as np

import fastbp
from fastbp.kernels._layout import MAX_WORKSPACES


def test_repeated_fit_predict_memory_is_bounded():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(150, 8)), rng.integers(0, 4, 150)
    m = fastbp.Model([8, 32, 4], loss="cross_entropy", seed=0)

    def cycle(i):
        m.partial_fit(X, y, batch_size=int(rng.integers(8, 64)), optimizer="adam")
        m.predict(rng.normal(size=(int(rng.integers(1, 2000)), 8)))
        k = int(rng.integers(1, 150))
        m.evaluate(X[:k], y[:k])
        m.gradient(X, y)

    for i in range(15):  # warm up: compiled specialisations, workspace sizes
        cycle(i)
    tracemalloc.start()
    try:
        cycle(0)
        base = tracemalloc.get_traced_memory()[0]
        for i in range(150):
            cycle(i)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # bounded: the workspace cache holds at most MAX_WORKSPACES workspaces (of random
    # capacities here, up to 1024 rows), and the history ~4 floats per epoch; without the
    # bound, every new capacity would keep its workspace (tens of MB over this loop)
    ws = fastbp.Workspace(m.layer_sizes, 1024, m.dtype)
    largest = 3 * (ws.act.nbytes + ws.z_out.nbytes + ws.t_buf.nbytes + ws.w_buf.nbytes)
    assert grown < MAX_WORKSPACES * largest + 100_000, grown
    assert len(m.network._workspaces) <= MAX_WORKSPACES
