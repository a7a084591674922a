"""The matrix-product micro-kernels as vector IR.

A micro-kernel keeps an ``R x V`` block of accumulator vectors (``R`` rows of ``C``, ``V``
512-bit vectors of columns each) in registers: per reduction step ``k`` it loads the ``V``
vectors of the packed panel of B, broadcasts each row's value of A and runs one fused
multiply-add per accumulator; then it stores (or adds) the block's valid rows and columns
with masked stores. Written as loops over scalars, the same kernel was rebuilt by LLVM's
SLP vectoriser from ``R x V x lanes`` unrolled multiply-adds: about 2 CPU-s of a cold
first fit went into that, for three block shapes.

Every element of C is, as before, one chain of fused multiply-adds from zero in step order
(``fma(a, b, acc)``; the first, from +0, rounds the product once and turns -0 into +0), added
to C with one addition when accumulating: the bits do not depend on the block shape.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from ._llvm import _masked, _splat, lane_mask, vector_fma, vector_type


def micro_kernel(R, V):
    """The ``R x V``-vector micro-kernel, an intrinsic
    ``kernel(Ap, ap0, offs, ks, Bp, kc, C, c0, ldc, rows, cols, accumulate)``:
    ``C[c0 + r * ldc + j] (+)= sum_k Ap[ap0 + offs[r] + k * ks] * Bp[k * NR + j]`` for
    ``r < rows`` and ``j < cols`` (``NR = V`` vectors' lanes; ``offs`` an ``R``-tuple of row
    offsets, rows past ``rows`` given a valid row's: computed, never stored). Unchecked."""

    @intrinsic
    def kernel(typingctx, Ap, ap0, offs, ks, Bp, kc, C, c0, ldc, rows, cols, accumulate):
        arrays = (Ap, Bp, C)
        if not (all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays)
                and Ap.dtype == Bp.dtype == C.dtype
                and C.dtype in (types.float32, types.float64)
                and isinstance(offs, types.UniTuple) and len(offs) == R):
            return None
        I = types.intp
        sig = types.none(Ap, I, offs, I, Bp, I, C, I, I, I, I, types.boolean)

        def codegen(context, builder, signature, args):
            size, lanes, vty = vector_type(context, C.dtype)
            a_data, b_data, c_data = (make_array(t)(context, builder, args[i]).data
                                      for t, i in ((Ap, 0), (Bp, 4), (C, 6)))
            ap0, ks, kc, c0, ldc, rows, cols, acc_flag = (args[i] for i in (1, 3, 5, 7, 8, 9,
                                                                             10, 11))
            i64, i32 = ir.IntType(64), ir.IntType(32)
            a_base = builder.gep(a_data, [ap0])
            offs_v = [builder.extract_value(args[2], r) for r in range(R)]
            zero = ir.Constant(vty, [0.0] * lanes)
            accs = [cgutils.alloca_once_value(builder, zero) for _ in range(R * V)]
            fma = vector_fma(builder, vty, size)
            nr = ir.Constant(i64, V * lanes)
            with cgutils.for_range(builder, kc) as loop:
                k = loop.index
                b_row = builder.gep(b_data, [builder.mul(k, nr)])
                b_vecs = [builder.load(builder.bitcast(
                    builder.gep(b_row, [ir.Constant(i64, v * lanes)]), vty.as_pointer()),
                    align=size) for v in range(V)]
                ko = builder.mul(k, ks)
                for r in range(R):
                    a = _splat(builder, builder.load(
                        builder.gep(a_base, [builder.add(offs_v[r], ko)])), lanes)
                    for v in range(V):
                        acc = accs[r * V + v]
                        builder.store(builder.call(fma, [a, b_vecs[v], builder.load(acc)]),
                                      acc)
            load, store = _masked(builder, "load", vty, size), _masked(builder, "store", vty,
                                                                         size)
            align = ir.Constant(i32, size)
            masks = [lane_mask(builder, builder.sub(cols, ir.Constant(i64, v * lanes)), lanes)
                     for v in range(V)]
            c_base = builder.gep(c_data, [c0])
            for r in range(R):
                with builder.if_then(builder.icmp_signed("<", ir.Constant(i64, r), rows)):
                    c_row = builder.gep(c_base, [builder.mul(ir.Constant(i64, r), ldc)])
                    for v in range(V):
                        dst = builder.bitcast(builder.gep(c_row, [ir.Constant(i64, v * lanes)]),
                                              vty.as_pointer())
                        acc = accs[r * V + v]
                        whole = builder.icmp_signed(">=", cols, ir.Constant(i64, (v + 1) * lanes))
                        with builder.if_else(whole, likely=True) as (plain, edge):
                            with plain:  # a whole vector of columns: plain loads and stores
                                with builder.if_then(acc_flag):  # C (+)= the block: C + acc
                                    old = builder.load(dst, align=size)
                                    builder.store(builder.fadd(old, builder.load(acc)), acc)
                                builder.store(builder.load(acc), dst, align=size)
                            with edge:  # the block's last columns: masked
                                with builder.if_then(acc_flag):
                                    old = builder.call(load, [dst, align, masks[v], zero])
                                    builder.store(builder.fadd(old, builder.load(acc)), acc)
                                builder.call(store, [builder.load(acc), dst, align, masks[v]])
            return context.get_dummy_value()

        return sig, codegen

    return kernel


__all__ = ["micro_kernel"]
