"""Branch-free exp, log, log1p, tanh and logistic for float32 and float64 scalars.

The functions here are ``@njit`` functions meant to be called from other compiled loops in
place of ``np.exp``, ``np.log``, ``np.log1p`` and ``np.tanh``. Those NumPy functions compile
to calls into the C math library, one scalar call per element, which keeps LLVM from
vectorising the loop around them. The functions below contain no calls, no branches that
depend on the data (every special case is a select) and only arithmetic that LLVM vectorises,
reinterpreting a float's bits as an integer included, so that a loop such as
``for i in range(n): out[i] = vexp(x[i])`` becomes SIMD code once LLVM has inlined the call.

API
---
``exp32``, ``log32``, ``log1p32``, ``tanh32``, ``logistic32`` take and return ``float32``;
``exp64``, ``log64``, ``log1p64``, ``tanh64``, ``logistic64`` take and return ``float64``.
``vexp``, ``vlog``, ``vlog1p``, ``vtanh`` and ``vlogistic`` take either type and call the
function for it; they add no code of their own, so a dtype-generic kernel can use them.
``logistic(x) = 1 / (1 + exp(-x))``. Passing an argument of the wrong type (an integer, or a
float64 to ``exp32``) is a typing error, not a silent conversion.

Accuracy and special values
---------------------------
Measured distance from the correctly rounded result: at most 1 ulp for every one of the
2**32 float32 inputs of each function (reference: NumPy's float64 functions, rounded), and at
most 1 ulp on about 400 million float64 inputs per function, over the whole range and densely
where the functions do their work (reference: NumPy's long double functions, rounded).
``tests/kernels/test_vmath.py`` checks at most 2 ulp on millions of inputs per function. Subnormal
results are produced (within the same bound), not flushed to zero. Special values follow
NumPy: a NaN argument gives NaN; ``exp(-inf) = 0``,
``exp(inf) = inf``, results beyond the range overflow to ``inf`` or underflow to 0;
``log(0) = -inf``, ``log(x < 0) = nan``, ``log(inf) = inf``, and the same for ``log1p`` at
``-1``, below ``-1`` and at ``inf``; ``log1p(-0.0) = -0.0``; ``tanh(+-inf) = +-1`` and
``tanh(-0.0) = -0.0``; ``logistic(-inf) = 0`` and ``logistic(inf) = 1``.

Method
------
exp
    ``x = n ln2 + r`` with ``n`` the integer nearest ``x / ln2`` (added to ``1.5 * 2**23``,
    resp. ``1.5 * 2**52``, so that the sum's low mantissa bits are ``n`` itself) and
    ``|r| <= ln2 / 2``; ``r`` is computed with ``ln2`` split into a short ``ln2_hi``, whose
    product with ``n`` is exact, and ``ln2_lo`` (Cody and Waite). Then
    ``exp(r) = 1 + r (1 + r Q(r))`` with ``Q`` of degree 4 (float32) or 10 (float64), and the
    result is ``exp(r) * 2**n1 * 2**n2`` with ``n1 = n >> 1``, ``n2 = n - n1``: two exact
    powers of two built from their bits, so that results between the largest float and the
    smallest subnormal are rounded once. Arguments are clamped to ``[-104, 88.8]``
    (float32) or ``[-746, 710]`` (float64) first, beyond which the result is 0 or ``inf``
    anyway; the clamp lets NaN through.
log
    ``x = 2**k m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, taken from the bits (subnormal
    ``x`` are first scaled by ``2**23``, resp. ``2**54``), ``f = m - 1`` and
    ``log(x) = k ln2_hi + (f + (k ln2_lo + log1p(f) - f))``. float32:
    ``log1p(f) = f - f**2 / 2 + f**3 P(f)``, ``P`` of degree 7. float64 (the method of
    fdlibm's ``log``): ``s = f / (2 + f)``, ``log1p(f) = 2 atanh(s) = 2s + s z h(z)`` with
    ``z = s**2`` and ``h`` of degree 6, evaluated as
    ``f - (f**2 / 2 - s (f**2 / 2 + z h(z)))``.
log1p
    ``u = 1 + x`` is rounded; the rounding error ``e = 1 + x - u`` is recovered exactly (the
    two-sum of Knuth) and ``u = 2**k m`` as for log, so that
    ``log1p(x) = k ln2 + log1p(f)`` with ``f = m - 1 + e 2**-k``. ``f`` equals ``x`` exactly
    when ``k = 0``, so small arguments lose nothing. The polynomials are those of log.
tanh
    ``a = |x|``. For ``a < 0.55``: ``tanh(a) = a + a**3 T(a**2)``, ``T`` of degree 4
    (float32) or 10 (float64). Otherwise ``tanh(a) = 1 - 2 / (E + 1)``, ``E = exp(2a)`` as
    above with ``a`` clamped to 9.5 (float32) or 20 (float64), beyond which ``tanh`` rounds
    to 1. Both are computed and one is selected; the sign of ``x`` is copied onto the result.
logistic
    ``e = exp(-|x|)`` (never overflows) and ``logistic(x) = 1 / (1 + e)`` for ``x >= 0``,
    ``e / (1 + e)`` otherwise, by one division.
division
    tanh and logistic divide by ``d = 1 + e``. The rounding error of ``d`` is recovered
    exactly (fast two-sum) and that of the quotient ``q = num / d`` from the exact remainder
    ``num - q d`` (one fused multiply-add), and ``q`` is corrected by one Newton step, so
    that the result carries little more than the error of ``e`` and one final rounding.

Coefficients
------------
``Q``, ``P``, ``h`` and ``T`` are minimax polynomials computed for this module with a
Remez exchange in 80-digit arithmetic (mpmath), then rounded to the working precision.
Weights: the relative error of ``exp(r)`` on ``|r| <= ln2 / 2``, of ``log1p(f)`` on
``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]`` and of ``tanh(a)`` on ``a < 0.55``; the absolute
error of ``h`` on ``z <= (3 - 2 sqrt(2))**2`` (``|s| <= 0.1716``). The intervals are widened
by a few units in the last place to cover rounding in the reductions. Errors of the
polynomials after rounding of their coefficients, relative to the function each serves:
exp ``2**-28.0`` (float32) and ``2**-60.3`` (float64), log ``2**-27.2`` and ``2**-57.6``,
tanh ``2**-27.8`` and ``2**-58.4``.

Compilation
-----------
``error_model="numpy"`` (a division by zero gives inf or NaN, not an exception) and no
fast-math flags. Even ``contract`` (letting LLVM fuse a multiply and an add) is left out:
whether LLVM fuses an expression depends on the code it was inlined into, so the same
function compiled into two callers (or compiled in this process and loaded from the cache)
could round differently. ``reassoc`` would undo the rounding by ``1.5 * 2**23`` and the
two-sums, ``nnan``/``ninf`` would let LLVM drop the selects for special values, ``nsz`` would
lose ``-0.0`` and ``arcp`` would round divisions twice. The errors above hold without
fusion (the tests measure them). Bits are reinterpreted by tiny
intrinsics (``bitcast``); Numba widens int32 arithmetic to int64, and LLVM narrows it back
for float32. The exact remainder of a division uses ``llvm.fma``: a single instruction on
every x86-64 CPU with FMA (since 2013) and on AArch64; on a CPU without FMA, LLVM would
call the C library's ``fma`` there instead.

Each public function is compiled on first use and cached on disk (``cache=True``); the
shared pieces are inlined into it by Numba (``inline="always"``), so that there is one
compiled function per operation and type. Called from another compiled function, it is
linked into the caller and inlined by LLVM, which then vectorises the caller's loop. The
dispatchers can also be called from Python (the result is then a Python float, holding a
float32 value for the float32 functions), which is slow: use them in compiled loops.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, lower_builtin, type_callable

from ._cache import njit
from ._llvm import always_inline

__all__ = [
    "exp32", "exp64", "log32", "log64", "log1p32", "log1p64", "tanh32", "tanh64",
    "logistic32", "logistic64", "vexp", "vlog", "vlog1p", "vtanh", "vlogistic",
]

# entry: callable from Python too (scalars: the wrapper costs little to compile)
_JIT = dict(cache=True, nogil=True, error_model="numpy", entry=True)


# -- bit reinterpretation ---------------------------------------------------------------------

def _to_bits(ftype, bits):
    """An intrinsic: the bits of a ``ftype`` value as an int of ``bits`` bits."""
    itype = getattr(types, f"int{bits}")

    @intrinsic
    def to_bits(typingctx, x):
        if x != ftype:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(bits))

        return itype(x), codegen

    return to_bits


def _from_bits(ftype, bits, lltype):
    """An intrinsic: the ``ftype`` value whose bits are integer ``i`` (truncated or
    sign-extended to ``bits`` bits)."""

    @intrinsic
    def from_bits(typingctx, i):
        if not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            v = args[0]
            if i.bitwidth > bits:
                v = builder.trunc(v, ir.IntType(bits))
            elif i.bitwidth < bits:
                v = builder.sext(v, ir.IntType(bits))
            return builder.bitcast(v, lltype)

        return ftype(i), codegen

    return from_bits


_f32_bits = _to_bits(types.float32, 32)
_f64_bits = _to_bits(types.float64, 64)
_bits_f32 = _from_bits(types.float32, 32, ir.FloatType())
_bits_f64 = _from_bits(types.float64, 64, ir.DoubleType())


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``), for three float32 or three float64."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


# -- constants --------------------------------------------------------------------------------
# Numba freezes module-level NumPy scalars as typed constants: every float32 constant below is
# an np.float32, so that float32 arithmetic stays float32.

_f = np.float32

_ZERO32, _HALF32, _ONE32, _TWO32 = _f(0.0), _f(0.5), _f(1.0), _f(2.0)
_INF32 = _f(np.inf)
_NAN32 = _f(np.nan)
_LOG2E32 = _f(1.4426950408889634)
_LN2_HI32 = _f(0.693359375)  # 0x3F318000: 9 significant bits, so n * _LN2_HI32 is exact
_LN2_LO32 = _f(math.log(2.0) - 0.693359375)
_SHIFT32 = _f(12582912.0)  # 1.5 * 2**23: adding it rounds to an integer, kept in the low bits
_SHIFT32_BITS = 0x4B400000
_EXP_MAX32 = _f(88.8)  # exp(x) > FLT_MAX beyond 88.7228
_EXP_MIN32 = _f(-104.0)  # exp(x) < 2**-150 (rounds to 0) below -103.972
_SQRT_HALF32_BITS = 0x3F3504F3  # sqrt(1/2)
_MIN_NORMAL32 = _f(1.1754943508222875e-38)
_TWO23_32 = _f(8388608.0)
_K23_32 = _f(23.0)
_K64_32 = _f(64.0)
_TANH_SMALL32 = _f(0.55)
_TANH_MAX32 = _f(9.5)  # tanh(x) rounds to 1 in float32 beyond 9.011

_INF64 = np.inf
_LOG2E64 = 1.4426950408889634
_LN2_HI64 = 0.6931471803691238  # 0x3FE62E42FEE00000: 32 significant bits
_LN2_LO64 = 1.9082149292705877e-10
_SHIFT64 = 6755399441055744.0  # 1.5 * 2**52
_SHIFT64_BITS = 0x4338000000000000
_EXP_MAX64 = 710.0  # exp(x) > DBL_MAX beyond 709.7827
_EXP_MIN64 = -746.0  # exp(x) < 2**-1075 (rounds to 0) below -745.1332
_SQRT_HALF64_BITS = 0x3FE6A09E667F3BCD  # sqrt(1/2)
_MIN_NORMAL64 = 2.2250738585072014e-308
_TWO54_64 = 18014398509481984.0
_TANH_SMALL64 = 0.55
_TANH_MAX64 = 20.0  # tanh(x) rounds to 1 in float64 beyond 19.06

# exp(r) = 1 + r (1 + r Q(r)), |r| <= ln2 / 2; Q's coefficients, constant term first
_EXP32 = tuple(_f(c) for c in (
    0.49999994, 0.16666521, 0.04166839, 0.008368714, 0.0013814605,
))
_EXP64 = (
    0.5, 0.16666666666666682, 0.041666666666666095, 0.008333333333317039,
    0.001388888888911556, 0.00019841269896370974, 2.480158692671658e-05,
    2.7557234875018944e-06, 2.755758181099486e-07, 2.5112032186327506e-08,
    2.0826629828862453e-09,
)
# float32: log1p(f) = f - f**2 / 2 + f**3 P(f), f in [sqrt(1/2) - 1, sqrt(2) - 1]
_LOG32 = tuple(_f(c) for c in (
    0.3333333, -0.2500082, 0.20001227, -0.16623357, 0.14201757, -0.13160183, 0.12761582,
    -0.07634502,
))
# float64: log1p(f) = 2s + s z h(z), s = f / (2 + f), z = s**2 <= 0.0295
_LOG64 = (
    0.666666666666667, 0.39999999999898506, 0.28571428626371803, 0.22222211077310847,
    0.1818289289358215, 0.15331607753678667, 0.14617739413683858,
)
# tanh(a) = a + a**3 T(a**2), a < 0.55
_TANH32 = tuple(_f(c) for c in (
    -0.33333316, 0.13332586, -0.05385231, 0.021071676, -0.006274236,
))
_TANH64 = (
    -0.333333333333333, 0.13333333333326622, -0.05396825396376051, 0.02186948838585312,
    -0.008863232601397986, 0.0035920920300042502, -0.001455542842987582,
    0.0005884444748549362, -0.00023338153636868602, 8.331640582094475e-05,
    -1.949466167979406e-05,
)


# -- shared pieces, inlined into each function ------------------------------------------------

@njit(inline="always")
def _exp_reduce32(x):
    """``(p, n)`` with ``exp(x) = p * 2**n``, ``p`` in ``[0.7, 1.42]``, for ``|x| <= 104``."""
    t = x * _LOG2E32 + _SHIFT32
    nf = t - _SHIFT32
    r = x - nf * _LN2_HI32
    r = r - nf * _LN2_LO32
    c = _EXP32
    q = c[4]
    q = q * r + c[3]
    q = q * r + c[2]
    q = q * r + c[1]
    q = q * r + c[0]
    q = q * r + _ONE32
    p = q * r + _ONE32
    return p, _f32_bits(t) - _SHIFT32_BITS


@njit(inline="always")
def _exp_scale32(p, n):
    """``p * 2**n`` for ``n`` in ``[-150, 128]``, rounded once (subnormal results too)."""
    n1 = n >> 1
    return p * _bits_f32((n1 + 127) << 23) * _bits_f32((n - n1 + 127) << 23)


@njit(inline="always")
def _exp_reduce64(x):
    """``(p, n)`` with ``exp(x) = p * 2**n``, ``p`` in ``[0.7, 1.42]``, for ``|x| <= 746``."""
    t = x * _LOG2E64 + _SHIFT64
    nf = t - _SHIFT64
    r = x - nf * _LN2_HI64
    r = r - nf * _LN2_LO64
    c = _EXP64
    q = c[10]
    q = q * r + c[9]
    q = q * r + c[8]
    q = q * r + c[7]
    q = q * r + c[6]
    q = q * r + c[5]
    q = q * r + c[4]
    q = q * r + c[3]
    q = q * r + c[2]
    q = q * r + c[1]
    q = q * r + c[0]
    q = q * r + 1.0
    p = q * r + 1.0
    return p, _f64_bits(t) - _SHIFT64_BITS


@njit(inline="always")
def _exp_scale64(p, n):
    """``p * 2**n`` for ``n`` in ``[-1076, 1024]``, rounded once (subnormal results too)."""
    n1 = n >> 1
    return p * _bits_f64((n1 + 1023) << 52) * _bits_f64((n - n1 + 1023) << 52)


@njit(inline="always")
def _log1p_poly32(f, kf):
    """``kf ln2 + log1p(f)`` for ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]``."""
    c = _LOG32
    z = f * f
    p = c[7]
    p = p * f + c[6]
    p = p * f + c[5]
    p = p * f + c[4]
    p = p * f + c[3]
    p = p * f + c[2]
    p = p * f + c[1]
    p = p * f + c[0]
    y = (f * z) * p + kf * _LN2_LO32
    y = y - _HALF32 * z
    return kf * _LN2_HI32 + (f + y)


@njit(inline="always")
def _log1p_poly64(f, kf):
    """``kf ln2 + log1p(f)`` for ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]``."""
    c = _LOG64
    s = f / (2.0 + f)
    z = s * s
    h = c[6]
    h = h * z + c[5]
    h = h * z + c[4]
    h = h * z + c[3]
    h = h * z + c[2]
    h = h * z + c[1]
    h = h * z + c[0]
    hfsq = 0.5 * (f * f)
    return kf * _LN2_HI64 - ((hfsq - (s * (hfsq + z * h) + kf * _LN2_LO64)) - f)


@njit(inline="always")
def _two_over_1p32(e):
    """``2 / (1 + e)`` for ``e >= 1``, with the roundings of the sum and the quotient undone."""
    d = e + _ONE32
    d_lo = _ONE32 - (d - e)  # e + 1 == d + d_lo exactly
    q = _TWO32 / d
    rem = _fma(-q, d, _TWO32) - q * d_lo
    return _fma(rem, _HALF32 * q, q)


@njit(inline="always")
def _two_over_1p64(e):
    """``2 / (1 + e)`` for ``e >= 1``, with the roundings of the sum and the quotient undone."""
    d = e + 1.0
    d_lo = 1.0 - (d - e)
    q = 2.0 / d
    rem = _fma(-q, d, 2.0) - q * d_lo
    return _fma(rem, 0.5 * q, q)


# -- exp --------------------------------------------------------------------------------------

@njit(**_JIT)
def exp32(x):
    """Exponential of a float32, vectorisable.

    Parameters
    ----------
    x : float32

    Returns
    -------
    float32
        ``exp(x)``: within 2 ulp of the correctly rounded value, subnormal results included;
        0 below -103.97, ``inf`` above 88.72, NaN for NaN.
    """
    always_inline()
    x = _EXP_MAX32 if x > _EXP_MAX32 else x  # NaN compares false: it passes both clamps
    x = _EXP_MIN32 if x < _EXP_MIN32 else x
    p, n = _exp_reduce32(x)
    return _exp_scale32(p, n)


@njit(**_JIT)
def exp64(x):
    """Exponential of a float64, vectorisable.

    Parameters
    ----------
    x : float64

    Returns
    -------
    float64
        ``exp(x)``: within 2 ulp of the correctly rounded value, subnormal results included;
        0 below -745.13, ``inf`` above 709.78, NaN for NaN.
    """
    always_inline()
    x = _EXP_MAX64 if x > _EXP_MAX64 else x
    x = _EXP_MIN64 if x < _EXP_MIN64 else x
    p, n = _exp_reduce64(x)
    return _exp_scale64(p, n)


# -- log and log1p ----------------------------------------------------------------------------

@njit(**_JIT)
def log32(x):
    """Natural logarithm of a float32, vectorisable.

    Parameters
    ----------
    x : float32

    Returns
    -------
    float32
        ``log(x)`` within 2 ulp of the correctly rounded value (subnormal ``x`` included);
        ``-inf`` for ``+-0``, NaN for ``x < 0`` and NaN, ``inf`` for ``inf``.
    """
    always_inline()
    tiny = x < _MIN_NORMAL32
    xs = x * _TWO23_32 if tiny else x
    ix = _f32_bits(xs) - _SQRT_HALF32_BITS
    m = _bits_f32((ix & 0x7FFFFF) + _SQRT_HALF32_BITS)
    kf = _f(ix >> 23) - (_K23_32 if tiny else _ZERO32)
    y = _log1p_poly32(m - _ONE32, kf)
    y = x if not (x < _INF32) else y  # inf and NaN
    y = -_INF32 if x == _ZERO32 else y
    return _NAN32 if x < _ZERO32 else y


@njit(**_JIT)
def log64(x):
    """Natural logarithm of a float64, vectorisable.

    Parameters
    ----------
    x : float64

    Returns
    -------
    float64
        ``log(x)`` within 2 ulp of the correctly rounded value (subnormal ``x`` included);
        ``-inf`` for ``+-0``, NaN for ``x < 0`` and NaN, ``inf`` for ``inf``.
    """
    always_inline()
    tiny = x < _MIN_NORMAL64
    xs = x * _TWO54_64 if tiny else x
    ix = _f64_bits(xs) - _SQRT_HALF64_BITS
    m = _bits_f64((ix & 0xFFFFFFFFFFFFF) + _SQRT_HALF64_BITS)
    kf = float(ix >> 52) - (54.0 if tiny else 0.0)
    y = _log1p_poly64(m - 1.0, kf)
    y = x if not (x < _INF64) else y
    y = -_INF64 if x == 0.0 else y
    return np.nan if x < 0.0 else y


@njit(**_JIT)
def log1p32(x):
    """``log(1 + x)`` of a float32, accurate for small ``x``, vectorisable.

    Parameters
    ----------
    x : float32

    Returns
    -------
    float32
        ``log1p(x)`` within 2 ulp of the correctly rounded value; ``x`` itself for ``+-0``,
        ``-inf`` for -1, NaN below -1 and for NaN, ``inf`` for ``inf``.
    """
    always_inline()
    u = x + _ONE32
    b = u - x
    e = (x - (u - b)) + (_ONE32 - b)  # 1 + x == u + e exactly
    iu = _f32_bits(u) - _SQRT_HALF32_BITS
    k = iu >> 23
    m = _bits_f32((iu & 0x7FFFFF) + _SQRT_HALF32_BITS)
    kf = _f(k)
    # e * 2**-k is negligible beyond k = 64, where 2**-k would be no normal float
    f = e * (_bits_f32((127 - k) << 23) if kf < _K64_32 else _ZERO32) + (m - _ONE32)
    y = _log1p_poly32(f, kf)
    y = x if not (x < _INF32) else y
    y = x if x == _ZERO32 else y  # keeps the sign of zero
    y = -_INF32 if x == -_ONE32 else y
    return _NAN32 if x < -_ONE32 else y


@njit(**_JIT)
def log1p64(x):
    """``log(1 + x)`` of a float64, accurate for small ``x``, vectorisable.

    Parameters
    ----------
    x : float64

    Returns
    -------
    float64
        ``log1p(x)`` within 2 ulp of the correctly rounded value; ``x`` itself for ``+-0``,
        ``-inf`` for -1, NaN below -1 and for NaN, ``inf`` for ``inf``.
    """
    always_inline()
    u = x + 1.0
    b = u - x
    e = (x - (u - b)) + (1.0 - b)
    iu = _f64_bits(u) - _SQRT_HALF64_BITS
    k = iu >> 52
    m = _bits_f64((iu & 0xFFFFFFFFFFFFF) + _SQRT_HALF64_BITS)
    kf = float(k)
    f = e * (_bits_f64((1023 - k) << 52) if kf < 64.0 else 0.0) + (m - 1.0)
    y = _log1p_poly64(f, kf)
    y = x if not (x < _INF64) else y
    y = x if x == 0.0 else y
    y = -_INF64 if x == -1.0 else y
    return np.nan if x < -1.0 else y


# -- tanh -------------------------------------------------------------------------------------

@njit(**_JIT)
def tanh32(x):
    """Hyperbolic tangent of a float32, vectorisable.

    Parameters
    ----------
    x : float32

    Returns
    -------
    float32
        ``tanh(x)`` within 2 ulp of the correctly rounded value; ``+-1`` for ``+-inf``, NaN
        for NaN, and the sign of zero kept.
    """
    always_inline()
    a = abs(x)
    z = a * a
    c = _TANH32
    q = c[4]
    q = q * z + c[3]
    q = q * z + c[2]
    q = q * z + c[1]
    q = q * z + c[0]
    small = (a * z) * q + a
    ac = _TANH_MAX32 if a > _TANH_MAX32 else a  # NaN passes
    p, n = _exp_reduce32(ac + ac)
    big = _ONE32 - _two_over_1p32(p * _bits_f32((n + 127) << 23))
    return math.copysign(small if a < _TANH_SMALL32 else big, x)


@njit(**_JIT)
def tanh64(x):
    """Hyperbolic tangent of a float64, vectorisable.

    Parameters
    ----------
    x : float64

    Returns
    -------
    float64
        ``tanh(x)`` within 2 ulp of the correctly rounded value; ``+-1`` for ``+-inf``, NaN
        for NaN, and the sign of zero kept.
    """
    always_inline()
    a = abs(x)
    z = a * a
    c = _TANH64
    q = c[10]
    q = q * z + c[9]
    q = q * z + c[8]
    q = q * z + c[7]
    q = q * z + c[6]
    q = q * z + c[5]
    q = q * z + c[4]
    q = q * z + c[3]
    q = q * z + c[2]
    q = q * z + c[1]
    q = q * z + c[0]
    small = (a * z) * q + a
    ac = _TANH_MAX64 if a > _TANH_MAX64 else a
    p, n = _exp_reduce64(ac + ac)
    big = 1.0 - _two_over_1p64(p * _bits_f64((n + 1023) << 52))
    return math.copysign(small if a < _TANH_SMALL64 else big, x)


# -- logistic ---------------------------------------------------------------------------------

@njit(**_JIT)
def logistic32(x):
    """Logistic function ``1 / (1 + exp(-x))`` of a float32, vectorisable.

    Parameters
    ----------
    x : float32

    Returns
    -------
    float32
        Within 2 ulp of the correctly rounded value (subnormal results for ``x < -87.3``
        included); 0 for ``-inf``, 1 for ``inf``, NaN for NaN.
    """
    always_inline()
    y = -abs(x)
    y = _EXP_MIN32 if y < _EXP_MIN32 else y
    p, n = _exp_reduce32(y)
    e = _exp_scale32(p, n)
    d = _ONE32 + e
    d_lo = e - (d - _ONE32)  # 1 + e == d + d_lo exactly, as e <= 1
    num = _ONE32 if x >= _ZERO32 else e
    q = num / d
    rem = _fma(-q, d, num) - q * d_lo  # num - q (1 + e): the division's error, times 1 + e
    return _fma(rem, q if x >= _ZERO32 else _ONE32 - q, q)  # q or 1 - q: 1 / (1 + e)


@njit(**_JIT)
def logistic64(x):
    """Logistic function ``1 / (1 + exp(-x))`` of a float64, vectorisable.

    Parameters
    ----------
    x : float64

    Returns
    -------
    float64
        Within 2 ulp of the correctly rounded value (subnormal results for ``x < -708.4``
        included); 0 for ``-inf``, 1 for ``inf``, NaN for NaN.
    """
    always_inline()
    y = -abs(x)
    y = _EXP_MIN64 if y < _EXP_MIN64 else y
    p, n = _exp_reduce64(y)
    e = _exp_scale64(p, n)
    d = 1.0 + e
    d_lo = e - (d - 1.0)
    num = 1.0 if x >= 0.0 else e
    q = num / d
    rem = _fma(-q, d, num) - q * d_lo
    return _fma(rem, q if x >= 0.0 else 1.0 - q, q)


# -- dtype-generic names ----------------------------------------------------------------------

def _generic(name, f32, f64, what):
    """A Python function ``name(x)`` calling ``f32`` or ``f64`` by the type of ``x``, in
    Python and in compiled code. Compiled, it is typed and lowered as a direct call of the
    dispatcher for the type (as if the caller had named it), so it adds no function to
    compile."""
    impls = {types.float32: f32, types.float64: f64}

    def fn(x):
        if isinstance(x, np.float32):
            return f32(x)
        if isinstance(x, (float, np.float64)):
            return f64(x)
        raise TypeError(f"{name} takes a float32 or float64 scalar, not {type(x).__name__}")

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = f"""{what} of a float32 or float64: ``{f32.__name__}`` or ``{f64.__name__}``.

    Parameters
    ----------
    x : float32 or float64

    Returns
    -------
    float32 or float64
        The type of ``x``.
    """

    @type_callable(fn)
    def _type(context):
        def typer(x):
            disp = impls.get(x)
            if disp is None:
                return None
            return context.resolve_function_type(context.resolve_value_type(disp), (x,), {})

        return typer

    @lower_builtin(fn, types.float32)
    @lower_builtin(fn, types.float64)
    def _lower(context, builder, sig, args):
        fnty = context.typing_context.resolve_value_type(impls[sig.args[0]])
        return context.get_function(fnty, sig)(builder, args)

    return fn


vexp = _generic("vexp", exp32, exp64, "Exponential")
vlog = _generic("vlog", log32, log64, "Natural logarithm")
vlog1p = _generic("vlog1p", log1p32, log1p64, "``log(1 + x)``")
vtanh = _generic("vtanh", tanh32, tanh64, "Hyperbolic tangent")
vlogistic = _generic("vlogistic", logistic32, logistic64, "Logistic function")
