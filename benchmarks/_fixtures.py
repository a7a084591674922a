"""Shared fixtures of the benchmark profiles (imported by each ``bench_*.py``).

Not a ``conftest.py``: ``tests/`` imports helpers with ``from conftest import ...``, and a
second module named ``conftest`` on the path would shadow its conftest.

Whether a profile is timed is pytest-benchmark's decision, read from the ``benchmark``
fixture itself (``benchmark.enabled``): the suite's addopts say ``--benchmark-disable``,
``--benchmark-enable`` on the command line overrides it, and pytest-xdist (``-n 2``)
disables timing whatever the options say. With timing off every profile runs once, as a
plain correctness test, on a small stand-in of its workload (narrower layers, a few steps)
so that the suite stays fast. With timing on (``pytest benchmarks --benchmark-enable``,
without ``-n``) the full workloads are timed; compile time is excluded by a warm-up call
before the timed rounds.

Each timed profile says what it timed: its group (one table per workload and operation,
fastbp beside each peer) names the workload, the layer sizes and the operation with its
row count, and ``extra_info`` (in ``--benchmark-json``) repeats it field by field.
"""

import pytest
from _workloads import WORKLOADS, make_data

#: what each profiled operation runs, for the labels
OPERATIONS = {
    "epoch": "one training epoch, {samples:,} rows in batches of {batch} (SGD, lr 0.01)",
    "forward": "forward pass of one batch of {rows} rows",
    "backward": "forward + backward pass (loss and gradients) of one batch of {rows} rows",
    "predict": "predict on {samples:,} rows",
}


@pytest.fixture
def timing(benchmark):
    """True when pytest-benchmark times this profile (full-size workloads): the fixture's
    own decision, so ``--benchmark-enable`` (which overrides the suite's
    ``--benchmark-disable``) and xdist's automatic disabling are both honoured."""
    return bool(benchmark.enabled)


@pytest.fixture(scope="session")
def _data_cache():
    return {}


@pytest.fixture
def workload_data(timing, _data_cache):
    """``get(name) -> (workload, X, y)``: full size when timing, a small stand-in otherwise."""

    def get(name):
        key = (name, timing)
        if key not in _data_cache:
            w = WORKLOADS[name] if timing else WORKLOADS[name].shrunk()
            X, y = make_data(w)
            _data_cache[key] = (w, X, y)
        return _data_cache[key]

    return get


def rounds(timing, w):
    """Timed rounds per profile: fewer for the big workloads."""
    if not timing:
        return 1
    return 3 if w.name == "wide" else 5


def label(benchmark, w, operation: str, rows: int, timing: bool) -> str:
    """Group the profile with its peers (one table per workload and operation) and record
    what is timed; returns the description."""
    what = OPERATIONS[operation].format(samples=w.samples, batch=w.batch, rows=rows)
    layers = "-".join(map(str, w.sizes))
    size = "" if timing else " [stand-in: timing is off]"
    benchmark.group = f"{w.name} ({layers}) {operation}: {what}{size}"
    benchmark.extra_info.update({
        "workload": w.name, "layers": layers, "operation": operation, "timed": what,
        "samples": rows, "full_size": timing,
    })
    return what
