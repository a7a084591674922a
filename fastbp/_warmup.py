"""Fill the compile cache ahead of time: ``python -m fastbp warmup`` and ``fastbp.warmup``.

Each dtype compiles in its own process (they share no machine code), so ``jobs`` processes
work at once; within a process the drivers link the kernels it compiled first. The work is
what users run -- ``Model.fit`` (mini-batch and L-BFGS, with validation data), ``predict``,
``evaluate``, ``gradient`` and the scikit-learn estimators -- on a few rows, so the cache
ends up holding exactly the compiled code their first calls need. Kernels are compiled per
dtype only (activation, loss and optimizer are run-time codes), so one warm-up covers every
configuration of that dtype.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

DTYPES = ("float32", "float64")

_CHILD = "from fastbp._warmup import compile_dtype; compile_dtype({dtype!r}, {estimators!r})"


def compile_dtype(dtype: str, estimators: bool = True) -> None:
    """Compile (or load) every kernel a ``dtype`` model and estimator uses, in this process."""
    import numpy as np

    from .model import Model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 4)).astype(dtype)
    y = rng.integers(0, 3, size=24)
    m = Model([4, 5, 3], loss="cross_entropy", dtype=dtype, seed=0)
    m.fit(X, y, epochs=1, batch_size=8, validation_data=(X, y))
    m.fit(X, y, epochs=1, optimizer="lbfgs")
    m.predict(X)
    m.evaluate(X, y)
    m.gradient(X, y, l2=1e-3)
    if estimators:
        import warnings

        try:
            from .sklearn import MLPClassifier, MLPRegressor
        except ImportError:  # scikit-learn is not installed: nothing of theirs to compile
            return

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # too few iterations to converge, on purpose
            for est in (MLPClassifier(hidden_layer_sizes=(5,), max_iter=2),
                        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2)):
                target = y if isinstance(est, MLPClassifier) else X[:, 0]
                est.fit(X, target).predict(X)


def warmup(dtypes: Sequence[str] = DTYPES, *, estimators: bool = True,
           jobs: int | None = None, quiet: bool = False) -> dict:
    """Compile fastbp's kernels into the on-disk cache before the first fit needs them.

    For Docker images and clusters: run it once where the cache will live (the image's
    site-packages, or ``NUMBA_CACHE_DIR``) so that users' first fits start in about a second.
    Kernels already in the cache are loaded, not recompiled, so a second call is quick.

    Parameters
    ----------
    dtypes : sequence of {"float32", "float64"}, default both
        The model dtypes to compile for; each compiles in its own process.
    estimators : bool, default True
        Also compile what ``fastbp.sklearn``'s estimators use (skipped where scikit-learn
        is not installed).
    jobs : int or None, default None
        Processes at once (default: one per dtype, at most the number of CPUs).
    quiet : bool, default False
        Do not print one line per dtype.

    Returns
    -------
    dict
        ``{dtype: seconds}``, the wall time each dtype's process took.

    Raises
    ------
    ValueError
        An unknown dtype or a ``jobs`` below 1.
    RuntimeError
        A compile process failed (its error output is in the message).
    """
    dtypes = list(dict.fromkeys(str(d) for d in dtypes))
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ValueError(f"dtypes must be a non-empty sequence of {DTYPES}, got {bad or dtypes}; "
                         f"pass e.g. dtypes=('float32',).")
    if jobs is None:
        jobs = min(len(dtypes), os.cpu_count() or 1)
    elif isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int or None, got {jobs!r}.")
    env = dict(os.environ, FASTBP_COMPILE_NOTICE="0")
    pending = list(dtypes)
    running: dict = {}
    seconds: dict = {}
    failures = []
    while pending or running:
        while pending and len(running) < jobs:
            d = pending.pop(0)
            code = _CHILD.format(dtype=d, estimators=bool(estimators))
            running[d] = (subprocess.Popen([sys.executable, "-c", code], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           text=True), time.perf_counter())
        d = next(iter(running))
        proc, t0 = running.pop(d)
        _, err = proc.communicate()
        seconds[d] = time.perf_counter() - t0
        if proc.returncode:
            failures.append(f"{d}: exit {proc.returncode}\n{err.strip()[-2000:]}")
        elif not quiet:
            print(f"fastbp warmup: {d} ready in {seconds[d]:.1f} s", file=sys.stderr)
    if failures:
        raise RuntimeError("fastbp warmup failed:\n" + "\n".join(failures))
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fastbp",
        description="fastbp command line. `warmup` compiles the kernels into the cache.")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("warmup", help="compile the kernels into the on-disk cache now")
    w.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    w.add_argument("--jobs", type=int, default=None, help="processes at once")
    w.add_argument("--no-estimators", action="store_true",
                   help="skip what the scikit-learn estimators use")
    args = parser.parse_args(argv)
    try:
        warmup(args.dtypes, estimators=not args.no_estimators, jobs=args.jobs)
    except (ValueError, RuntimeError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
