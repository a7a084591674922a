"""Render the results of a benchmark run (``results.json``, written by ``_measure.py``) as
Markdown (``RESULTS.md``) and a chart (``results.png``).

Rendering reads only the data: ``SECTIONS`` lists the document's sections in order, each a
function ``section(run) -> Section | None`` of the run (``None`` when the run has no such
data, e.g. an older ``results.json``). A section is a title and blocks: ``Table`` (a
header and rows of cells), ``Bullets`` or ``Text``. To add a table, write one such function
and list it in ``SECTIONS``.
"""

from __future__ import annotations

import json
import os
import statistics
from typing import NamedTuple

LABELS = {"fastbp": "fastbp", "torch": "PyTorch (eager)", "jax": "JAX (jit + lax.scan)",
          "sklearn": "scikit-learn"}

#: performance targets: (vs torch, vs jax, fraction of the real peak)
TARGETS = {
    "tiny_online": (300.0, 2.0, None),
    "small": (20.0, 1.5, None),
    "mnist": (1.5, 1.2, 0.70),
    "wide": (1.0, 1.0, 0.85),
}
#: busy-neighbour target: default threads with a busy core / quiet single thread
BUSY_TARGET = 0.9


# ------------------------------------------------------------------------------ blocks
class Table(NamedTuple):
    header: list
    rows: list


class Bullets(NamedTuple):
    items: list


class Text(NamedTuple):
    text: str


class Section(NamedTuple):
    title: str
    blocks: list


def _lines(section: Section, h: str) -> list[str]:
    out = [f"{h} {section.title}\n"]
    for block in section.blocks:
        if isinstance(block, Table):
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out += ["| " + " | ".join(row) + " |" for row in block.rows]
        elif isinstance(block, Bullets):
            out += [f"- {item}" for item in block.items]
        else:
            out += ["", block.text + "\n"]
    if not isinstance(section.blocks[-1], Text):
        out.append("")
    return out


def fmt(x, digits=3) -> str:
    """A rate or ratio with a k / M suffix, ``—`` when missing."""
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.{digits}g}"


# ------------------------------------------------------------------------------ the run
class Run:
    """One ``results.json``, with the figures the sections share."""

    def __init__(self, data: dict):
        from _workloads import WORKLOADS, training_flops_per_sample

        self.data = data
        self.info, self.results = data["info"], data["results"]
        self.systems = data.get("systems") or list(self.results)
        self.names = data.get("names") or list(next(iter(self.results.values())))
        self.peak = data.get("peak")
        if self.peak:
            self.real = {int(t): v for t, v in self.peak["real"].items()}
            self.gflops = self.real[max(self.real)]["gflops"]
        else:  # an older results.json: the in-process NumPy rate
            self.gflops = statistics.median(data["gemm_gflops"])
        self.workloads = WORKLOADS
        self.roofline = {n: self.gflops * 1e9 / training_flops_per_sample(WORKLOADS[n].sizes)
                         for n in self.names}

    def value(self, system, name, key, default=None):
        return self.results.get(system, {}).get(name, {}).get(key, default)

    def ratio(self, name, key, other):
        f, o = self.value("fastbp", name, key), self.value(other, name, key)
        return f / o if f and o else None

    def of_peak(self, name):
        f = self.value("fastbp", name, "train_sps")
        return f / self.roofline[name] if f else None


