"""Fill the compile cache ahead of time: ``python -m fastbp warmup`` and ``fastbp.warmup``.

Each dtype compiles in its own process (they share no machine code), so ``jobs`` processes
work at once; within a process the drivers link the kernels it compiled first. The work is
what users run -- ``Model.fit`` (mini-batch and L-BFGS, with validation data), ``predict``,
``evaluate``, ``gradient``, the same on SciPy sparse input, and the scikit-learn estimators
-- on a few rows, so the cache ends up holding exactly the compiled code their first calls
need. Kernels are compiled per dtype only (activation, loss and optimizer are run-time
codes), and every array reaches them in one form (read-only ones as writable aliases,
``fastbp._validation.arrays.kernel_array``), so one warm-up covers every configuration and input
of that dtype.

A warm-up that could not save what it compiled (no writable cache directory, a full disk)
fails: each process checks, before compiling, that there is a cache directory at all and,
after, that every kernel it compiled was saved (``fastbp.kernels._cache.unsaved``); kernels
loaded from a warm read-only cache need no saving.
Stopping the warm-up (``KeyboardInterrupt``, or ``SIGTERM`` to ``python -m fastbp
warmup``) stops its compile processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

DTYPES = ("float32", "float64")

_CHILD = ("from fastbp._warmup import child_main; "
          "child_main({dtype!r}, {estimators!r}, {sparse!r})")
#: exit status of a compile process whose kernels could not be saved
EXIT_UNSAVED = 3


class CacheNotWritable(RuntimeError):
    """The compiled kernels could not be saved to the on-disk cache."""


def check_cache_writable() -> None:
    """Raise ``CacheNotWritable`` if no kernel of fastbp has a cache directory (the quick
    check before compiling; ``check_saved`` after compiling is the complete one)."""
    from .kernels import _cache

    if _cache.nowhere():
        raise CacheNotWritable(
            f"fastbp warmup: nothing can be cached: {_cache.NO_CACHE_DIR}. Set "
            f"NUMBA_CACHE_DIR to a writable directory (and the same NUMBA_CACHE_DIR where "
            f"fastbp is used), or run the warm-up as a user who can write "
            f"{_cache.PACKAGE_DIR}.")


def check_saved() -> None:
    """Raise ``CacheNotWritable`` if anything compiled in this process was not saved."""
    from .kernels import _cache

    unsaved = _cache.unsaved()
    if unsaved:
        reasons = sorted(set(unsaved.values()))
        raise CacheNotWritable(
            f"fastbp warmup: {len(unsaved)} compiled kernel(s) could not be saved to the "
            f"cache ({'; '.join(reasons)}). Free space or fix the permissions, or set "
            f"NUMBA_CACHE_DIR to a writable directory, and run the warm-up again.")


def compile_dtype(dtype: str, estimators: bool = True, sparse: bool = True) -> None:
    """Compile (or load) every kernel a ``dtype`` model and estimator uses, in this process,
    and check that it is all in the on-disk cache (``CacheNotWritable`` if not)."""
    check_cache_writable()
    _workload(dtype, estimators, sparse)
    check_saved()


def _workload(dtype: str, estimators: bool, sparse: bool) -> None:
    import numpy as np

    from .model import Model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 4)).astype(dtype)
    y = rng.integers(0, 3, size=24)
    inputs = [X]
    if sparse:
        try:
            import scipy.sparse
        except ImportError:  # no SciPy: no sparse input can exist
            pass
        else:
            inputs.append(scipy.sparse.csr_matrix(X))
    from .kernels._flat import compile_all

    compile_all(dtype)  # the kernels compiled at their first call (one-row batches, threads)
    for data in inputs:
        m = Model([4, 5, 3], loss="cross_entropy", dtype=dtype, seed=0)
        m.fit(data, y, epochs=1, batch_size=8, validation_data=(data, y))
        m.fit(data, y, epochs=1, optimizer="lbfgs")
        m.predict(data)
        m.evaluate(data, y)
        m.gradient(data, y, l2=1e-3)
    if estimators:
        import warnings

        try:
            from .sklearn import MLPClassifier, MLPRegressor
        except ImportError:  # scikit-learn is not installed: nothing of theirs to compile
            return

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # too few iterations to converge, on purpose
            for data in inputs:
                for est in (MLPClassifier(hidden_layer_sizes=(5,), max_iter=2),
                            MLPRegressor(hidden_layer_sizes=(5,), max_iter=2)):
                    target = y if isinstance(est, MLPClassifier) else X[:, 0]
                    est.fit(data, target).predict(data)


def child_main(dtype: str, estimators: bool = True, sparse: bool = True) -> None:
    """A compile process of ``warmup``: exits ``EXIT_UNSAVED`` with the reason on stderr if
    its kernels could not be saved."""
    try:
        compile_dtype(dtype, estimators, sparse)
    except CacheNotWritable as exc:
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_UNSAVED) from None


def _stop(procs) -> None:
    """Terminate the compile processes ``procs`` (killed if they do not exit in 5 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 5.0
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def warmup(dtypes: Sequence[str] = DTYPES, *, estimators: bool = True, sparse: bool = True,
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
    sparse : bool, default True
        Also compile the kernels for SciPy sparse input (skipped where SciPy is not
        installed).
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
        A compile process failed (its error output is in the message), for instance
        because there is no writable cache directory or a save failed (disk full): what
        was compiled would be lost, and the message says what to set.
    KeyboardInterrupt
        The warm-up was interrupted; its compile processes were stopped.
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
    running: dict = {}  # dtype -> (process, start time, stderr file)
    seconds: dict = {}
    failures = []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                d = pending.pop(0)
                code = _CHILD.format(dtype=d, estimators=bool(estimators),
                                     sparse=bool(sparse))
                err = tempfile.TemporaryFile()  # a file, not a pipe: no child blocks on it
                try:
                    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                                            stdout=subprocess.DEVNULL, stderr=err)
                except BaseException:
                    err.close()
                    raise
                running[d] = (proc, time.perf_counter(), err)
            done = [d for d, (proc, _, _) in running.items() if proc.poll() is not None]
            if not done:
                time.sleep(0.05)
                continue
            for d in done:
                proc, t0, err = running.pop(d)
                seconds[d] = time.perf_counter() - t0
                err.seek(0)
                text = err.read().decode(errors="replace").strip()
                err.close()
                if proc.returncode:
                    failures.append(f"{d}: exit {proc.returncode}\n{text[-2000:]}")
                elif not quiet:
                    print(f"fastbp warmup: {d} ready in {seconds[d]:.1f} s", file=sys.stderr)
    finally:  # an error or KeyboardInterrupt here: the compile processes stop too
        _stop([proc for proc, _, _ in running.values()])
        for _, _, err in running.values():
            err.close()
    if failures:
        raise RuntimeError("fastbp warmup failed:\n" + "\n".join(failures))
    return seconds


class _Terminated(Exception):
    """SIGTERM arrived."""


def _on_sigterm(signum, frame):
    raise _Terminated


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
    w.add_argument("--no-sparse", action="store_true",
                   help="skip the kernels for SciPy sparse input")
    args = parser.parse_args(argv)
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:  # SIGTERM stops the compile processes too
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        warmup(args.dtypes, estimators=not args.no_estimators, sparse=not args.no_sparse,
               jobs=args.jobs)
    except (ValueError, RuntimeError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastbp warmup: interrupted; the compile processes were stopped.",
              file=sys.stderr)
        return 128 + signal.SIGINT
    except _Terminated:
        print("fastbp warmup: terminated; the compile processes were stopped.",
              file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old)
    return 0
