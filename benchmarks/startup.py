"""Start-up cost: CPU-seconds of a fresh process until its first fit, cold and warm.

Every figure is measured in a new Python process (``python -c ...``), so nothing is shared
with this one: *cold* runs get an empty ``NUMBA_CACHE_DIR`` (what a new user's first run
pays: Numba compiles fastbp's kernels), *warm* runs reuse the cache the cold run filled.
CPU-seconds are user + system time of the child (``resource.getrusage``), which, unlike
wall time, do not depend on how busy the machine is.

    python benchmarks/startup.py            # table on stdout
    python benchmarks/startup.py --profile  # + the compile profile of a cold first fit
    python benchmarks/startup.py --json out.json

Steps, each in one process, in order (each line is the increment over the previous one):

- ``import``: ``import fastbp``
- ``first fit + predict``: a float32 ``Model([64, 32, 10], relu, cross_entropy)``, 2 epochs
  of SGD on 512 rows, then ``predict``
- ``+ float64``, ``+ adam``, ``+ tanh / squared_error``: further configurations
- ``+ MLPClassifier``: the scikit-learn estimator's first fit (adam)

``python -m fastbp warmup`` (both dtypes, estimators included, one process per dtype) is
timed on its own empty cache: wall seconds and the CPU-seconds of its processes.

JAX's cold start (``jax.jit`` of an equivalent training step, its own compile cache empty)
is measured the same way when JAX is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

CHILD = textwrap.dedent(
    r"""
    import json, resource, sys, time
    t_start = time.perf_counter()

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    steps = []
    def mark(name, c0, w0):
        steps.append({"step": name, "cpu": cpu() - c0, "wall": time.perf_counter() - w0})

    profile = {}
    if PROFILE:
        from numba.core import event

        class Listener(event.Listener):
            def __init__(self):
                self.start = {}
            def on_start(self, ev):
                self.start[id(ev.data["dispatcher"]), str(ev.data["args"])] = time.perf_counter()
            def on_end(self, ev):
                key = id(ev.data["dispatcher"]), str(ev.data["args"])
                name = ev.data["dispatcher"].py_func.__qualname__
                dt = time.perf_counter() - self.start.pop(key, time.perf_counter())
                p = profile.setdefault(name, [0, 0.0])
                p[0] += 1
                p[1] += dt
        event.register("numba:compile", Listener())

    c0, w0 = cpu(), time.perf_counter()
    import numpy as np
    import fastbp
    mark("import", c0, w0)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=512)

    def first_fit(model_kw, fit_kw):
        m = fastbp.Model([64, 32, 10], seed=0, **model_kw)
        target = y if m.loss == "cross_entropy" else np.eye(10)[y]
        m.fit(X, target, epochs=2, batch_size=32, **fit_kw)
        m.predict(X)

    c0, w0 = cpu(), time.perf_counter()
    first_fit(dict(activation="relu", loss="cross_entropy"), {})
    mark("first fit + predict", c0, w0)
    steps[-1]["since_start"] = time.perf_counter() - t_start
    if not WARM_ONLY:
        for name, kw, fit in (
            ("+ float64", dict(activation="relu", loss="cross_entropy", dtype="float64"), {}),
            ("+ adam", dict(activation="relu", loss="cross_entropy"), {"optimizer": "adam"}),
            ("+ tanh / squared_error", dict(activation="tanh", loss="squared_error"), {}),
        ):
            c0, w0 = cpu(), time.perf_counter()
            first_fit(kw, fit)
            mark(name, c0, w0)
        try:
            from fastbp.sklearn import MLPClassifier
        except ImportError:
            pass
        else:
            c0, w0 = cpu(), time.perf_counter()
            MLPClassifier((32,), max_iter=2).fit(X, y)
            mark("+ MLPClassifier", c0, w0)
    print("STARTUP-RESULT " + json.dumps({"steps": steps, "profile": profile,
                                          "total_cpu": cpu()}))
    """
)

JAX_CHILD = textwrap.dedent(
    r"""
    import json, resource, time
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    c0, w0 = cpu(), time.perf_counter()
    import jax, jax.numpy as jnp
    import numpy as np
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(512, 64)).astype(np.float32))
    Y = jnp.asarray(np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=512)])
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    p = [jax.random.normal(k[0], (64, 32)) * 0.1, jnp.zeros(32),
         jax.random.normal(k[1], (32, 10)) * 0.1, jnp.zeros(10)]
    def loss(p, x, t):
        h = jax.nn.relu(x @ p[0] + p[1])
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(h @ p[2] + p[3]), axis=1))
    @jax.jit
    def epoch(p, X, Y):
        def step(p, xy):
            g = jax.grad(loss)(p, *xy)
            return [a - 0.01 * b for a, b in zip(p, g)], None
        p, _ = jax.lax.scan(step, p, (X.reshape(16, 32, 64), Y.reshape(16, 32, 10)))
        return p
    for _ in range(2):
        p = epoch(p, X, Y)
    jax.block_until_ready(p)
    jax.jit(lambda p, x: jax.nn.softmax(jax.nn.relu(x @ p[0] + p[1]) @ p[2] + p[3]))(p, X)
    print("STARTUP-RESULT " + json.dumps({"steps": [{"step": "JAX import + first fit",
          "cpu": cpu() - c0, "wall": time.perf_counter() - w0}]}))
    """
)


def run_child(code: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("STARTUP-RESULT "):
            return json.loads(line[len("STARTUP-RESULT "):])
    raise RuntimeError(f"child failed:\n{proc.stdout}\n{proc.stderr}")


def measure_warmup() -> dict:
    """Wall and CPU seconds (all processes) of ``python -m fastbp warmup``, cold cache."""
    import resource

    with tempfile.TemporaryDirectory(prefix="fastbp-warmup-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastbp", "warmup"], env=env, check=True,
                       capture_output=True, timeout=1800)
        wall = time.perf_counter() - w0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "cpu": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)}


def measure(profile: bool = False, jax: bool = True, warmup: bool = True) -> dict:
    out = {}
    if warmup:
        out["warmup"] = measure_warmup()
    with tempfile.TemporaryDirectory(prefix="fastbp-startup-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        head = f"PROFILE = {profile}\n"
        out["cold"] = run_child(head + "WARM_ONLY = False\n" + CHILD, env)
        out["warm"] = run_child("PROFILE = False\nWARM_ONLY = True\n" + CHILD, env)
    if jax:
        try:
            import jax  # noqa: F401
        except ImportError:
            pass
        else:
            with tempfile.TemporaryDirectory(prefix="jax-startup-") as cache:
                env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
                out["jax"] = run_child(JAX_CHILD, env)
    return out


def report(res: dict) -> str:
    lines = ["| step | cold CPU-s | cold wall s | warm CPU-s | warm wall s |",
             "|---|---|---|---|---|"]
    warm = {s["step"]: s for s in res["warm"]["steps"]}
    for s in res["cold"]["steps"]:
        w = warm.get(s["step"])
        wc = f"{w['cpu']:.2f}" if w else "—"
        ww = f"{w['wall']:.2f}" if w else "—"
        lines.append(f"| {s['step']} | {s['cpu']:.2f} | {s['wall']:.2f} | {wc} | {ww} |")
    cold_first = sum(s["cpu"] for s in res["cold"]["steps"][:2])
    lines.append("")
    lines.append(f"cold `import fastbp` + first fit + predict: {cold_first:.1f} CPU-s; whole "
                 f"cold process {res['cold']['total_cpu']:.1f} CPU-s")
    wf = res["warm"]["steps"][1]
    lines.append(f"warm: process start to first fit done {wf['since_start']:.2f} s wall")
    if "warmup" in res:
        w = res["warmup"]
        lines.append(f"`python -m fastbp warmup` (float32 + float64, estimators included), "
                     f"empty cache: {w['wall']:.1f} s wall, {w['cpu']:.1f} CPU-s")
    if "jax" in res:
        j = res["jax"]["steps"][0]
        lines.append(f"JAX (cold): import + jit of an equivalent epoch and predict: "
                     f"{j['cpu']:.1f} CPU-s, {j['wall']:.1f} s wall")
    prof = res["cold"].get("profile")
    if prof:
        lines += ["", "Compile profile of the cold process (inclusive seconds per function, "
                  "signatures compiled):", ""]
        for name, (n, t) in sorted(prof.items(), key=lambda kv: -kv[1][1])[:30]:
            lines.append(f"- `{name}`: {t:.2f} s ({n})")
        lines.append(f"- {len(prof)} functions, {sum(v[0] for v in prof.values())} "
                     "signatures in all")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true", help="record Numba's compile events")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--no-warmup", action="store_true", help="skip timing the warmup command")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = measure(profile=args.profile, jax=not args.no_jax, warmup=not args.no_warmup)
    print(report(res))
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
