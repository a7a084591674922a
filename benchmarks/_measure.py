"""The measuring side of ``report.py``: every measurement runs in its own subprocess.

``measure(args)`` runs them all and returns the run's data (``results.json``); each
subprocess is this file run as a script (``python _measure.py KIND ...``, see ``worker``),
printing its results as JSON lines. Every system runs in its own process, so that no two
thread pools (Numba's, PyTorch's OpenMP, XLA's) ever share the cores, and so that memory is
measured per system. See ``report.py`` for what is measured and how.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

SYSTEMS = ["fastbp", "torch", "jax", "sklearn"]
#: variables that pin OpenBLAS to a core type; removed (only) where the peak is measured
BLAS_PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# ------------------------------------------------------------------------------ workers
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
        r.predict(X)  # warm-up at the timed size: buffers sized, JAX compiled for this shape
        ptimes = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r.predict(X)
            ptimes.append(time.perf_counter() - t0)
        out[name] = {
            "train_sps": w.samples / median(times),
            "train_times": times,
            "predict_sps": X.shape[0] / median(ptimes),
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
            res[name][t] = {"sps": w.samples / median(times),
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
        return w.samples / median(times)

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


def measure_startup(systems):
    """Cold (empty cache) and warm (cache filled by the cold run) import + first fit."""
    res = {}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    probe = [sys.executable, os.path.join(HERE, "_startup_probe.py")]
    with tempfile.TemporaryDirectory() as d:
        if "fastbp" in systems:
            e = dict(env, NUMBA_CACHE_DIR=os.path.join(d, "numba"))
            times = [float(_run([*probe, "fastbp"], e).split()[-1]) for _ in range(3)]
            res["fastbp"] = {"cold_s": times[0], "warm_s": median(times[1:])}
        if "jax" in systems:
            e = dict(env, FASTBP_JAX_CACHE=os.path.join(d, "jax"))
            times = [float(_run([*probe, "jax"], e).split()[-1]) for _ in range(3)]
            res["jax"] = {"cold_s": times[0], "warm_s": median(times[1:])}
    return res


# ------------------------------------------------------------------------------ driver
def _run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def _worker(args_list, env=None):
    out = _run([sys.executable, os.path.abspath(__file__), *args_list], env=env)
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
    return 2 * n**3 / median(times) / 1e9


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


def measure(args) -> dict:
    """Run every measurement the options ``args`` (``report.py``'s) ask for; the run's data
    (what ``results.json`` holds)."""
    from _workloads import WORKLOADS, available

    repeats = 3 if args.quick else args.repeats
    names = args.workloads.split(",")
    systems = [s for s in args.systems.split(",") if available(s)]
    skipped = [s for s in args.systems.split(",") if s not in systems]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or cores

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
    gflops = median(gemm)
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
    return {"info": info, "gemm_gflops": gemm, "peak": peak, "contention": contention,
            "results": results, "scaling": scaling,
            "startup": startup, "memory": memory, "threads": threads, "names": names,
            "systems": systems, "skipped": skipped, "counts": counts}


def worker(argv) -> None:
    """One measurement in this process (``python _measure.py KIND ...``), as JSON lines."""
    kind, *rest = argv
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
    else:
        raise SystemExit(f"unknown measurement {kind!r}")


if __name__ == "__main__":
    worker(sys.argv[1:])
