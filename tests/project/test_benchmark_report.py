"""``benchmarks/RESULTS.md`` is rendered from ``benchmarks/results.json`` alone
(``benchmarks/_render.py``), and older runs without some measurements still render."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")
sys.path.insert(0, BENCH)

_render = pytest.importorskip("_render")


@pytest.fixture
def stored():
    with open(os.path.join(BENCH, "results.json")) as fh:
        return json.load(fh)


def test_results_md_is_the_rendering_of_results_json(stored, tmp_path, monkeypatch):
    monkeypatch.setattr(_render, "write_chart", lambda data, path: True)  # no matplotlib needed
    md = _render.write_report(stored, str(tmp_path))
    with open(os.path.join(BENCH, "RESULTS.md")) as fh:
        assert md == fh.read()
    assert (tmp_path / "RESULTS.md").read_text() == md


def test_a_run_without_optional_measurements_renders_what_it_has(stored):
    older = {k: stored[k] for k in ("info", "gemm_gflops", "results")}
    lines = _render.render(older, "###")
    titles = [line.strip() for line in lines if line.startswith("### ")]
    assert [t.split(" (")[0].split(":")[0] for t in titles] == [
        "### Machine", "### Training throughput", "### Targets", "### Inference throughput"]
    assert any("median of the run" in line for line in lines)


def test_every_section_is_a_titled_list_of_blocks(stored):
    run = _render.Run(stored)
    for make in _render.SECTIONS:
        section = make(run)
        assert section is not None and section.title and section.blocks, make.__name__
        for block in section.blocks:
            if isinstance(block, _render.Table):
                assert all(len(row) == len(block.header) for row in block.rows), make.__name__
