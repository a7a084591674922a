"""The benchmark profiles' ``timing`` fixture follows pytest-benchmark's own decision:
``--benchmark-enable`` times the full workloads although the suite's addopts say
``--benchmark-disable``; without it (or under xdist) the small stand-ins run untimed. And
each timed profile is labelled and grouped with its peers."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("pytest_benchmark")

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"

PROBE = '''
import json, os
from _fixtures import _data_cache, label, rounds, timing, workload_data  # noqa: F401


def test_probe(benchmark, workload_data, timing):
    w, X, y = workload_data("tiny_online")
    what = label(benchmark, w, "predict", X.shape[0], timing)
    benchmark.pedantic(lambda: None, rounds=rounds(timing, w), iterations=1)
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump({"timing": timing, "enabled": benchmark.enabled, "rows": X.shape[0],
                   "sizes": list(w.sizes), "group": benchmark.group, "what": what,
                   "extra": benchmark.extra_info}, f)
'''


def _run(tmp_path, *options):
    (tmp_path / "bench_probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    # not inside this run's xdist worker (pytest-benchmark disables timing there)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    env.update(PROBE_OUT=str(out),
               PYTHONPATH=os.pathsep.join([str(BENCHMARKS), os.environ.get("PYTHONPATH", "")]))
    # the suite's addopts first, as pyproject.toml gives them, then the command line's
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
           "python_files=bench_*.py", "--benchmark-disable", *options, "bench_probe.py"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_benchmark_enable_times_the_full_workload(tmp_path):
    json_path = tmp_path / "bench.json"
    got, stdout = _run(tmp_path, "--benchmark-enable", f"--benchmark-json={json_path}")
    assert got["enabled"] and got["timing"]
    assert got["rows"] == 20_000 and got["sizes"] == [16, 32, 1]  # the full workload
    assert got["group"] == "tiny_online (16-32-1) predict: predict on 20,000 rows"
    assert got["extra"] == {"workload": "tiny_online", "layers": "16-32-1",
                            "operation": "predict", "timed": "predict on 20,000 rows",
                            "samples": 20_000, "full_size": True}
    assert "benchmark 'tiny_online (16-32-1) predict: predict on 20,000 rows'" in stdout
    (bench,) = json.loads(json_path.read_text())["benchmarks"]  # the JSON report too
    assert bench["group"] == got["group"] and bench["extra_info"] == got["extra"]


def test_without_benchmark_enable_the_stand_in_runs_untimed(tmp_path):
    got, stdout = _run(tmp_path)
    assert not got["enabled"] and not got["timing"]
    assert got["rows"] < 200 and got["sizes"] == [16, 32, 1]
    assert got["group"].endswith("[stand-in: timing is off]")
    assert got["extra"]["full_size"] is False and "benchmark '" not in stdout


def test_xdist_disables_timing_and_the_fixture_follows(tmp_path):
    pytest.importorskip("xdist")
    got, _ = _run(tmp_path, "--benchmark-enable", "-n", "1")
    assert not got["enabled"] and not got["timing"] and got["rows"] < 200


def test_every_profile_is_labelled_and_grouped_by_workload_and_operation():
    """Each profile in bench_*.py calls ``label`` with its own operation, so the tables
    compare fastbp with each peer per workload and operation."""
    ops = ("epoch", "forward", "backward", "predict")
    for path in sorted(BENCHMARKS.glob("bench_*.py")):
        text = path.read_text()
        for op in ops:
            if f"def test_{path.stem[6:]}_{op}(" in text:
                body = text.split(f"def test_{path.stem[6:]}_{op}(")[1].split("\ndef ")[0]
                assert f'label(benchmark, w, "{op}",' in body, (path.name, op)
        assert 'extra_info["samples"]' not in text, path.name