# ------------------------------------------------------------------------------ sections
def machine(run: Run) -> Section:
    info, data = run.info, run.data
    items = [
        f"CPU: {info['cpu']}, {info['cores']} logical cores; {info['platform']}",
        f"Python {info['python']}, NumPy {info['numpy']}, Numba {info.get('numba')} "
        f"(threading layer {info.get('numba_threading_layer', '?')}), "
        + ", ".join(f"{k} {info[k]}" for k in ("torch", "jax", "jaxlib", "sklearn")
                    if k in info),
        f"threads per system: {data.get('threads', '?')} (fastbp: Numba threads; PyTorch: "
        "`torch.set_num_threads`; JAX/XLA and scikit-learn/OpenBLAS: their defaults)",
    ]
    gemm = ", ".join(f"{g:.0f}" for g in data["gemm_gflops"])
    if run.peak:
        inh = run.peak["inherited"]
        env = ", ".join(f"{k}={v}" for k, v in inh["env"].items() if v) or "none set"
        items.append(
            f"**real peak** (roofline): NumPy float32 GEMM 2048^3 with "
            f"{' and '.join(inh['env'])} removed: "
            + ", ".join(f"**{v['gflops']:.0f} GFLOP/s** at {t} thread{'s' * (t > 1)}"
                        for t, v in sorted(run.real.items()))
            + f" (OpenBLAS kernels: {run.real[max(run.real)]['architecture']})")
        items.append(f"under the inherited environment ({env}): {inh['gflops']:.0f} GFLOP/s "
                     f"(kernels: {inh['architecture']}); in-run NumPy samples: {gemm}")
    else:
        items.append(f"NumPy float32 GEMM (2048^3, median of the run): "
                     f"**{run.gflops:.0f} GFLOP/s**; samples: {gemm}")
    if data.get("note"):
        items.append(f"note: {data['note']}")
    if info.get("loadavg_start"):
        items.append(f"load average (1/5/15 min) at the start: "
                     f"{', '.join(f'{x:.1f}' for x in info['loadavg_start'])}; at the end: "
                     f"{', '.join(f'{x:.1f}' for x in info.get('loadavg_end', []))} "
                     f"(above the core count means other processes shared the cores)")
    if data.get("skipped"):
        items.append(f"not installed, skipped: {', '.join(data['skipped'])}")
    return Section("Machine", [Bullets(items)])


def training(run: Run) -> Section:
    labels = [LABELS[s] for s in run.systems]
    rows = []
    for n in run.names:
        w = run.workloads[n]
        rr = run.of_peak(n)
        rows.append([n, "-".join(map(str, w.sizes)), str(w.batch)]
                    + [fmt(run.value(s, n, "train_sps")) for s in run.systems]
                    + [f"{fmt(run.ratio(n, 'train_sps', 'torch'))}x",
                       f"{fmt(run.ratio(n, 'train_sps', 'jax'))}x", fmt(run.roofline[n]),
                       f"{100 * rr:.0f}%" if rr else "—"])
    losses = [[n] + [f"{run.value(s, n, 'loss', float('nan')):.5f}" for s in run.systems]
              for n in run.names]
    return Section(
        "Training throughput (samples/s, one epoch of minibatch SGD, median)",
        [Table(["workload", "layers", "batch", *labels, "fastbp / PyTorch", "fastbp / JAX",
                "peak roofline", "fastbp % of peak"], rows),
         Text("Losses of the timed epoch (all systems start from the same weights and see "
              "the same batches, so they agree to float32 rounding):"),
         Table(["workload", *labels], losses)])


def _target_cell(v, goal, pct=False) -> str:
    if v is None:
        return "—"
    if goal is None:
        return (f"{100 * v:.0f}%" if pct else f"{v:.2f}x") + " (no target)"
    ok = "met" if v >= goal else "**missed**"
    if pct:
        return f"{100 * v:.0f}% (>= {100 * goal:.0f}%: {ok})"
    return f"{v:.2f}x (>= {goal}x: {ok})"


def targets(run: Run) -> Section:
    rows = []
    for n in run.names:
        vs_torch, vs_jax, of_peak = TARGETS[n]
        rows.append([n, _target_cell(run.ratio(n, "train_sps", "torch"), vs_torch),
                     _target_cell(run.ratio(n, "train_sps", "jax"), vs_jax),
                     _target_cell(run.of_peak(n), of_peak, pct=True)])
    return Section("Targets", [Table(["workload", "vs PyTorch (target)", "vs JAX (target)",
                                      "% of real peak (target)"], rows)])


def inference(run: Run) -> Section:
    rows = [[n] + [fmt(run.value(s, n, "predict_sps")) for s in run.systems]
            + [f"{fmt(run.ratio(n, 'predict_sps', 'torch'))}x"] for n in run.names]
    return Section(
        "Inference throughput (predict, all samples of the workload, samples/s)",
        [Table(["workload", *(LABELS[s] for s in run.systems), "fastbp / PyTorch"], rows)])


def scaling(run: Run) -> Section | None:
    table = {n: {int(t): v for t, v in row.items()}
             for n, row in run.data.get("scaling", {}).items()}
    if not table:
        return None
    counts = run.data.get("counts") or sorted({t for row in table.values() for t in row})
    rows = []
    for n in run.names:
        row = table.get(n, {})
        vals = [row.get(c, {}).get("sps") for c in counts]
        speedup = vals[-1] / vals[0] if vals[0] and vals[-1] else None
        equal = all(row.get(c, {}).get("bitwise_equal_to_first", False) for c in counts)
        rows.append([n, *(fmt(v) for v in vals), f"{fmt(speedup)}x",
                     "yes" if equal else "NO"])
    return Section("fastbp thread scaling (training samples/s)",
                   [Table(["workload", *(f"{c} thr" for c in counts), "speed-up",
                           "bitwise equal across thread counts"], rows)])


