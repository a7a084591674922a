"""Shared fixtures of the benchmark profiles.

With timing disabled (the default ``--benchmark-disable`` of the test suite) every profile
runs once, as a plain correctness test, on a small stand-in of its workload (narrower
layers, a few steps) so that the suite stays fast. With timing enabled
(``pytest benchmarks --benchmark-enable``) the full workloads are timed; compile time is
excluded by a warm-up call before the timed rounds.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # make _workloads importable

from _workloads import WORKLOADS, make_data  # noqa: E402


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "benchmarks" in str(item.fspath):
            item.add_marker(pytest.mark.benchmark_profile)


def pytest_configure(config):
    config.addinivalue_line("markers", "benchmark_profile: a pytest-benchmark profile")


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
