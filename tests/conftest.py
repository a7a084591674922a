"""Shared test helpers. The tests are in folders that mirror the layers of ``fastbp/``:

- ``kernels/``: the compiled kernels, their compile cache and warm-up, threads;
- ``training/``: the engine (plan, loop, schedules, rollback, history, checkpoints) as
  ``Model.fit`` drives it;
- ``frontends/``: ``Model``'s other methods, the estimators, files, interop, MPI and Dask
  (``frontends/mpi/``: the scripts run under ``mpiexec``);
- ``project/``: documentation, import layering, benchmark reports.

``naive.py`` and ``naive_train.py`` (slow NumPy references) and this file's helpers are
importable from every folder (``import naive``, ``from conftest import make_targets``).
"""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # make tests/naive.py importable as `naive`

#: set by the README's test command (CI): a test skipped because an optional package could
#: not be imported fails instead, so the comparisons with PyTorch, JAX, onnxruntime, MPI,
#: Dask, pandas and matplotlib cannot silently stop running
REQUIRE_PEERS = os.environ.get("FASTBP_REQUIRE_PEERS", "").strip() == "1"


def _missing_peer(report) -> str | None:
    """The skip reason of ``report`` when an import of an optional package failed."""
    if not (REQUIRE_PEERS and report.skipped):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
    return reason if "could not import" in reason else None


def _fail_missing_peer(report) -> None:
    reason = _missing_peer(report)
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = (f"FASTBP_REQUIRE_PEERS=1 and an optional package is missing: "
                           f"{reason}. Install what the README's test command installs.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_missing_peer(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_missing_peer(outcome.get_result())


def make_targets(rng, loss, n, n_out, labels=True):
    """Random targets valid for ``loss``: labels or one-hot for CE, 0/1 for BCE, reals for SE."""
    if loss == "cross_entropy":
        y = rng.integers(0, n_out, size=n)
        if labels:
            return y
        T = np.zeros((n, n_out))
        T[np.arange(n), y] = 1
        return T
    if loss == "binary_cross_entropy":
        T = rng.integers(0, 2, size=(n, n_out)).astype(float)
        return T
    if loss == "poisson":  # counts, zeros included
        return rng.poisson(1.0, size=(n, n_out)).astype(float)
    return rng.normal(size=(n, n_out))


def one_hot_targets(y, loss, n_out):
    """Targets as the (n, n_out) float64 matrix the kernels see."""
    y = np.asarray(y)
    if loss == "cross_entropy" and y.ndim == 1:
        T = np.zeros((len(y), n_out))
        T[np.arange(len(y)), y] = 1
        return T
    return np.asarray(y, dtype=float).reshape(len(y), n_out)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def sigint_on_call(monkeypatch, module, name, at):
    """Wrap ``module.name`` so that a real SIGINT is raised after its ``at``-th call
    returns ("during" that call, as far as the caller can tell); returns the list that
    counts the calls."""
    import signal

    real = getattr(module, name)
    calls = []

    def wrapper(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == at:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(module, name, wrapper)
    return calls
