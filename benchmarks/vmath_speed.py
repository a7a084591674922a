"""Speed and compile time of fastbp.kernels._vmath against NumPy's functions in @njit loops.

``python benchmarks/vmath_speed.py``            ns per element, 4096-element arrays
``python benchmarks/vmath_speed.py --compile``  CPU seconds to compile each function (each in
                                                a fresh process with an empty cache)

Every function is timed inside the same kind of compiled loop,
``for i in range(n): out[i] = f(x[i])``; the NumPy column calls ``np.exp`` and friends (scalar
calls into the C math library), the logistic row compares with ``1 / (1 + np.exp(-x))``.
The best of several repetitions is reported. Not a test: numbers depend on the machine.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

N = 4096
REPS = 2000
ROUNDS = 7

_OPS = ("exp", "log", "log1p", "tanh", "logistic")
#: input ranges typical of activations and losses
_RANGES = {
    "exp": (-10.0, 10.0), "log": (1e-3, 100.0), "log1p": (-0.9, 10.0),
    "tanh": (-5.0, 5.0), "logistic": (-10.0, 10.0),
}


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _loops():
    import numpy as np
    from numba import njit, types
    from numba.extending import intrinsic

    from fastbp.kernels._vmath import vexp, vlog, vlog1p, vlogistic, vtanh

    @intrinsic
    def prefer_512_bit_vectors(typingctx):
        def codegen(context, builder, signature, args):
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            return context.get_dummy_value()

        return types.none(), codegen

    def make(f):
        @njit(error_model="numpy", nogil=True)
        def run(x, out, reps):
            for _ in range(reps):
                for i in range(x.shape[0]):
                    out[i] = f(x[i])

        return run

    def make512(f):
        @njit(error_model="numpy", nogil=True)
        def run(x, out, reps):
            prefer_512_bit_vectors()
            for _ in range(reps):
                for i in range(x.shape[0]):
                    out[i] = f(x[i])

        return run

    @njit(inline="always")
    def np_logistic(x):
        return 1 / (1 + np.exp(-x))

    ours = (vexp, vlog, vlog1p, vtanh, vlogistic)
    return {
        "_vmath": dict(zip(_OPS, map(make, ours))),
        "_vmath512": dict(zip(_OPS, map(make512, ours))),
        "NumPy": dict(zip(_OPS, map(make, (np.exp, np.log, np.log1p, np.tanh, np_logistic)))),
    }


def speed():
    import numpy as np

    loops = _loops()
    rng = np.random.default_rng(0)
    print(f"ns per element, {N} elements, best of {ROUNDS} x {REPS} passes; _vmath512: the")
    print("loop's function allows 512-bit vectors (LLVM prefers 256-bit ones on most AVX-512 CPUs)")
    print(f"{'function':10s} {'dtype':8s} {'_vmath':>8s} {'_vmath512':>10s} {'NumPy':>8s} "
          f"{'speed-up':>9s}")
    for op in _OPS:
        for dt in (np.float32, np.float64):
            lo, hi = _RANGES[op]
            x = rng.uniform(lo, hi, N).astype(dt)
            out = np.empty_like(x)
            row = []
            for kind in ("_vmath", "_vmath512", "NumPy"):
                run = loops[kind][op]
                run(x, out, 1)
                best = np.inf
                for _ in range(ROUNDS):
                    t = time.perf_counter()
                    run(x, out, REPS)
                    best = min(best, time.perf_counter() - t)
                row.append(best / (REPS * N) * 1e9)
            print(f"{op:10s} {np.dtype(dt).name:8s} {row[0]:8.3f} {row[1]:10.3f} {row[2]:8.3f} "
                  f"{row[2] / row[0]:8.1f}x")


def _compile_one(name):
    """Compile ``name`` (e.g. ``exp32``) for its dtype and print the CPU seconds it took."""
    from numba import njit, types

    import fastbp.kernels._vmath as vm

    @njit
    def warm(x):
        return x + 1.0

    warm(1.0)  # Numba's one-off start-up cost, not the function's
    sig = (types.float32,) if name.endswith("32") else (types.float64,)
    t = _cpu()
    getattr(vm, name).compile(sig)
    print(f"{_cpu() - t:.3f}")


def compile_times():
    print("CPU seconds to compile (fresh process, empty NUMBA_CACHE_DIR)")
    for op in _OPS:
        row = []
        for bits in ("32", "64"):
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                out = subprocess.run(
                    [sys.executable, __file__, "--compile-one", op + bits], env=env,
                    check=True, capture_output=True, text=True,
                ).stdout
            row.append(float(out.split()[-1]))
        print(f"{op:10s} float32 {row[0]:6.3f}   float64 {row[1]:6.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compile", action="store_true", help="compile times instead of speed")
    ap.add_argument("--compile-one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.compile_one:
        _compile_one(a.compile_one)
    elif a.compile:
        compile_times()
    else:
        speed()
