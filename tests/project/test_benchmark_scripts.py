"""The benchmark scripts that are not pytest profiles still run against today's kernels
(``products.py`` once raised ``TypeError`` unseen: it called an internal kernel from
Python after entry points became opt-in)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

pytest.importorskip("threadpoolctl")


def test_products_measures_every_product_of_a_workload(monkeypatch):
    import numba
    import products

    monkeypatch.setattr(products, "SETTLE_S", 0.0)
    before = numba.get_num_threads()
    try:
        rows = products.measure(["small"], [1], repeats=1, target_s=1e-5)
    finally:
        numba.set_num_threads(before)  # measure sets the thread count of each column
    names = [r["product"] for r in rows]
    assert names == ["L0 fwd", "L0 grad", "L1 fwd", "L1 delta", "L1 grad", "L0 pred",
                     "L1 pred"]
    for r in rows:
        assert r["fastbp_1"] > 0 and r["openblas_1"] > 0, r
    totals = products.step_totals(rows, [1])
    assert totals[("small", 1, "fastbp")] > 0


def test_profile_step_runs_every_part(capsys):
    """``profile_step.py`` calls the step's parts from its own compiled loops, borrowed
    arrays (``_llvm.borrowed``) included: the public kernels among them take ordinary ones."""
    import profile_step

    profile_step.run([8, 6, 3], 4, 40)
    out = capsys.readouterr().out
    parts = ["train_steps", "gather", "forward", "outdelta+cc", "backward", "optimizer_step",
             "sgd_step"]
    for part in parts:
        line = next(line for line in out.splitlines() if line.strip().startswith(part))
        assert float(line.split()[1]) > 0, line
