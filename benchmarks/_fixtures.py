"""Shared fixtures of the benchmark profiles (imported by each ``bench_*.py``).

Not a ``conftest.py``: ``tests/`` imports helpers with ``from conftest import ...``, and a
second module named ``conftest`` on the path would shadow its conftest.

With timing disabled (the default ``--benchmark-disable`` of the test suite) every profile
runs once, as a plain correctness test, on a small stand-in of its workload (narrower
layers, a few steps) so that the suite stays fast. With timing enabled
(``pytest benchmarks --benchmark-enable``) the full workloads are timed; compile time is
excluded by a warm-up call before the timed rounds.
"""

import pytest
from _workloads import WORKLOADS, make_data


@pytest.fixture(scope="session")
def timing(request):
    """True when pytest-benchmark is timing (full-size workloads)."""
    return not request.config.getoption("benchmark_disable")


@pytest.fixture(scope="session")
def workload_data(timing):
    """``get(name) -> (workload, X, y)``: full size when timing, a small stand-in otherwise."""
    cache = {}

    def get(name):
        if name not in cache:
            w = WORKLOADS[name] if timing else WORKLOADS[name].shrunk()
            X, y = make_data(w)
            cache[name] = (w, X, y)
        return cache[name]

    return get


def rounds(timing, w):
    """Timed rounds per profile: fewer for the big workloads."""
    if not timing:
        return 1
    return 3 if w.name == "wide" else 5
