"""The on-disk kernel cache is invalidated by a change in *any* module of the package."""

import os
import subprocess
import sys
import textwrap

import fastbp
from fastbp import _cache

CALLEE = "from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x + {value}\n"
CALLER = textwrap.dedent("""
    from numba import njit
    from .callee import f

    @njit(cache=True)
    def g(x):
        return f(x) * 2
""")
RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from fastbp import _cache
    _cache.install({pkg!r})
    from pkgx.caller import g
    print(g(1), sum(g.stats.cache_hits.values()))
""")


def _run(root, pkg, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = RUN.format(root=root, pkg=pkg)
    fastbp_root = os.path.dirname(os.path.dirname(fastbp.__file__))
    env["PYTHONPATH"] = fastbp_root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return int(out[0]), int(out[1])  # (result, cache hits)


def test_change_in_callee_module_invalidates_caller_cache(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "callee.py").write_text(CALLEE.format(value=1))
    (pkg / "caller.py").write_text(CALLER)
    cache = str(tmp_path / "cache")
    assert _run(str(tmp_path), str(pkg), cache) == (4, 0)  # compiled and stored
    assert _run(str(tmp_path), str(pkg), cache) == (4, 1)  # loaded from the cache
    # change only the callee's module: with per-file stamps the caller would still return 4
    (pkg / "callee.py").write_text(CALLEE.format(value=2))
    assert _run(str(tmp_path), str(pkg), cache) == (6, 0)  # recompiled
    assert _run(str(tmp_path), str(pkg), cache) == (6, 1)


def test_fastbp_kernels_use_the_package_stamp():
    from fastbp.kernels import _drivers

    locator = _drivers.train_epoch._cache._impl._locator
    assert type(locator).__name__.startswith("PackageStamped")
    pkg_dir = os.path.dirname(fastbp.__file__)
    assert locator.get_source_stamp() == _cache.package_stamp(pkg_dir)


TRAIN = textwrap.dedent("""
    import hashlib
    import numpy as np
    import fastbp
    from fastbp import optim as O

    def digests():
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 5)).astype(np.float32)
        y = rng.integers(0, 3, size=40)
        out = []
        for opt in (O.SGD(momentum=0.9, nesterov=True), O.SGD(momentum=0.5),
                    O.RMSprop(momentum=0.3, centered=True), O.Adam(), O.Adagrad()):
            m = fastbp.Model([5, 9, 3], loss="cross_entropy", seed=1, dtype="float32")
            m.fit(X, y, epochs=2, batch_size=8, optimizer=opt, learning_rate=0.05)
            out.append(hashlib.sha256(m.params.tobytes()).hexdigest()[:16])
        return out
""")


def test_kernels_loaded_from_the_cache_give_the_bits_of_freshly_compiled_ones():
    """A kernel compiled in this process and the same kernel loaded from Numba's cache by
    another process compute the same bits (no optimisation-dependent fused multiply-adds)."""
    ns = {}
    exec(TRAIN, ns)  # noqa: S102 - compiled here (or loaded: either way one side of the pair)
    here = ns["digests"]()
    code = TRAIN + "\nprint(' '.join(digests()))\n"
    fastbp_root = os.path.dirname(os.path.dirname(fastbp.__file__))
    env = dict(os.environ, PYTHONPATH=fastbp_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=600, check=True).stdout.split()
    assert here == there
