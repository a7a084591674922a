"""After a model's first fit and predict, its ordinary path compiles nothing more.

``evaluate``, ``loss_value``, ``gradient``, validation during ``fit``, weighted evaluation
and ``predict`` on another number of rows all run kernels that the first fit and predict
already compiled (or loaded from the cache) for the model's dtype: the dense passes share
one driver, ``data_pass``, called with one argument type per dtype.
"""

import os
import subprocess
import sys
import textwrap

import fastbp

ROOT = os.path.dirname(os.path.dirname(fastbp.__file__))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

CODE = textwrap.dedent("""
    import sys, numpy as np, numba, fastbp
    from numba.core.registry import CPUDispatcher

    def compiled():
        # every fastbp dispatcher (flat kernels included) and its compiled signatures
        out = {}
        for name, mod in list(sys.modules.items()):
            if name.startswith("fastbp"):
                for attr, d in vars(mod).items():
                    if isinstance(d, CPUDispatcher):
                        out[name + "." + attr] = len(d.overloads)
        return out

    dtype, loss, single = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(dtype)
    y = rng.integers(0, 3, size=64) if loss == "cross_entropy" else rng.normal(size=(64, 3))
    m = fastbp.Model([5, 4, 3], loss=loss, seed=0, dtype=dtype)
    m.fit(X, y, epochs=1, batch_size=1 if single else 8)
    m.predict(X)
    before = compiled()
    m.evaluate(X, y)
    m.evaluate(X, y, sample_weight=np.linspace(0.5, 2, 64))
    m.loss_value(X[:7], y[:7])
    m.gradient(X, y)
    m.gradient(X, y, sample_weight=np.ones(64))
    m.predict(X[:3])
    m.fit(X, y, epochs=1, batch_size=16, validation_data=(X[:10], y[:10]))
    after = compiled()
    new = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    print("NEW", new)
""")


def _new_compiles(*args):
    r = subprocess.run([sys.executable, "-c", CODE, *args], env=ENV, capture_output=True,
                       text=True, timeout=600, check=True)
    return r.stdout.split("NEW", 1)[1].strip()


def test_nothing_compiles_after_the_first_fit_and_predict():
    assert _new_compiles("float32", "cross_entropy", "0") == "{}"


def test_nor_after_an_online_fit_of_a_regression_in_float64():
    assert _new_compiles("float64", "squared_error", "1") == "{}"
