"""MPI data-parallel training, run under ``mpiexec -n 2`` on loopback.

Each test launches one script from ``tests/frontends/mpi/`` with ``mpiexec -n 2`` in a subprocess
(with a timeout, so a hang fails the test instead of blocking the suite) and one Numba
thread per rank. The scripts do the checking; see their docstrings.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

pytest.importorskip(
    "mpi4py", reason="mpi4py is not installed: pip install '.[mpi]' to run the MPI tests"
)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "mpi")
ROOT = os.path.dirname(os.path.dirname(HERE))


def _mpiexec():
    # the mpich wheel installs mpiexec next to the interpreter of the environment
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
pytestmark = pytest.mark.skipif(
    MPIEXEC is None, reason="no mpiexec found: pip install '.[mpi]' (the mpich wheel provides it)"
)


def run_mpi(script, *args, n=2, timeout=180, env_extra=None):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", **(env_extra or {}))
    cmd = [MPIEXEC, "-n", str(n), sys.executable, os.path.join(SCRIPTS, script), *args]
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p)
    # own process group, so that a hang is cleaned up completely (mpiexec and every rank)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=SCRIPTS, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (a hang):\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def check_ok(proc, marker):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and marker in proc.stdout, out


def test_two_ranks_equal_one_process_with_double_batch():
    proc = run_mpi("equivalence.py")
    check_ok(proc, "equivalence: all cases passed")


@pytest.mark.parametrize("mode", ["roles", "bad-argument", "callback-error"])
def test_roles_and_collective_errors(mode):
    check_ok(run_mpi("control.py", mode), f"{mode}: OK")


@pytest.mark.parametrize("mode", ["step-error", "stuck", "absent"])
def test_failing_rank_aborts_all_instead_of_hanging(mode, tmp_path):
    proc = run_mpi("control.py", mode, timeout=120,
                   env_extra={"FASTBP_TEST_RANK_LOG_DIR": str(tmp_path)})
    # what the ranks wrote to stderr, also when the launcher did not forward it in time
    rank_logs = "".join(p.read_text() for p in sorted(tmp_path.glob("rank*.err")))
    out = proc.stdout + proc.stderr + rank_logs
    assert proc.returncode != 0, out
    assert "MPI_Abort" in out, out
    assert "training finished although" not in out, out
    assert "rank 1 never joined" not in out, out
    if mode == "step-error":
        assert "simulated failure on rank 1" in out, out
    else:
        assert "no training progress" in out, out


@pytest.mark.parametrize("mode", ["huge-lr", "one-rank", "local-sgd", "last-step"])
def test_divergence_on_any_rank_stops_every_rank_with_the_same_rollback(mode):
    check_ok(run_mpi("divergence.py", mode), f"{mode}: OK")


def test_mpi_example_runs(tmp_path):
    example = os.path.join(ROOT, "examples", "mpi_train.py")
    out = str(tmp_path / "model.npz")
    proc = run_mpi(example, "--samples", "2000", "--epochs", "2", "--quiet", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ranks: 2" in proc.stdout and os.path.exists(out), proc.stdout + proc.stderr


def test_mpi_example_saves_outside_the_repository_by_default():
    example = os.path.join(ROOT, "examples", "mpi_train.py")
    repo = os.path.realpath(ROOT)
    before = set(os.listdir(repo))
    proc = run_mpi(example, "--samples", "1000", "--epochs", "1", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = proc.stdout.split("saved to ")[-1].strip()
    try:
        assert os.path.isfile(saved) and not os.path.realpath(saved).startswith(repo + os.sep)
        assert set(os.listdir(repo)) == before  # nothing written into the repository
    finally:
        if os.path.isfile(saved):
            os.remove(saved)
            os.rmdir(os.path.dirname(saved))
