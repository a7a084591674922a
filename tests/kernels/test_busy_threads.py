"""On a busy machine the default thread count shrinks to the cores other processes leave
free (a parallel region waits for its slowest thread); explicit counts are kept."""

import os

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _threads

CORES = numba.config.NUMBA_NUM_THREADS


@pytest.fixture
def machine(monkeypatch):
    """A machine of CORES cores on which ``others`` threads of other processes run."""
    state = {"others": 0}
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: CORES)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(CORES)))
    monkeypatch.setattr(_threads, "_own_running", lambda: 1)
    monkeypatch.setattr(_threads, "_system_running", lambda: 1 + state["others"])
    monkeypatch.delenv("FASTBP_ADAPTIVE_THREADS", raising=False)

    def set_others(n):
        state["others"] = n
        _threads._load["t"] = -1.0  # no stale reading

    set_others(0)
    yield set_others
    _threads._load["t"] = -1.0


def _threads_inside(n_threads=None):
    with _threads.kernel_threads(n_threads):
        return numba.get_num_threads()


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores")
def test_default_count_leaves_busy_cores_alone(machine):
    assert _threads_inside() == CORES
    machine(1)
    assert _threads_inside() == CORES - 1
    machine(5 * CORES)
    assert _threads_inside() == 1
    assert _threads_inside(CORES) == CORES  # an explicit count is the user's choice
    assert numba.get_num_threads() == CORES  # restored after the call


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores")
def test_switch_off_and_pinned_processes(machine, monkeypatch):
    machine(CORES)
    monkeypatch.setenv("FASTBP_ADAPTIVE_THREADS", "0")
    _threads._load["t"] = -1.0
    assert _threads_inside() == CORES
    monkeypatch.delenv("FASTBP_ADAPTIVE_THREADS")
    # pinned to fewer cores than the machine has (a container on a big host): the system's
    # load says nothing about these cores, so the count is left alone
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0})
    _threads._load["t"] = -1.0
    assert _threads_inside() == CORES


def test_busy_machine_gives_the_same_bits(machine):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=300)
    out = []
    for others in (0, 5 * CORES):
        machine(others)
        m = fastbp.Model([6, 40, 3], loss="cross_entropy", seed=3)
        m.fit(X, y, epochs=2, batch_size=64)
        out.append((m.params.copy(), m.predict(X)))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


def test_reading_the_real_machine_is_safe():
    _threads._load["t"] = -1.0
    free = _threads.free_cores()
    assert free is None or 1 <= free <= os.cpu_count()
