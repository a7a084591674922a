"""``python -m fastbp warmup`` / ``fastbp.warmup`` fill the compile cache for later processes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import fastbp
from fastbp import _warmup

ROOT = os.path.dirname(os.path.dirname(fastbp.__file__))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_warmup_fills_the_cache_a_new_process_then_loads_from():
    seconds = fastbp.warmup(["float32"], estimators=False, sparse=False, jobs=1, quiet=True)
    assert list(seconds) == ["float32"] and seconds["float32"] > 0
    code = textwrap.dedent("""
        import numpy as np
        import fastbp
        from fastbp.kernels import _drivers
        X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
        m = fastbp.Model([3, 4, 2], loss="cross_entropy", activation="tanh", seed=1)
        m.fit(X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=4, optimizer="adam")
        m.predict(X)
        print(sum(_drivers.train_steps.stats.cache_hits.values()),
              sum(_drivers.train_steps.stats.cache_misses.values()))
    """)
    r = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                       timeout=300, check=True)
    assert r.stdout.split() == ["1", "0"]  # loaded, another activation and optimizer included
    assert "fastbp: compiling" not in r.stderr


def test_command_line(capsys):
    r = subprocess.run([sys.executable, "-m", "fastbp", "warmup", "--dtypes", "float32",
                        "--no-estimators", "--no-sparse", "--jobs", "1"], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "fastbp warmup: float32 ready in" in r.stderr
    bad = subprocess.run([sys.executable, "-m", "fastbp", "warmup", "--dtypes", "float16"],
                         env=ENV, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "float16" in bad.stderr


@pytest.mark.parametrize("kw, match", [
    ({"dtypes": ["float16"]}, "dtypes must be"),
    ({"dtypes": []}, "dtypes must be"),
    ({"jobs": 0}, "jobs must be"),
    ({"jobs": 1.5}, "jobs must be"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        fastbp.warmup(**kw)


def test_a_failing_compile_process_raises_with_its_error(monkeypatch):
    monkeypatch.setattr(_warmup, "_CHILD", "raise SystemExit('boom {dtype} {estimators}')")
    with pytest.raises(RuntimeError, match="boom float64 True"):
        fastbp.warmup(["float64"], quiet=True)


NOWHERE = textwrap.dedent("""
    # no writable cache directory (read-only site-packages and home, no NUMBA_CACHE_DIR)
    # and no warm read-only one
    from numba.core import caching
    def refuse(self):
        raise PermissionError(13, "Read-only file system", self.get_cache_path())
    caching._CacheLocator.ensure_cache_path = refuse
    caching.InTreeCacheLocator.get_cache_path = lambda self: "/nonexistent/__pycache__"
""")


def test_warmup_fails_when_nothing_can_be_cached():
    """It used to compile everything in memory, print "ready" and exit 0."""
    code = textwrap.dedent("""
        import sys
        from fastbp import _warmup
        _warmup._CHILD = PATCH + "from fastbp._warmup import compile_dtype; " \\
            "compile_dtype({dtype!r}, False)"
        sys.exit(_warmup.main(["warmup", "--dtypes", "float32"]))
    """).replace("PATCH", repr(NOWHERE))
    r = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 1, r.stderr
    assert "ready" not in r.stderr
    assert "nothing can be cached" in r.stderr and "NUMBA_CACHE_DIR" in r.stderr, r.stderr


def test_warmup_fails_when_a_save_fails(tmp_path, monkeypatch):
    """A full disk: the compiled kernels are kept for the process but not saved, so the
    warm-up fails and says why."""
    patch = textwrap.dedent("""
        import errno
        import numpy as np
        from numba.core import caching
        def full(self, name, data):
            raise OSError(errno.ENOSPC, "No space left on device", self._cache_path)
        caching.IndexDataCacheFile._save_data = full
        import fastbp._warmup as w
        from fastbp import kernels as K
        w._workload = lambda *args: K.grad_norm(np.ones(3, np.float32))  # one small kernel
    """)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_warmup, "_CHILD", patch + "w.compile_dtype({dtype!r}, False)")
    with pytest.raises(RuntimeError, match="could not be saved .*No space left on device.*"
                                           "NUMBA_CACHE_DIR"):
        fastbp.warmup(["float32"], quiet=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stopping_warmup_stops_its_compile_processes(tmp_path, sig):
    child = (f"import os, time; open({str(tmp_path)!r} + os.sep + str(os.getpid()), 'w')"
             ".close(); time.sleep(300)")
    code = (f"import sys\nfrom fastbp import _warmup\n_warmup._CHILD = {child!r}\n"
            "sys.exit(_warmup.main(['warmup', '--jobs', '2']))\n")
    parent = subprocess.Popen([sys.executable, "-c", code], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids = []
    try:
        deadline = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
            pids = [int(p.name) for p in tmp_path.iterdir()]
        assert len(pids) == 2, parent.communicate(timeout=10)
        parent.send_signal(getattr(signal, sig))
        _, err = parent.communicate(timeout=60)

        def alive(pid):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return True

        assert not [pid for pid in pids if alive(pid)], err  # they used to compile on
        assert parent.returncode == 128 + getattr(signal, sig), err
        assert "compile processes were stopped" in err
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in pids:  # the compile processes this test started, if any survived
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
