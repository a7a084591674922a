"""Small Numba intrinsics the kernels are built from (each a few lines of LLVM IR).

- ``wide_vectors()`` lets LLVM use 512-bit vectors in the function that calls it. LLVM's
  default tuning for most AVX-512 CPUs prefers 256-bit vectors; for the matrix-product
  micro-kernels 512-bit ones double the arithmetic per instruction (measured on one core:
  54 -> 117-171 GFLOP/s for the float32 4 x 64 kernel). It adds the function attributes
  ``"prefer-vector-width"="512"`` and ``"min-legal-vector-width"="512"`` (what compilers
  set for code written with 512-bit intrinsics; the inliner carries the second one to
  callers). CPUs without AVX-512 ignore it.
- ``stack(nbytes)`` makes an intrinsic that returns a pointer to ``nbytes`` of
  uninitialised stack (an ``alloca`` in the entry block of the calling function: made once
  per call, never per loop iteration, freed on return).
- ``ptr_at(arr, i)``: the address of element ``i`` of a 1-D array, for ``numba.carray``
  views at an offset (whose indices LLVM then knows to be non-negative: no wraparound
  selects in the inner loops).
- ``rt(x)``: a constant as a run-time value (see there: one compilation per type, not per
  literal).
- ``borrowed(arr)``: ``arr`` without its reference-counted owner (no atomic reference
  counting when it is passed on); ``view2d(flat, start, rows, cols)``: a C-contiguous 2-D
  view of a 1-D array, without Numba's reshape helper.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

_WIDE = ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"')


@intrinsic
def wide_vectors(typingctx):
    """Allow 512-bit vectors in the calling function (see the module docstring)."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        attrs = builder.function.attributes
        for a in _WIDE:
            set.add(attrs, a)  # string attributes: llvmlite's ``add`` knows enum ones only
        return context.get_dummy_value()

    return sig, codegen


def stack(nbytes: int):
    """An intrinsic ``f(dtype) -> pointer`` to ``nbytes`` of stack as elements of ``dtype``."""

    @intrinsic
    def alloca(typingctx, dtype):
        dt = dtype.dtype
        sig = types.CPointer(dt)(dtype)

        def codegen(context, builder, signature, args):
            lty = context.get_data_type(dt)
            n = nbytes // context.get_abi_sizeof(lty)
            return cgutils.alloca_once(builder, lty, size=ir.Constant(ir.IntType(64), n))

        return sig, codegen

    return alloca


@intrinsic
def ptr_at(typingctx, arr, offset):
    """Pointer to element ``offset`` of the 1-D array ``arr`` (unchecked)."""
    if not (isinstance(arr, types.Array) and isinstance(offset, types.Integer)):
        return None
    sig = types.CPointer(arr.dtype)(arr, offset)

    def codegen(context, builder, signature, args):
        a = make_array(arr)(context, builder, args[0])
        off = context.cast(builder, args[1], offset, types.intp)
        return builder.gep(a.data, [off])

    return sig, codegen


@intrinsic
def view2d(typingctx, flat, start, n_rows, n_cols):
    """The C-contiguous ``(n_rows, n_cols)`` view of ``flat[start : start + n_rows * n_cols]``
    (unchecked: the caller keeps the range inside ``flat``)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    ret = types.Array(flat.dtype, 2, "C")
    sig = ret(flat, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        src = make_array(flat)(context, builder, args[0])
        start, rows, cols = args[1], args[2], args[3]
        dst = make_array(ret)(context, builder)
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype))
        )
        populate_array(
            dst, data=builder.gep(src.data, [start]),
            shape=cgutils.pack_array(builder, [rows, cols]),
            strides=cgutils.pack_array(builder, [builder.mul(cols, itemsize), itemsize]),
            itemsize=itemsize, meminfo=src.meminfo, parent=src.parent,
        )
        return impl_ret_borrowed(context, builder, ret, dst._getvalue())

    return sig, codegen


@intrinsic
def borrowed(typingctx, arr):
    """``arr`` without its reference-counted owner: the same data, shape and strides.

    Only for use inside a call that keeps ``arr`` itself alive: a borrowed array must not
    be returned or stored.
    """
    if not isinstance(arr, types.Array):
        return None
    sig = arr(arr)

    def codegen(context, builder, signature, args):
        src = make_array(arr)(context, builder, args[0])
        dst = make_array(arr)(context, builder)
        populate_array(
            dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
            meminfo=None, parent=None,
        )
        return dst._getvalue()

    return sig, codegen


@intrinsic
def rt(typingctx, x):
    """``x`` as a run-time value of its non-literal type.

    Numba compiles a jitted callee once per *literal* constant it is called with
    (``f(0)``, ``f(1)`` and ``f(n)`` are three compilations of ``f``, each with everything
    it calls); passing ``rt(0)`` keeps it to one per type.
    """
    ty = types.unliteral(x)
    sig = ty(x)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], x, ty)

    return sig, codegen


@intrinsic
def always_inline(typingctx):
    """Ask LLVM to inline the calling function wherever it is called (small elementwise
    functions: a loop that calls them vectorises only once they are inlined)."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("alwaysinline")
        return context.get_dummy_value()

    return sig, codegen
