"""fastbp in processes forked from one that imported it and trained a model (the default
start method of ``multiprocessing`` on Linux): the children train and predict, and give the
parent's results, bit for bit. Each case runs in a fresh interpreter, with a timeout, so that
a child that dies or hangs fails the test instead of blocking the suite."""

import os
import subprocess
import sys
import textwrap

import pytest

import fastbp

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np
    import fastbp
    from fastbp import _threads

    import fastbp.kernels as K

    def job(seed):
        rng = np.random.default_rng(seed)
        X, y = rng.normal(size=(256, 64)), rng.integers(0, 10, 256)
        # 64 x 64 x 128 per layer product: the kernels' parallel path
        m = fastbp.Model([64, 128, 10], loss="cross_entropy", seed=seed)
        m.fit(X, y, epochs=2, batch_size=64, learning_rate=0.05, optimizer="adam")
        # a public kernel called directly, as users' code does (not through Model)
        k, ws = m.kernel_args(), m.allocate_workspace(256)
        X32 = X.astype(np.float32)
        T = np.eye(10, dtype=np.float32)[y]
        value = K.loss_and_gradient(X32, T, k, ws)
        return m.params.copy(), m.predict(X), np.array([value]), k.grads.copy()

    if __name__ == "__main__":
        parent = [job(s) for s in (1, 2, 3)]  # the parent has trained: its layer is running
        print("layer", _threads.threading_layer(), flush=True)
        with mp.get_context("fork").Pool(2) as pool:
            try:
                children = pool.map_async(job, [1, 2, 3]).get(timeout=120)
            except mp.TimeoutError:
                print("TIMEOUT: a forked child died or hung", flush=True)
                raise SystemExit(3)
        same = all(np.array_equal(a, b) for p, c in zip(parent, children)
                   for a, b in zip(p, c))
        print("same" if same else "DIFFERENT", flush=True)
""")


def _run(layer=None):
    env = dict(os.environ)
    for name in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"):
        env.pop(name, None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastbp.__file__)), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, text=True,
                          capture_output=True, timeout=400)


@pytest.mark.parametrize("layer", [None, "omp"], ids=["default-layer", "omp"])
def test_fork_pool_trains_after_the_parent_trained(layer):
    """Numba's usual layer on Linux is GNU OpenMP, which Numba refuses in a forked child
    (and which would hang there once the parent ran parallel regions): fastbp runs the
    child's calls on one thread instead (the kernels' serial paths), with the same results,
    also for a kernel called directly rather than through Model."""
    res = _run(layer)
    out = res.stdout + res.stderr[-3000:]
    if layer is not None and f"layer {layer}" not in res.stdout and res.returncode != 0:
        pytest.skip(f"the {layer} threading layer is not available here: {out[-500:]}")
    assert res.returncode == 0, out
    assert "same" in res.stdout.split(), out
