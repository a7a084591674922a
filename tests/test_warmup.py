"""``python -m fastbp warmup`` / ``fastbp.warmup`` fill the compile cache for later processes."""

import os
import subprocess
import sys
import textwrap

import pytest

import fastbp
from fastbp import _warmup

ROOT = os.path.dirname(os.path.dirname(fastbp.__file__))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_warmup_fills_the_cache_a_new_process_then_loads_from():
    seconds = fastbp.warmup(["float32"], estimators=False, jobs=1, quiet=True)
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
                        "--no-estimators", "--jobs", "1"], env=ENV, capture_output=True,
                       text=True, timeout=300)
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
