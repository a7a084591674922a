"""The documentation site builds in strict mode: every page, link and anchor resolves, and
the API reference renders from the docstrings without warnings."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mkdocs_strict_build(tmp_path):
    pytest.importorskip("mkdocs", reason="pip install '.[docs]' to build the documentation")
    pytest.importorskip("mkdocstrings")
    if not os.path.exists(os.path.join(ROOT, "mkdocs.yml")):
        pytest.skip("no mkdocs.yml (not a source checkout)")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()
    shutil.rmtree(tmp_path / "site")


def test_readme_is_short_and_free_of_project_history():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert len(text.splitlines()) <= 250
    assert "<!-- ci:test-command -->" in text
    for word in ("issue ", "Issue ", "this session"):
        assert word not in text


def test_readme_start_up_paragraph_quotes_what_a_user_sees():
    """The README quotes the compile notice and the digits example's line as they are
    printed (fastbp/kernels/_cache.py, examples/digits.py)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = " ".join(f.read().split())
    with open(os.path.join(ROOT, "fastbp", "kernels", "_cache.py")) as f:
        cache = f.read()
    with open(os.path.join(ROOT, "examples", "digits.py")) as f:
        digits = f.read()
    assert 'f"fastbp: compiling {what}, once; cached in {cache.where} "' in cache
    assert "`fastbp: compiling kernels for float32, once; cached in " in readme
    assert 'print(f"compile/load of kernels: {compile_s:.2f} s (first call only)")' in digits
    assert "`compile/load of kernels: ...`" in readme
    assert "`python -m fastbp warmup` compiles both ahead of time" in readme


def test_sklearn_equality_claims_are_made_per_dtype():
    """docs/sklearn.md says what agrees with scikit-learn in float64 and in float32 (tested
    by tests/frontends/test_sklearn.py::test_what_docs_sklearn_md_says_of_float64_and_float32)."""
    with open(os.path.join(ROOT, "docs", "sklearn.md")) as f:
        doc = " ".join(f.read().split())
    assert "up to floating-point rounding" not in doc
    for claim in ("**float64**", "**float32**", "6e-15 with `adam`", "3e-8 on digits",
                  "9e-3 after 20", "the predicted class of every one of the 1797 rows"):
        assert claim in doc, claim
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "weights up to rounding" not in f.read()


def _ci_command() -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("<!-- ci:test-command -->", 1)[1].split("```bash", 1)[1]
    return block.split("```", 1)[0].strip()


def test_ci_installs_the_oracles_and_requires_them():
    """CI (README's test command) runs the PyTorch and JAX comparisons: it installs the CPU
    build of PyTorch by name and JAX through the `oracles` extra, and fails a test that
    skips for a missing package; no extra names torch (PyPI's Linux torch is the CUDA
    build)."""
    import re

    cmd = _ci_command()
    assert "torch==2.13.0" in cmd and ".[test,oracles," in cmd
    assert "FASTBP_REQUIRE_PEERS=1 python -m pytest" in cmd
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        pyproject = f.read()  # (tomllib is Python >= 3.11)
    assert re.search(r'^oracles = \["jax\[cpu\]', pyproject, re.M)
    assert not re.search(r'^\s*"torch\b', pyproject, re.M)  # no extra names torch


def test_readme_says_how_long_the_test_command_takes():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = " ".join(f.read().split())
    after = text.split("<!-- ci:test-command -->", 1)[1]
    assert "the command took" in after and "CPU-seconds" in after and "minutes" in after
