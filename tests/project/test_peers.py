"""The optional peers the README's test command installs are there, and the right builds:
PyTorch's CPU build, JAX on the CPU. Under ``FASTBP_REQUIRE_PEERS=1`` (the README's test
command, so CI) a missing one fails here, and any test that skips for a failed import fails
too (tests/conftest.py); the benchmark profiles' module-level skips are then impossible."""

import importlib
import os
import subprocess
import sys

import pytest
from conftest import REQUIRE_PEERS

PEERS = ("torch", "jax", "onnx", "onnxruntime", "mpi4py", "dask.distributed", "pandas",
         "sklearn", "scipy", "matplotlib", "mkdocs")

pytestmark = pytest.mark.skipif(not REQUIRE_PEERS, reason="FASTBP_REQUIRE_PEERS=1 is not set "
                                "(the README's test command sets it)")


@pytest.mark.parametrize("name", PEERS)
def test_peer_is_installed(name):
    importlib.import_module(name)


def test_torch_is_the_cpu_build_and_jax_runs_on_the_cpu():
    import jax
    import torch

    assert torch.version.cuda is None, torch.__version__  # not the multi-GB CUDA build
    assert jax.devices()[0].platform == "cpu"


def test_a_missing_peer_fails_a_test_that_would_skip(tmp_path):
    (tmp_path / "conftest.py").write_text(
        open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "conftest.py")).read())
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n\n"
        "def test_needs_a_peer():\n"
        "    pytest.importorskip('no_such_peer_module')\n\n"
        "def test_skips_for_another_reason():  # a skip that is not a missing peer stays\n"
        "    pytest.skip('not a missing peer')\n")
    env = dict(os.environ, FASTBP_REQUIRE_PEERS="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-rfs", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 skipped" in proc.stdout, proc.stdout
    assert "an optional package is missing" in proc.stdout
    assert "could not import 'no_such_peer_module'" in proc.stdout