def busy_neighbour(run: Run) -> Section | None:
    busy = run.data.get("contention")
    if not busy:
        return None
    r = busy["busy_default"] / busy["quiet_1"]
    row = [fmt(busy["quiet_1"]), f"{fmt(busy['quiet_default'])} ({busy['threads']})",
           fmt(busy["busy_default"]), fmt(busy["busy_1"]),
           f"{r:.2f}x (>= {BUSY_TARGET}: {'met' if r >= BUSY_TARGET else '**missed**'})"]
    return Section(
        f"Busy neighbour: {busy['workload']}, one other process spinning on a core "
        "(training samples/s, median)",
        [Table(["quiet, 1 thread", "quiet, default threads", "busy, default threads",
                "busy, 1 thread", "busy default / quiet 1 thread (target)"], [row])])


def startup(run: Run) -> Section | None:
    res = run.data.get("startup", {})
    if not res:
        return None
    rows = [[LABELS[s], f"{v['cold_s']:.2f}", f"{v['warm_s']:.2f}"] for s, v in res.items()]
    return Section("Start-up: `import` + first fit of the small workload (seconds)",
                   [Table(["system", "cold cache", "warm cache"], rows),
                    Text("fastbp: Numba's on-disk cache (cold = empty `NUMBA_CACHE_DIR`); "
                         "JAX: its persistent compilation cache (cold = empty cache "
                         "directory).")])


def memory(run: Run) -> Section | None:
    res = run.data.get("memory", {})
    if not res:
        return None
    rows = [[LABELS[s], f"{v['baseline_mib']:.0f}", f"{v['peak_mib']:.0f}",
             f"{v['increase_mib']:.1f}"] for s, v in res.items()]
    return Section("Memory: one training epoch of the mnist workload (MiB, resident)",
                   [Table(["system", "RSS before the epoch", "peak RSS during the epoch",
                           "increase"], rows),
                    Text("Measured in a separate process per system, after a warm-up epoch "
                         "(RSS sampled every 0.5 ms); includes the data set (60,000 x 784 "
                         "float32, 180 MiB) and each library's own footprint.")])


#: the document, in order
SECTIONS = [machine, training, targets, inference, scaling, busy_neighbour, startup, memory]


def render(data: dict, h: str = "##") -> list[str]:
    """Markdown lines of every section of one run (``h``: heading prefix)."""
    run = Run(data)
    lines = []
    for make in SECTIONS:
        section = make(run)
        if section is not None:
            lines += _lines(section, h)
    return lines


# ------------------------------------------------------------------------------ files
def write_chart(data: dict, path: str) -> bool:
    """Training samples/s per workload and system (log scale); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import numpy as np

    run = Run(data)
    systems, names = run.systems, run.names
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(systems)
    x = np.arange(len(names))
    for k, s in enumerate(systems):
        vals = [run.value(s, n, "train_sps", np.nan) for n in names]
        ax.bar(x + (k - (len(systems) - 1) / 2) * width, vals, width, label=LABELS[s])
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("training samples / s (log)")
    ax.set_title("One epoch of minibatch SGD, float32, CPU")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(data: dict, out: str, include=()) -> str:
    """Write ``RESULTS.md`` (and ``results.png``) into ``out`` from one run's ``data``, with
    the sections of earlier runs appended (``include``: ``"RESULTS_JSON=TITLE"`` each);
    returns the Markdown."""
    lines = ["# fastbp benchmark results\n",
             f"Generated by `benchmarks/report.py` on {data['info']['date']}.\n"]
    lines += render(data, "##")
    if write_chart(data, os.path.join(out, "results.png")):
        lines.append("![training samples/s per workload and system](results.png)\n")
    for spec in include:
        path, _, title = spec.partition("=")
        with open(path) as fh:
            other = json.load(fh)
        lines.append(f"## {title or path}\n")
        lines += render(other, "###")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(out, "RESULTS.md"), "w") as fh:
        fh.write(md)
    return md
