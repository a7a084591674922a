"""fastbp's compile cache: invalidated by a change in *any* module of the package, never
fatal when no directory is writable, read from a warm read-only install, and announced."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastbp
from fastbp.kernels import _cache

JIT = "import os\nfrom fastbp.kernels._cache import jit_for_package\n" \
    "njit = jit_for_package(os.path.dirname(__file__))\n"
CALLEE = JIT + "\n@njit(cache=True)\ndef f(x):\n    return x + {value}\n"
CALLER = JIT + textwrap.dedent("""
    from .callee import f

    @njit(cache=True, entry=True)
    def g(x):
        return f(x) * 2
""")
RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from pkgx.caller import g
    print(g(1), sum(g.stats.cache_hits.values()))
""")


def _run(root, pkg, cache_dir):
    out = _child(RUN.format(root=root), {"NUMBA_CACHE_DIR": cache_dir}).stdout.split()
    return int(out[0]), int(out[1])  # (result, cache hits)


def test_change_in_callee_module_invalidates_caller_cache(tmp_path):
    pkg = _pkgx(tmp_path)
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


REFUSE = textwrap.dedent("""
    # every cache directory refuses writes (read-only site-packages, home and cache dir)
    from numba.core import caching
    def refuse(self):
        raise PermissionError(13, "Read-only file system", self.get_cache_path())
    caching._CacheLocator.ensure_cache_path = refuse
""")


def _child(code, env_extra=None, cwd=None, timeout=300):
    fastbp_root = os.path.dirname(os.path.dirname(fastbp.__file__))
    env = dict(os.environ, PYTHONPATH=fastbp_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("FASTBP_COMPILE_NOTICE", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout, check=True, cwd=cwd)


def test_no_writable_cache_location_compiles_in_memory_and_says_so(tmp_path):
    """Numba alone raises "cannot cache function ...: no locator available" at import."""
    cache = tmp_path / "cache"
    code = REFUSE + textwrap.dedent("""
        # and no __pycache__ holds kernels (a read-only one would be loaded from)
        caching.InTreeCacheLocator.get_cache_path = lambda self: "/nonexistent/__pycache__"
        import numpy as np
        import fastbp
        from fastbp import kernels as K
        g = np.arange(5, dtype=np.float32)
        print(K.grad_norm(g), K.grad_norm(2 * g))
    """)
    r = _child(code, {"NUMBA_CACHE_DIR": str(cache)})
    assert [float(v) for v in r.stdout.split()] == [30 ** 0.5, 2 * 30 ** 0.5]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("fastbp:")]
    assert len(lines) == 1, r.stderr  # once per dtype, not once per function
    assert "kernels for float32 in memory" in lines[0]
    assert "NUMBA_CACHE_DIR" in lines[0]
    assert not cache.exists() or not any(cache.rglob("*.nb*"))


def _pkgx(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "callee.py").write_text(CALLEE.format(value=1))
    (pkg / "caller.py").write_text(CALLER)
    return pkg


def test_notice_once_when_compiling_silent_when_warm(tmp_path):
    _pkgx(tmp_path)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cold = _child(RUN.format(root=str(tmp_path)), env)
    assert cold.stdout.split() == ["4", "0"]
    notices = [ln for ln in cold.stderr.splitlines() if ln.startswith("fastbp:")]
    assert notices == [f"fastbp: compiling kernels, once; cached in {tmp_path / 'cache'} "
                       "(`python -m fastbp warmup` compiles ahead of time)."], cold.stderr
    warm = _child(RUN.format(root=str(tmp_path)), env)
    assert warm.stdout.split() == ["4", "1"] and warm.stderr == ""
    quiet = _child(RUN.format(root=str(tmp_path)),
                   {"NUMBA_CACHE_DIR": str(tmp_path / "other"), "FASTBP_COMPILE_NOTICE": "0"})
    assert quiet.stdout.split() == ["4", "0"] and quiet.stderr == ""


def test_warm_read_only_install_is_loaded_not_recompiled(tmp_path):
    """A read-only ``__pycache__`` that holds this version's kernels (an image built with a
    warm cache) is read from instead of compiling everything again into the user cache."""
    pkg = _pkgx(tmp_path)
    env = {"NUMBA_CACHE_DIR": "", "HOME": str(tmp_path / "home")}
    first = _child(RUN.format(root=str(tmp_path)), env)  # fills pkgx/__pycache__
    assert first.stdout.split() == ["4", "0"]
    assert any((pkg / "__pycache__").glob("caller.g-*.nbi"))
    ro = _child(REFUSE + RUN.format(root=str(tmp_path)), env)
    assert ro.stdout.split() == ["4", "1"] and "fastbp:" not in ro.stderr
    # a stale read-only cache (the source changed) is not used: compiled in memory
    (pkg / "callee.py").write_text(CALLEE.format(value=2))
    stale = _child(REFUSE + RUN.format(root=str(tmp_path)), env)
    assert stale.stdout.split() == ["6", "0"] and "in memory" in stale.stderr


