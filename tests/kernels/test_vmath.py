"""Accuracy, special values, vectorisation and use from compiled code of
``fastbp.kernels._vmath``.

Accuracy is the distance, in units in the last place, from the correctly rounded result:
float32 results are compared with NumPy's float64 functions rounded to float32, float64
results with NumPy's extended-precision (x87 long double) functions rounded to float64.
float32 inputs are every 509th bit pattern (8.4 million values, every sign and exponent)
plus dense runs where results turn subnormal or overflow; float64 inputs are a stride through
all bit patterns plus uniform samples of the ranges where the functions do their work.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np
import pytest
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

import fastbp
from fastbp.kernels import _vmath as vm

OPS = ("exp", "log", "log1p", "tanh", "logistic")
MAX_ULP = 2


def _loop(f):
    # not cache=True: a cached loop would keep the code of an older _vmath
    @njit(error_model="numpy", nogil=True)
    def run(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return run


LOOPS = {op: _loop(getattr(vm, "v" + op)) for op in OPS}


def _apply(op, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    LOOPS[op](x, out)
    return out


def _reference(op, x):
    """``op`` in a wider float type (float64 for float32, long double for float64)."""
    with np.errstate(all="ignore"):
        if op == "logistic":
            return 1 / (1 + np.exp(-x))
        return getattr(np, op)(x)


def _correctly_rounded(op, x):
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(over="ignore", invalid="ignore"):
        return _reference(op, x.astype(wide)).astype(x.dtype)


def _ordinal(y):
    """Integers that count representable values: consecutive floats differ by 1, +-0 are 0."""
    itype = np.int32 if y.dtype == np.float32 else np.int64
    b = y.view(itype).astype(np.int64)
    return np.where(b < 0, np.iinfo(itype).min - b, b)


def ulp_error(y, ref):
    """Distance of ``y`` from ``ref`` in ulp; inf where one is NaN or infinite and the other
    is not (overflowing to the largest float instead of inf, say)."""
    d = np.abs(_ordinal(y) - _ordinal(ref)).astype(np.float64)
    yn, rn = np.isnan(y), np.isnan(ref)
    d[yn & rn] = 0
    d[yn != rn] = np.inf
    mismatch = (np.isinf(y) | np.isinf(ref)) & ~(yn | rn) & (y != ref)
    d[mismatch] = np.inf
    return d


def _check(op, x):
    y = _apply(op, x)
    d = ulp_error(y, _correctly_rounded(op, x))
    i = int(np.argmax(d))
    assert d[i] <= MAX_ULP, f"{op}({x[i]!r}) = {y[i]!r}, {d[i]} ulp from correctly rounded"
    return d


def _f32_values(lo, hi, step=1):
    """Every ``step``-th float32 in [lo, hi] (lo, hi of one sign)."""
    a, b = np.array([lo, hi], np.float32).view(np.int32)
    a, b = min(a, b), max(a, b)
    return np.arange(a, b + 1, step, dtype=np.int32).view(np.float32)


# ---------------------------------------------------------------------------- accuracy

# where results turn subnormal, overflow, or the method changes
_DENSE32 = {
    "exp": [(-104.0, -87.0, 3), (88.0, 89.0, 1), (-1e-3, -1e-9, 1009), (1e-9, 1e-3, 1009)],
    "log": [(1e-45, 1.2e-38, 97), (0.5, 2.0, 17)],
    "log1p": [(-1.0, -0.25, 17), (-1e-3, -1e-30, 1009), (1e-30, 1e-3, 1009), (0.25, 2.0, 17)],
    "tanh": [(0.5, 0.6, 3), (-0.6, -0.5, 3), (1e-30, 0.55, 1009), (8.5, 10.0, 3)],
    "logistic": [(-104.0, -86.0, 3), (-20.0, -1e-6, 307), (1e-6, 20.0, 307)],
}


@pytest.mark.parametrize("op", OPS)
def test_float32_accuracy(op):
    x = np.arange(0, 1 << 32, 509, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x] + [_f32_values(*r) for r in _DENSE32[op]])
    d = _check(op, x)
    assert np.isfinite(d).all()


_RANGES64 = {
    "exp": [(-746.0, 710.0), (-1.0, 1.0), (-745.2, -708.0), (709.0, 709.8)],
    "log": [(0.0, 4.0), (0.7, 1.5), (0.0, 1e-300), (1.0, 1e300)],
    "log1p": [(-1.0, 1.0), (-1e-6, 1e-6), (-0.3, 0.5), (1.0, 1e20)],
    "tanh": [(-1.0, 1.0), (0.5, 0.6), (-20.0, 20.0), (-1e-5, 1e-5)],
    "logistic": [(-40.0, 40.0), (-746.0, -700.0), (-2.0, 2.0)],
}

_LONG_DOUBLE = np.finfo(np.longdouble).nmant >= 63


@pytest.mark.skipif(not _LONG_DOUBLE, reason="needs an 80-bit (or wider) np.longdouble")
@pytest.mark.parametrize("op", OPS)
def test_float64_accuracy(op):
    n = 1 << 20
    stride = np.uint64((1 << 64) // n | 1)
    x = (np.arange(n, dtype=np.uint64) * stride + np.uint64(12345)).view(np.float64)
    rng = np.random.default_rng(7)
    x = np.concatenate([x] + [rng.uniform(lo, hi, 200_000) for lo, hi in _RANGES64[op]])
    d = _check(op, x)
    assert np.isfinite(d[~np.isnan(x)]).all()


# ------------------------------------------------------------------------ special values

_NANS32 = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF], np.uint32).view(np.float32)
_NANS64 = np.array(
    [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001], np.uint64
).view(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_nan_in_nan_out(op, dtype):
    nans = _NANS32 if dtype == np.float32 else _NANS64
    assert np.isnan(_apply(op, nans)).all()


_INF = np.inf
# (op, x, expected): signed zeros are compared with their sign
_SPECIAL = [
    ("exp", -_INF, 0.0), ("exp", _INF, _INF), ("exp", 0.0, 1.0), ("exp", -0.0, 1.0),
    ("exp", 1e4, _INF), ("exp", -1e4, 0.0),
    ("log", 0.0, -_INF), ("log", -0.0, -_INF), ("log", -1.0, np.nan), ("log", -_INF, np.nan),
    ("log", _INF, _INF), ("log", 1.0, 0.0),
    ("log1p", -1.0, -_INF), ("log1p", -2.0, np.nan), ("log1p", -_INF, np.nan),
    ("log1p", _INF, _INF), ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0),
    ("tanh", _INF, 1.0), ("tanh", -_INF, -1.0), ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0),
    ("tanh", 30.0, 1.0), ("tanh", -30.0, -1.0),
    ("logistic", -_INF, 0.0), ("logistic", _INF, 1.0), ("logistic", 0.0, 0.5),
    ("logistic", -0.0, 0.5), ("logistic", 1e4, 1.0), ("logistic", -1e4, 0.0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    for op, x, want in _SPECIAL:
        got = _apply(op, np.array([x], dtype))[0]
        ok = np.isnan(got) if np.isnan(want) else (
            got == want and np.signbit(got) == np.signbit(want))
        assert ok, f"{op}({x}) = {got!r} in {np.dtype(dtype).name}, expected {want!r}"
        if op != "logistic":  # and NumPy agrees
            with np.errstate(all="ignore"):
                ref = getattr(np, op)(np.array([x], dtype))[0]
            assert np.isnan(ref) if np.isnan(want) else ref == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflow_underflow_boundaries(dtype):
    """exp and logistic around the last finite, last nonzero and first subnormal results."""
    info = np.finfo(dtype)
    one = dtype(1)
    for edge in (np.log(info.max), np.log(info.smallest_subnormal) - np.log(2),
                 np.log(info.smallest_normal)):
        x = dtype(edge)
        xs = [x]
        for _ in range(64):
            xs = [np.nextafter(xs[0], -np.inf * one)] + xs + [np.nextafter(xs[-1], np.inf * one)]
        _check("exp", np.array(xs, dtype))
        _check("logistic", np.array(xs, dtype))
    # results below half the smallest subnormal are 0, above the largest float inf
    assert _apply("exp", np.array([np.log(info.max) * 1.001], dtype))[0] == np.inf
    assert _apply("exp", np.array([np.log(info.smallest_subnormal) - 1], dtype))[0] == 0


# ------------------------------------------------------------------------ vectorisation

def _host_has(feature):
    return llvm.get_host_cpu_features().get(feature, False)


@intrinsic
def _prefer_512_bit_vectors(typingctx):
    """Let LLVM use 512-bit vectors in the calling function (its default tuning for most
    AVX-512 CPUs prefers 256-bit ones)."""

    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


def _loop512(f):
    @njit(error_model="numpy", nogil=True)
    def run(x, out):
        _prefer_512_bit_vectors()
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return run


def _vector_ir(run, x):
    out = np.empty_like(x)
    run(x, out)
    sig = [s for s in run.signatures if str(s[0].dtype) == x.dtype.name][0]
    ir = run.inspect_llvm(sig)
    called = set(re.findall(r"call [^@]*@([\w.$]+)\(", ir))
    math_calls = {c for c in called if re.match(r"(llvm\.(exp|log|pow|tanh)|(exp|log|tanh))", c)}
    assert not math_calls, f"calls {math_calls}"
    return ir


@pytest.mark.skipif(not _host_has("avx2"), reason="the host CPU has no AVX2")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_loops_are_vectorised(op, dtype):
    """LLVM turns ``out[i] = f(x[i])`` into SIMD code with no call left but LLVM intrinsics
    that are single instructions (fma, fabs, copysign): 256-bit vectors by default, 512-bit
    ones where the caller allows them on an AVX-512 CPU."""
    x = np.linspace(-2, 2, 64).astype(dtype)
    ty, lanes = ("float", 8) if dtype == np.float32 else ("double", 4)
    ir = _vector_ir(LOOPS[op], x)
    assert f"<{lanes} x {ty}>" in ir or f"<{2 * lanes} x {ty}>" in ir, f"{op}: not vectorised"
    if _host_has("avx512f"):
        ir = _vector_ir(_loop512(getattr(vm, "v" + op)), x)
        assert f"<{2 * lanes} x {ty}>" in ir, f"{op}: no 512-bit vectors"


# ------------------------------------------------------------------------------------ API

def test_dtype_specific_functions_and_generic_names():
    """From Python too (Numba returns a Python float, holding a float32 value for float32)."""
    x32, x64 = np.float32(0.75), 0.75
    for op in OPS:
        f32, f64, gen = getattr(vm, op + "32"), getattr(vm, op + "64"), getattr(vm, "v" + op)
        y = f32(x32)
        assert np.float32(y) == y == _apply(op, np.array([x32]))[0] == gen(x32)
        assert f64(x64) == _apply(op, np.array([x64]))[0] == gen(x64) == gen(np.float64(x64))
    with pytest.raises(TypeError):
        vm.vexp(1)


def test_wrong_type_is_a_typing_error():
    @njit
    def f(x):
        return vm.exp32(x)

    @njit
    def g(x):
        return vm.vtanh(x)

    with pytest.raises(TypingError):
        f(1.5)  # float64 into the float32 function
    with pytest.raises(TypingError):
        g(3)  # an integer


def test_generic_names_compile_to_the_dtype_functions():
    @njit(error_model="numpy")
    def both(a, b):
        return vm.vlogistic(a), vm.logistic32(a), vm.vlogistic(b), vm.logistic64(b)

    r = both(np.float32(-0.3), -0.3)
    assert r[0] == r[1] and r[2] == r[3]
    assert [str(t) for t in both.nopython_signatures[0].return_type] == [
        "float32", "float32", "float64", "float64"]


USER_MODULE = textwrap.dedent('''
    import numpy as np
    from numba import njit
    from fastbp.kernels._vmath import vtanh


    @njit(cache=True, error_model="numpy")
    def user(x):
        s = x.dtype.type(0)
        for i in range(x.shape[0]):
            s += vtanh(x[i])
        return s


    x = np.linspace(-3, 3, 101).astype(np.float32)
    print(repr(float(user(x))), sum(user.stats.cache_hits.values()))
''')


def test_cached_user_function_calling_generic_names(tmp_path):
    """A user's ``cache=True`` function that calls ``vtanh`` runs again from its cache."""
    script = tmp_path / "user_vmath.py"
    script.write_text(USER_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    root = str(Path(fastbp.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    outputs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout.split())
    assert outputs[0][0] == outputs[1][0]
    assert outputs[0][1] == "0" and outputs[1][1] == "1"  # compiled, then loaded
