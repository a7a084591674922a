"""Data bigger than memory: the out-of-core example trains on a file larger than the private
memory it is given, and the benchmark's partial_fit loop takes fit's steps exactly."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA: Linux only")
def test_example_trains_on_a_file_larger_than_its_memory_budget(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "out_of_core.py"), "--rows", "200000",
         "--budget", "32", "--epochs", "1", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "loading the file whole: MemoryError, as it should" in out, out
    assert "wrote 200,000 rows x 64 features (50 MiB)" in out
    accuracy = float(out.split("held-out accuracy ")[1].split()[0])
    assert accuracy > 0.5, out  # 10 classes: chance is 0.1
    limit = int(out.split("MiB of the ")[1].split()[0])
    used = int(out.split("private memory at the end: ")[1].split()[0])
    assert used <= limit
    assert (tmp_path / "model.npz").is_file()  # the checkpoint


def test_benchmark_partial_fit_over_chunks_takes_fits_steps(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import out_of_core
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    result = out_of_core.main(["--rows", "30000", "--repeats", "1", "--hidden", "8"])
    out = capsys.readouterr().out
    assert "parameters bitwise equal" in out and "partial_fit / fit = " in out
    assert result["fit"] > 0 and result["partial_fit"] > 0