REFUSE_TREE = textwrap.dedent("""
    # every __pycache__ refuses writes (a read-only image); the user cache is writable
    from numba.core import caching
    _ensure = caching._CacheLocator.ensure_cache_path
    def refuse(self):
        if self.get_cache_path().endswith("__pycache__"):
            raise PermissionError(13, "Read-only file system", self.get_cache_path())
        return _ensure(self)
    caching._CacheLocator.ensure_cache_path = refuse
""")
RUN_TWO = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from pkgx.caller import g
    values = g(1), g(1.5)
    hits = {{str(sig[0]): n for sig, n in g.stats.cache_hits.items()}}
    print(*values, hits.get("int64", 0), hits.get("float64", 0))
""")


def test_a_signature_missing_from_a_read_only_cache_is_saved_in_the_user_cache(tmp_path):
    """A read-only ``__pycache__`` that holds ``g(int)`` only (an image warmed for other
    inputs or another CPU): ``g(float)`` is compiled once into the user cache, the notice
    names that cache, and the next process loads it from there."""
    pkg = _pkgx(tmp_path)
    home = tmp_path / "home"
    user_cache = home / ".cache" / "numba"
    env = {"NUMBA_CACHE_DIR": "", "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    assert _child(RUN.format(root=str(tmp_path)), env).stdout.split() == ["4", "0"]
    image = sorted(p.name for p in (pkg / "__pycache__").glob("*.nb*"))
    code = REFUSE_TREE + RUN_TWO.format(root=str(tmp_path))
    first = _child(code, env)
    assert first.stdout.split() == ["4", "5.0", "1", "0"]  # int loaded, float compiled
    notices = [ln for ln in first.stderr.splitlines() if ln.startswith("fastbp:")]
    assert notices == [f"fastbp: compiling kernels, once; cached in {user_cache} "
                       "(`python -m fastbp warmup` compiles ahead of time)."], first.stderr
    assert sorted(p.name for p in (pkg / "__pycache__").glob("*.nb*")) == image
    assert any(user_cache.rglob("caller.g-*.nbi"))
    second = _child(code, env)
    assert second.stdout.split() == ["4", "5.0", "1", "1"]  # both loaded, none compiled
    assert second.stderr == ""


def _damage(path, how):
    if how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # zeroed
        path.write_bytes(bytes(path.stat().st_size))


@pytest.mark.parametrize("kind, how", [("nbi", "empty"), ("nbi", "zeroed"),
                                       ("nbc", "truncated"), ("nbc", "zeroed"),
                                       ("nbi", "fifo")])
def test_an_unreadable_cache_file_is_a_miss_said_once_and_replaced(tmp_path, kind, how):
    """Numba alone raises ``EOFError`` / ``UnpicklingError`` from every later call (and
    blocks forever on a FIFO) until the file is deleted by hand."""
    if how == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    _pkgx(tmp_path)
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    run = RUN.format(root=str(tmp_path))
    assert _child(run, env).stdout.split() == ["4", "0"]
    (bad,) = cache.rglob(f"caller.g-*.{kind}")
    _damage(bad, how)
    again = _child(run, env, timeout=120)
    assert again.stdout.split() == ["4", "0"]  # a miss: compiled again
    said = [ln for ln in again.stderr.splitlines() if "ignoring the unreadable" in ln]
    assert len(said) == 1 and str(bad) in said[0], again.stderr
    healed = _child(run, env)  # the entry was replaced: loaded, nothing said
    assert healed.stdout.split() == ["4", "1"] and healed.stderr == ""


def test_an_internal_kernel_from_python_is_a_clear_error_and_runs_from_compiled_code():
    """Internal kernels have no Python entry point (``njit`` without ``entry``): a call from
    Python is a ``TypeError`` naming the kernel, never a jump into the missing wrapper."""
    from compiled import from_python

    from fastbp.kernels import _gemm

    with pytest.raises(TypeError, match=r"_gemm\.mc_rows is an internal compiled kernel"):
        _gemm.mc_rows(4, True)
    assert from_python(_gemm.mc_rows)(4, True) == from_python(_gemm.mc_rows)(np.int64(4),
                                                                           True) > 0


_LINKED = JIT + textwrap.dedent("""
    import numpy as np

    @njit(cache=True)
    def f(x):  # internal, called only from compiled code: linked into callers
        return np.sqrt(x) + 1.0

    @njit(cache=True, optimised_by_callers=True)
    def h(x):
        return x * 3.0

    @njit(cache=True, entry=True)
    def g(x):
        return f(x) + h(x)

    @njit(cache=True, entry=True)
    def g2(x):
        return f(x) - h(x)
