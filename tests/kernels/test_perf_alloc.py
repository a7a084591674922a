"""No allocation per training step: the Numba runtime's allocation count of a ``fit`` call
must not grow with the number of steps.

``NUMBA_NRT_STATS`` must be set before Numba is imported, so the measurement runs in a fresh
subprocess. Layer sizes cover both the serial kernels (tiny, online) and the tiled parallel
ones (every product >= ``PARALLEL_MIN_WORK``, and the sparse case's optimizer update, on all
of Numba's threads even on a loaded machine).

``fit`` runs an epoch as compiled calls of about ``fastbp._training.loop.CALL_SECONDS`` each (so
Ctrl-C is honoured promptly); every call from Python unboxes its array arguments, which
Numba counts as allocations. The number of calls depends on the machine's speed, so the
measurement pins one call per epoch: what remains can only grow with the steps.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import json, sys
import numba
import numpy as np
from numba.core.runtime import rtsys
import fastbp
from fastbp.kernels import _dense

sizes, batch, loss, sparse = json.loads(sys.argv[1])
few, many = 3, 30  # steps per fit
rng = np.random.default_rng(0)
n = many * batch
X = rng.standard_normal((n, sizes[0])).astype(np.float32)
if sparse:  # CSR rows read through the epoch order: no per-step gathering either
    import scipy.sparse
    X = scipy.sparse.random(n, sizes[0], density=0.05, format="csr", dtype=np.float32,
                            random_state=0)
y = rng.standard_normal((n, sizes[-1])).astype(np.float32) if loss == "squared_error" \
    else rng.integers(0, sizes[-1], n)
fastbp._training.loop.CALL_SECONDS = 1e9  # one compiled call per epoch, whatever the machine load
# every thread, whatever the load (with the default, a busy machine runs the serial paths)
threads = numba.config.NUMBA_NUM_THREADS
m = fastbp.Model(sizes, loss=loss, seed=0)
m.fit(X[: few * batch], y[: few * batch], batch_size=batch, n_threads=threads)  # compile

def allocs(k):
    before = rtsys.get_allocation_stats()
    m.fit(X[: k * batch], y[: k * batch], batch_size=batch, shuffle=False, n_threads=threads)
    after = rtsys.get_allocation_stats()
    return after.alloc - before.alloc, after.free - before.free

a_few, f_few = allocs(few)
a_many, f_many = allocs(many)
big = sizes[0] * sizes[1] * batch >= _dense.PARALLEL_MIN_WORK
print(json.dumps({"few": a_few, "many": a_many, "free_few": f_few, "free_many": f_many,
                  "parallel": big}))
"""


@pytest.mark.parametrize(
    "sizes,batch,loss,sparse",
    [
        ([16, 32, 1], 1, "squared_error", False),  # tiny, online: serial kernels
        ([64, 32, 10], 32, "cross_entropy", False),  # small: serial kernels
        ([64, 128, 96, 10], 64, "cross_entropy", False),  # tiled parallel kernels
        ([2000, 128, 96, 10], 64, "cross_entropy", True),  # CSR first layer, parallel above
    ],
)
def test_fit_allocations_do_not_grow_with_steps(sizes, batch, loss, sparse):
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([sizes, batch, loss, sparse])],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["parallel"] == (sizes[1] == 128) or sparse
    # the same (small, constant) number of allocations for 3 and for 30 steps
    assert res["many"] == res["few"], res
    assert res["free_many"] == res["free_few"], res
