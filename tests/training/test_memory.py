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


def _memmaps(tmp_path, n, f, seed=0):
    """A float32 ``X`` (n, f) and targets ``y`` (n,) written to .npy files, opened read-only
    as memory maps (``np.load(..., mmap_mode="r")``), as data bigger than memory would be."""
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, (n, f))
    y = np.lib.format.open_memmap(tmp_path / "y.npy", "w+", np.float32, (n,))
    for i in range(0, n, 25_000):
        X[i:i + 25_000] = rng.standard_normal((min(25_000, n - i), f), dtype=np.float32)
        y[i:i + 25_000] = X[i:i + 25_000, 0] - 0.5 * X[i:i + 25_000, 1]
    X.flush()
    y.flush()
    del X, y
    return (np.load(tmp_path / "X.npy", mmap_mode="r"),
            np.load(tmp_path / "y.npy", mmap_mode="r"))


def test_fit_and_predict_read_a_memmap_in_place(tmp_path):
    """Peak traced allocation of fit + predict on a memory-mapped X: the row order (8 bytes
    a row, and as much again while it is reshuffled), the predictions (4 bytes a row), a
    bounded finiteness-check mask and predict's chunk workspace (fixed size); never a copy
    of X (256 bytes a row here) or a mask of its size (np.isfinite over the whole array
    took 0.25x X)."""
    mask = 1 << 20  # a bounded finiteness-check mask (fastbp._validation.arrays.FINITE_BLOCK)
    n, f = 100_000, 64
    X, y = _memmaps(tmp_path, n, f)
    assert not X.flags.writeable  # read-only, as a training file is opened
    m = fastbp.Model([f, 16, 1], seed=0)
    m.fit(X[:500], y[:500], batch_size=64)  # compiled code and the batch workspace
    tracemalloc.start()
    try:
        m.fit(X, y, epochs=1, batch_size=64)
        out = m.predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (n, 1) and np.isfinite(out).all()
    ws = fastbp.Workspace(m.layer_sizes, m.network.chunk_rows, m.dtype)
    fixed = sum(a.nbytes for a in (ws.act, ws.delta, ws.z_out, ws.t_buf, ws.w_buf))
    per_row = 16 * n + out.nbytes
    assert peak <= per_row + mask + fixed + 256 * 1024, (peak, per_row, fixed)
    # what grows with the data: 0.08x X here (a million rows: 0.06x X in all, fixed parts
    # included, for fit + predict)
    assert peak - fixed - mask < 0.1 * X.nbytes, peak / X.nbytes


def test_read_only_inputs_compile_nothing_new():
    """A read-only array is a distinct type to Numba; fastbp gives its kernels an alias of
    the same memory, so a read-only memmap (or pandas' copy-on-write arrays) costs no second
    compilation of every kernel."""
    import numba

    from fastbp.kernels import _dense, _drivers, _network, _sparse

    def signatures():
        return {f"{mod.__name__}.{k}": len(v.signatures)
                for mod in (_drivers, _network, _dense, _sparse)
                for k, v in vars(mod).items() if isinstance(v, numba.core.registry.CPUDispatcher)}

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = rng.normal(size=300).astype(np.float32)

    def use(X, y):
        m = fastbp.Model([8, 4, 1], seed=0)
        m.fit(X, y, epochs=2, validation_data=(X, y), sample_weight=np.abs(y))
        m.predict(X)
        m.evaluate(X, y)
        m.gradient(X, y)
        return m

    writable = use(X, y)
    before = signatures()
    X.flags.writeable = y.flags.writeable = False
    read_only = use(X, y)
    after = signatures()
    assert {k: (before[k], v) for k, v in after.items() if v != before.get(k)} == {}
    np.testing.assert_array_equal(read_only.params, writable.params)
    assert not X.flags.writeable  # the user's array is left as it was