""")
_LINKED_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from pkgl.mod import f, g, g2, h
    print(g(4.0), g2(4.0), sum(g.stats.cache_hits.values()),
          *(type(k.overloads[s].library).__name__ for k in (f, h) for s in k.overloads))
""")


def test_an_internal_kernel_is_compiled_only_into_its_callers(tmp_path):
    """An internal kernel that is not a flat kernel is only ever linked into callers: it
    is lowered and optimised (``optimised_by_callers``: only in its callers' modules) but
    gets no machine code and no cache entry of its own; its cached callers, which hold its
    code, run from a new process, and a process that compiles a new caller compiles it
    again."""
    pkg = tmp_path / "pkgl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(_LINKED)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    run = _LINKED_RUN.format(root=str(tmp_path))
    cold = _child(run, env).stdout.split()
    assert cold == ["15.0", "-9.0", "0", "_LinkOnlyLibrary", "_CallerOptimisedLibrary"]
    saved = [n for _, _, names in os.walk(tmp_path / "cache") for n in names]
    assert not any(".f-" in n or ".h-" in n for n in saved), saved  # no entries of their own
    assert any(".g-" in n for n in saved) and any(".g2-" in n for n in saved), saved
    # the callers loaded, with the callees' code inside: nothing compiled
    assert _child(run, env).stdout.split() == ["15.0", "-9.0", "1"]
    # a new caller in a later process compiles the callee again, link-only
    new_caller = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numba
        from pkgl.mod import f
        print(numba.njit(lambda x: f(x) * 2.0)(9.0),
              *(type(f.overloads[s].library).__name__ for s in f.overloads))
    """)
    assert _child(new_caller, env).stdout.split() == ["8.0", "_LinkOnlyLibrary"]


_SAVER = """
import os, sys, time
from fastbp.kernels import _cache
cache_dir, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
f = _cache.CacheFile(cache_dir, "fn", "stamp")
while not os.path.exists(go):  # both savers start together
    time.sleep(0.001)
for i in range(n):
    f.save((tag, i), {"who": tag, "i": i, "pad": bytes(2000)})
"""


@pytest.mark.skipif(_cache.fcntl is None, reason="the cross-process lock needs fcntl (POSIX)")
def test_two_processes_saving_one_index_at_once_keep_every_entry(tmp_path):
    """``python -m fastbp warmup`` compiles the dtypes in parallel processes, which save
    overloads of the same functions at once: each entry must keep its own data file (the
    save is serialised across processes by a lock file beside the index)."""
    n, go = 40, tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path), tag, str(n),
                               str(go)]) for tag in ("float32", "float64")]
    time.sleep(1.0)  # (both imported and waiting)
    go.touch()
    for p in procs:
        assert p.wait(120) == 0
    f = _cache.CacheFile(str(tmp_path), "fn", "stamp")
    for tag in ("float32", "float64"):
        for i in range(n):
            assert f.load((tag, i)) == {"who": tag, "i": i, "pad": bytes(2000)}, (tag, i)


def test_compiling_raises_the_collector_thresholds_and_restores_them(tmp_path):
    """A compile runs with fewer cyclic collections (``few_collections``); the thresholds
    a user set are back when it ends, and higher ones are never lowered."""
    _pkgx(tmp_path)
    code = textwrap.dedent(f"""
        import gc, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from fastbp.kernels import _cache
        seen = []
        old = _cache.Cache.load_overload

        def spy(self, sig, ctx):  # runs inside the compile
            seen.append(gc.get_threshold())
            return old(self, sig, ctx)

        _cache.Cache.load_overload = spy
        from pkgx.caller import g
        gc.set_threshold(700, 10, 10)
        print(g(1), gc.get_threshold(), seen[0])
        gc.set_threshold(10**6, 5, 10)
        print(g(1.5), gc.get_threshold(), seen[-1])
    """)
    out = _child(code, {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}).stdout.splitlines()
    assert out[0] == "4 (700, 10, 10) (50000, 20, 100)"
    assert out[1] == "5.0 (1000000, 5, 10) (1000000, 20, 100)"
