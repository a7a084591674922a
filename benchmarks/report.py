"""Run the fastbp / PyTorch / JAX / scikit-learn comparison and write RESULTS.md and a chart.

Usage (from the repository root)::

    python benchmarks/report.py                 # everything, all cores, ~5-10 minutes
    python benchmarks/report.py --quick         # fewer repeats
    python benchmarks/report.py --systems fastbp,torch --workloads small,mnist
    python benchmarks/report.py --scaling 1,2,4,8,16 --out /tmp/results   # on a bigger box

Every system runs in its own subprocess (so that no two thread pools -- Numba's, PyTorch's
OpenMP, XLA's -- ever share the cores, and so that memory is measured per system). Each
training measurement is one epoch of plain minibatch SGD (lr 0.01, no shuffling) from the
same initial weights, timed after a warm-up epoch that excludes compile time; the median of
several epochs is reported. The "GEMM roofline" of a workload is the machine's real float32
matrix-multiply peak divided by the workload's training FLOPs per sample (forward + backward
deltas + weight gradients). The peak is measured in a child process with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its environment (some machines
set them, forcing OpenBLAS onto AVX2 kernels at about half the AVX-512 rate): NumPy sgemm
2048^3, median of 7, at the run's thread count and at 1 thread; the report names the
OpenBLAS kernels that ran (threadpoolctl's ``architecture``). NumPy's rate under the
inherited environment is reported beside it, never used as the roofline.

The busy-neighbour table trains the mnist workload with fastbp's default settings while one
other process spins on a core, against the quiet single-thread rate of the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

SYSTEMS = ["fastbp", "torch", "jax", "sklearn"]
LABELS = {"fastbp": "fastbp", "torch": "PyTorch (eager)", "jax": "JAX (jit + lax.scan)",
          "sklearn": "scikit-learn"}

# performance targets: (vs torch, vs jax, fraction of the real peak)
TARGETS = {
    "tiny_online": (300.0, 2.0, None),
    "small": (20.0, 1.5, None),
    "mnist": (1.5, 1.2, 0.70),
    "wide": (1.0, 1.0, 0.85),
}
#: variables that pin OpenBLAS to a core type; removed (only) where the peak is measured
BLAS_PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
BUSY_TARGET = 0.9


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


# ------------------------------------------------------------------------------ worker side
def _set_threads(system, threads):
    if threads is None:
        return
    if system == "fastbp":
        import numba

        numba.set_num_threads(threads)
    elif system == "torch":
        import torch

        torch.set_num_threads(threads)


def worker_train(system, names, repeats, threads):
    """Training and predict throughput of one system on some workloads (JSON lines)."""
    from _workloads import RUNNERS, WORKLOADS, make_data

    if system == "torch":
        import torch

        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    _set_threads(system, threads)
    out = {}
    for name in names:
        w = WORKLOADS[name]
        X, y = make_data(w)
        r = RUNNERS[system](w, X, y)
        reps = repeats
        if system == "sklearn" or (system == "torch" and name == "tiny_online"):
            reps = max(1, min(repeats, 3))
        if name == "wide":
            reps = max(1, min(repeats, 3))
        r.epoch()  # warm-up (compilation)
        times, losses = [], []
        for _ in range(reps):
            r.reset()
            t0 = time.perf_counter()
            losses.append(r.epoch())
            times.append(time.perf_counter() - t0)
        r.predict(X[:64])
        ptimes = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r.predict(X)
            ptimes.append(time.perf_counter() - t0)
        out[name] = {
            "train_sps": w.samples / _median(times),
            "train_times": times,
            "predict_sps": X.shape[0] / _median(ptimes),
            "loss": losses[0],
        }
        print(json.dumps({"system": system, "workload": name, **out[name]}), flush=True)
    return out


def worker_scaling(names, thread_counts, repeats):
    import numba
    from _workloads import WORKLOADS, FastbpRunner, make_data

    res = {}
    for name in names:
        w = WORKLOADS[name]
        X, y = make_data(w)
        r = FastbpRunner(w, X, y)
        r.epoch()
        res[name] = {}
        ref = None
        for t in thread_counts:
            numba.set_num_threads(t)
            times = []
            for _ in range(max(1, min(repeats, 3) if name == "wide" else repeats)):
                r.reset()
                t0 = time.perf_counter()
                loss = r.epoch()
                times.append(time.perf_counter() - t0)
            params = r.model.params.copy()
            if ref is None:
                ref = params
            res[name][t] = {"sps": w.samples / _median(times),
                            "bitwise_equal_to_first": bool((params == ref).all()),
                            "loss": loss}
            print(json.dumps({"workload": name, "threads": t, **res[name][t]}), flush=True)
    return res


def worker_peak(threads):
    """NumPy float32 GEMM GFLOP/s at ``threads`` BLAS threads, and which kernels ran."""
    import numpy as np  # noqa: F401 - loads OpenBLAS before threadpoolctl looks
    from threadpoolctl import threadpool_info, threadpool_limits

    pools = threadpool_info()
    blas = next((p for p in pools if p.get("user_api") == "blas"), {})
    with threadpool_limits(limits=int(threads), user_api="blas"):
        g = gemm_gflops()
    print(json.dumps({"threads": int(threads), "gflops": g,
                      "architecture": blas.get("architecture"),
                      "internal_api": blas.get("internal_api"),
                      "env": {k: os.environ.get(k) for k in BLAS_PIN_VARS}}), flush=True)


def measure_peak(threads):
    """The real peak (pinning variables removed) at ``threads`` and 1 thread, and NumPy's
    rate under the inherited environment, each in its own process."""
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_PIN_VARS}
    out = {"real": {}, "inherited": {}}
    for t in sorted({1, threads}):
        out["real"][t] = _worker(["peak", str(t)], env=clean)[-1]
    out["inherited"] = _worker(["peak", str(threads)])[-1]
    return out


def worker_contention(name, repeats):
    """fastbp on ``name``: quiet at 1 thread and at the default count, then at the default
    count with one busy process spinning beside it."""
    import numba
    from _workloads import WORKLOADS, FastbpRunner, make_data

    w = WORKLOADS[name]
    X, y = make_data(w)
    r = FastbpRunner(w, X, y)
    r.epoch()
    default = numba.get_num_threads()

    def rate():
        times = []
        for _ in range(repeats):
            r.reset()
            t0 = time.perf_counter()
            r.epoch()
            times.append(time.perf_counter() - t0)
        return w.samples / _median(times)

    numba.set_num_threads(1)
    quiet_1 = rate()
    numba.set_num_threads(default)
    quiet_default = rate()
    busy = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
    try:
        time.sleep(0.5)
        busy_default = rate()
        numba.set_num_threads(1)
        busy_1 = rate()
    finally:
        busy.kill()
        busy.wait()
    print(json.dumps({"workload": name, "threads": default, "quiet_1": quiet_1,
                      "quiet_default": quiet_default, "busy_default": busy_default,
                      "busy_1": busy_1}), flush=True)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_memory(system, name):
    """Peak resident memory while training one epoch (after a warm-up epoch)."""
    from _workloads import RUNNERS, WORKLOADS, make_data

    w = WORKLOADS[name]
    X, y = make_data(w)
    r = RUNNERS[system](w, X, y)
    r.epoch()
    r.reset()
    import gc

    gc.collect()
    base = _rss_bytes()
    peak = [base]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    r.epoch()
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss_bytes())
    import resource

    res = {"baseline_mib": base / 2**20, "peak_mib": peak[0] / 2**20,
           "increase_mib": (peak[0] - base) / 2**20,
           "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps({"system": system, "workload": name, **res}), flush=True)
    return res


STARTUP_FASTBP = r"""
import time
t0 = time.perf_counter()
import fastbp
t1 = time.perf_counter()
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((50000, 64), dtype=np.float32)
y = rng.integers(0, 10, 50000)
t2 = time.perf_counter()
m = fastbp.Model([64, 32, 10], loss="cross_entropy", seed=0)
m.fit(X, y, batch_size=32, learning_rate=0.01, shuffle=False)
t3 = time.perf_counter()
print((t1 - t0) + (t3 - t2))
"""

STARTUP_JAX = r"""
import time, os, sys
t0 = time.perf_counter()
import jax
cache = os.environ.get("FASTBP_JAX_CACHE")
if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
t1 = time.perf_counter()
sys.path.insert(0, os.environ["FASTBP_BENCH_DIR"])
from _workloads import WORKLOADS, make_data, JaxRunner
w = WORKLOADS["small"]
X, y = make_data(w)
t2 = time.perf_counter()
r = JaxRunner(w, X, y)
r.epoch()
t3 = time.perf_counter()
print((t1 - t0) + (t3 - t2))
"""


def measure_startup(systems):
    """Cold (empty cache) and warm (cache filled by the cold run) import + first fit."""
    res = {}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTBP_BENCH_DIR=HERE)
    with tempfile.TemporaryDirectory() as d:
        if "fastbp" in systems:
            e = dict(env, NUMBA_CACHE_DIR=os.path.join(d, "numba"))
            times = [float(_run([sys.executable, "-c", STARTUP_FASTBP], e).split()[-1])
                     for _ in range(3)]
            res["fastbp"] = {"cold_s": times[0], "warm_s": _median(times[1:])}
        if "jax" in systems:
            e = dict(env, FASTBP_JAX_CACHE=os.path.join(d, "jax"))
            times = [float(_run([sys.executable, "-c", STARTUP_JAX], e).split()[-1])
                     for _ in range(3)]
            res["jax"] = {"cold_s": times[0], "warm_s": _median(times[1:])}
    return res


# ------------------------------------------------------------------------------ driver side
def _run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def _worker(args_list, env=None):
    out = _run([sys.executable, os.path.abspath(__file__), "--worker", *args_list], env=env)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def gemm_gflops(threads=None, n=2048, repeats=7):
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / _median(times) / 1e9


def machine_info():
    import numpy as np

    info = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "numpy": np.__version__,
            "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threading_layer"] = _run(
            [sys.executable, "-c", "import numba, numpy as np\n"
             "@numba.njit(parallel=True)\ndef f(a):\n    for i in numba.prange(a.size): a[i]=1\n"
             "f(np.zeros(4)); print(numba.threading_layer())"]).strip()
    except Exception as e:  # noqa: BLE001
        info["numba"] = f"? ({e})"
    for mod in ("torch", "jax", "jaxlib", "sklearn"):
        try:
            m = __import__(mod)
            info[mod] = m.__version__
        except Exception:  # noqa: BLE001
            pass
    return info


def _fmt(x, digits=3):
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.{digits}g}"


def write_chart(results, names, systems, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(systems)
    x = np.arange(len(names))
    for k, s in enumerate(systems):
        vals = [results.get(s, {}).get(n, {}).get("train_sps", np.nan) for n in names]
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


def render(data, h):
    """Markdown sections for one results.json (``h``: heading prefix)."""
    from _workloads import WORKLOADS, training_flops_per_sample

    info, results, scaling = data["info"], data["results"], data.get("scaling", {})
    startup, memory = data.get("startup", {}), data.get("memory", {})
    systems = data.get("systems") or list(results)
    names = data.get("names") or list(next(iter(results.values())))
    threads = data.get("threads", "?")
    skipped = data.get("skipped", [])
    gemm = data["gemm_gflops"]
    peak = data.get("peak")
    if peak:
        real = {int(t): v for t, v in peak["real"].items()}
        gflops = real[max(real)]["gflops"]
    else:  # an older results.json: the in-process NumPy rate
        gflops = _median(gemm)
    scaling = {n: {int(t): v for t, v in row.items()} for n, row in scaling.items()}
    counts = data.get("counts") or sorted({t for row in scaling.values() for t in row})
    L = []
    L.append(f"{h} Machine\n")
    L.append(f"- CPU: {info['cpu']}, {info['cores']} logical cores; {info['platform']}")
    L.append(f"- Python {info['python']}, NumPy {info['numpy']}, Numba {info.get('numba')} "
             f"(threading layer {info.get('numba_threading_layer', '?')}), "
             + ", ".join(f"{k} {info[k]}" for k in ("torch", "jax", "jaxlib", "sklearn")
                         if k in info))
    L.append(f"- threads per system: {threads} (fastbp: Numba threads; PyTorch: "
             "`torch.set_num_threads`; JAX/XLA and scikit-learn/OpenBLAS: their defaults)")
    if peak:
        inh = peak["inherited"]
        env = ", ".join(f"{k}={v}" for k, v in inh["env"].items() if v) or "none set"
        L.append(f"- **real peak** (roofline): NumPy float32 GEMM 2048^3 with "
                 f"{' and '.join(BLAS_PIN_VARS)} removed: "
                 + ", ".join(f"**{v['gflops']:.0f} GFLOP/s** at {t} thread{'s' * (t > 1)}"
                             for t, v in sorted(real.items()))
                 + f" (OpenBLAS kernels: {real[max(real)]['architecture']})")
        L.append(f"- under the inherited environment ({env}): {inh['gflops']:.0f} GFLOP/s "
                 f"(kernels: {inh['architecture']}); in-run NumPy samples: "
                 f"{', '.join(f'{g:.0f}' for g in gemm)}")
    else:
        L.append(f"- NumPy float32 GEMM (2048^3, median of the run): **{gflops:.0f} GFLOP/s**; "
                 f"samples: {', '.join(f'{g:.0f}' for g in gemm)}")
    if data.get("note"):
        L.append(f"- note: {data['note']}")
    if info.get("loadavg_start"):
        L.append(f"- load average (1/5/15 min) at the start: "
                 f"{', '.join(f'{x:.1f}' for x in info['loadavg_start'])}; at the end: "
                 f"{', '.join(f'{x:.1f}' for x in info.get('loadavg_end', []))} "
                 f"(above the core count means other processes shared the cores)")
    if skipped:
        L.append(f"- not installed, skipped: {', '.join(skipped)}")
    L.append("")
    L.append(f"{h} Training throughput (samples/s, one epoch of minibatch SGD, median)\n")
    hdr = "| workload | layers | batch | " + " | ".join(LABELS[s] for s in systems)
    hdr += " | fastbp / PyTorch | fastbp / JAX | peak roofline | fastbp % of peak |"
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    rows_targets = []
    for n in names:
        w = WORKLOADS[n]
        roof = gflops * 1e9 / training_flops_per_sample(w.sizes)
        f = results.get("fastbp", {}).get(n, {}).get("train_sps")
        t = results.get("torch", {}).get(n, {}).get("train_sps")
        j = results.get("jax", {}).get(n, {}).get("train_sps")
        rt = f / t if f and t else None
        rj = f / j if f and j else None
        rr = f / roof if f else None
        cells = [_fmt(results.get(s, {}).get(n, {}).get("train_sps")) for s in systems]
        L.append(f"| {n} | {'-'.join(map(str, w.sizes))} | {w.batch} | " + " | ".join(cells)
                 + f" | {_fmt(rt)}x | {_fmt(rj)}x | {_fmt(roof)} | "
                 + (f"{100 * rr:.0f}%" if rr else "—") + " |")
        rows_targets.append((n, rt, rj, rr))
    L.append("")
    L.append("Losses of the timed epoch (all systems start from the same weights and see the "
             "same batches, so they agree to float32 rounding):\n")
    L.append("| workload | " + " | ".join(LABELS[s] for s in systems) + " |")
    L.append("|---|" + "---|" * len(systems))
    for n in names:
        L.append(f"| {n} | " + " | ".join(
            f"{results.get(s, {}).get(n, {}).get('loss', float('nan')):.5f}" for s in systems)
            + " |")
    L.append("")
    L.append(f"{h} Targets\n")
    L.append("| workload | vs PyTorch (target) | vs JAX (target) | % of real peak (target) |")
    L.append("|---|---|---|---|")
    for n, rt, rj, rr in rows_targets:
        tt, tj, tr = TARGETS[n]

        def cell(v, goal, pct=False):
            if v is None:
                return "—"
            if goal is None:
                return (f"{100 * v:.0f}%" if pct else f"{v:.2f}x") + " (no target)"
            ok = "met" if v >= goal else "**missed**"
            if pct:
                return f"{100 * v:.0f}% (>= {100 * goal:.0f}%: {ok})"
            return f"{v:.2f}x (>= {goal}x: {ok})"

        L.append(f"| {n} | {cell(rt, tt)} | {cell(rj, tj)} | {cell(rr, tr, pct=True)} |")
    L.append("")
    L.append(f"{h} Inference throughput (predict, all samples of the workload, samples/s)\n")
    L.append("| workload | " + " | ".join(LABELS[s] for s in systems) + " | fastbp / PyTorch |")
    L.append("|---|" + "---|" * (len(systems) + 1))
    for n in names:
        f = results.get("fastbp", {}).get(n, {}).get("predict_sps")
        t = results.get("torch", {}).get(n, {}).get("predict_sps")
        L.append(f"| {n} | " + " | ".join(_fmt(results.get(s, {}).get(n, {}).get("predict_sps"))
                                         for s in systems)
                 + f" | {_fmt(f / t if f and t else None)}x |")
    L.append("")
    if scaling:
        L.append(f"{h} fastbp thread scaling (training samples/s)\n")
        L.append("| workload | " + " | ".join(f"{c} thr" for c in counts)
                 + " | speed-up | bitwise equal across thread counts |")
        L.append("|---|" + "---|" * (len(counts) + 2))
        for n in names:
            row = scaling.get(n, {})
            vals = [row.get(c, {}).get("sps") for c in counts]
            sp = vals[-1] / vals[0] if vals[0] and vals[-1] else None
            eq = all(row.get(c, {}).get("bitwise_equal_to_first", False) for c in counts)
            L.append(f"| {n} | " + " | ".join(_fmt(v) for v in vals)
                     + f" | {_fmt(sp)}x | {'yes' if eq else 'NO'} |")
        L.append("")
    busy = data.get("contention")
    if busy:
        r = busy["busy_default"] / busy["quiet_1"]
        L.append(f"{h} Busy neighbour: {busy['workload']}, one other process spinning on a "
                 f"core (training samples/s, median)\n")
        L.append("| quiet, 1 thread | quiet, default threads | busy, default threads | "
                 "busy, 1 thread | busy default / quiet 1 thread (target) |")
        L.append("|---|---|---|---|---|")
        L.append(f"| {_fmt(busy['quiet_1'])} | {_fmt(busy['quiet_default'])} "
                 f"({busy['threads']}) | {_fmt(busy['busy_default'])} | {_fmt(busy['busy_1'])} "
                 f"| {r:.2f}x (>= {BUSY_TARGET}: {'met' if r >= BUSY_TARGET else '**missed**'}) |")
        L.append("")
    if startup:
        L.append(f"{h} Start-up: `import` + first fit of the small workload (seconds)\n")
        L.append("| system | cold cache | warm cache |")
        L.append("|---|---|---|")
        for s, v in startup.items():
            L.append(f"| {LABELS[s]} | {v['cold_s']:.2f} | {v['warm_s']:.2f} |")
        L.append("\nfastbp: Numba's on-disk cache (cold = empty `NUMBA_CACHE_DIR`); JAX: its "
                 "persistent compilation cache (cold = empty cache directory).\n")
    if memory:
        L.append(f"{h} Memory: one training epoch of the mnist workload (MiB, resident)\n")
        L.append("| system | RSS before the epoch | peak RSS during the epoch | increase |")
        L.append("|---|---|---|---|")
        for s, v in memory.items():
            L.append(f"| {LABELS[s]} | {v['baseline_mib']:.0f} | {v['peak_mib']:.0f} | "
                     f"{v['increase_mib']:.1f} |")
        L.append("\nMeasured in a separate process per system, after a warm-up epoch "
                 "(RSS sampled every 0.5 ms); includes the data set (60,000 x 784 float32, "
                 "180 MiB) and each library's own footprint.\n")
    return L


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--workloads", default="tiny_online,small,mnist,wide")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="3 repeats")
    p.add_argument("--threads", type=int, default=None, help="threads per system (all cores)")
    p.add_argument("--scaling", default=None,
                   help="fastbp thread counts for the scaling table (default 1..cores, doubling)")
    p.add_argument("--no-startup", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-contention", action="store_true", help="skip the busy-neighbour run")
    p.add_argument("--out", default=HERE, help="folder for RESULTS.md and results.png")
    p.add_argument("--rerender", action="store_true",
                   help="measure nothing: rewrite RESULTS.md from OUT/results.json")
    p.add_argument("--note", default=None, help="a remark printed under the machine description")
    p.add_argument("--include", action="append", metavar="RESULTS_JSON=TITLE",
                   help="append the tables of an earlier run (e.g. another machine)")
    args = p.parse_args(argv)

    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "train":
            system, names, repeats, threads = rest
            worker_train(system, names.split(","), int(repeats),
                         None if threads == "none" else int(threads))
        elif kind == "scaling":
            names, counts, repeats = rest
            worker_scaling(names.split(","), [int(c) for c in counts.split(",")], int(repeats))
        elif kind == "memory":
            worker_memory(*rest)
        elif kind == "peak":
            worker_peak(*rest)
        elif kind == "contention":
            worker_contention(rest[0], int(rest[1]))
        return

    from _workloads import WORKLOADS, available

    if args.rerender:
        with open(os.path.join(args.out, "results.json")) as fh:
            data = json.load(fh)
        if args.note:
            data["note"] = args.note
        write_results(data, args)
        return

    repeats = 3 if args.quick else args.repeats
    names = args.workloads.split(",")
    systems = [s for s in args.systems.split(",") if available(s)]
    skipped = [s for s in args.systems.split(",") if s not in systems]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or cores
    os.makedirs(args.out, exist_ok=True)

    info = machine_info()
    print("machine:", info, flush=True)
    results = {}
    gemm = []
    for s in systems:
        gemm.append(gemm_gflops())
        print(f"numpy sgemm: {gemm[-1]:.1f} GFLOP/s", flush=True)
        results[s] = {}
        for rec in _worker(["train", s, ",".join(names), str(repeats), str(threads)]):
            results[s][rec["workload"]] = rec
            print(s, rec["workload"], f"{rec['train_sps']:.0f} samples/s", flush=True)
        # keep what is measured so far, in case a time limit stops the run
        with open(os.path.join(args.out, "results.partial.json"), "w") as fh:
            json.dump({"info": info, "gemm_gflops": gemm, "results": results}, fh, indent=1)
    gemm.append(gemm_gflops())
    gflops = _median(gemm)
    print(f"numpy sgemm (median over the run): {gflops:.1f} GFLOP/s", flush=True)
    peak = measure_peak(threads)
    print("peak:", json.dumps(peak), flush=True)
    contention = {}
    if "fastbp" in systems and not args.no_contention:
        contention = _worker(["contention", "mnist", str(repeats)])[-1]
        print("busy neighbour:", json.dumps(contention), flush=True)

    if args.scaling:
        counts = [int(c) for c in args.scaling.split(",")]
    else:
        counts, c = [], 1
        while c < cores:
            counts.append(c)
            c *= 2
        counts.append(cores)
    scaling = {}
    if "fastbp" in systems:
        for rec in _worker(["scaling", ",".join(names), ",".join(map(str, counts)),
                            str(repeats)]):
            scaling.setdefault(rec["workload"], {})[rec["threads"]] = rec

    startup = {} if args.no_startup else measure_startup(systems)
    memory = {}
    if not args.no_memory and "mnist" in WORKLOADS:
        for s in systems:
            if s == "sklearn":
                continue
            rec = _worker(["memory", s, "mnist"])[-1]
            memory[s] = rec

    if hasattr(os, "getloadavg"):
        info["loadavg_end"] = list(os.getloadavg())
    data = {"info": info, "gemm_gflops": gemm, "peak": peak, "contention": contention,
            "results": results, "scaling": scaling,
            "startup": startup, "memory": memory, "threads": threads, "names": names,
            "systems": systems, "skipped": skipped, "counts": counts}
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(data, fh, indent=1)
    write_results(data, args)


def write_results(data, args):
    info, results = data["info"], data["results"]
    systems = data.setdefault("systems", list(results))
    names = data.setdefault("names", list(next(iter(results.values()))))
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(data, fh, indent=1)
    L = ["# fastbp benchmark results\n",
         f"Generated by `benchmarks/report.py` on {info['date']}.\n"]
    L += render(data, "##")
    chart = os.path.join(args.out, "results.png")
    if write_chart(results, names, systems, chart):
        L.append("![training samples/s per workload and system](results.png)\n")
    for spec in args.include or []:
        path, _, title = spec.partition("=")
        with open(path) as fh:
            other = json.load(fh)
        L.append(f"## {title or path}\n")
        L += render(other, "###")
    md = "\n".join(L) + "\n"
    with open(os.path.join(args.out, "RESULTS.md"), "w") as fh:
        fh.write(md)
    print(md)


if __name__ == "__main__":
    main()
