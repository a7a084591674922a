"""Reductions of a row held in one 512-bit vector: the rows of an output layer of few
classes.

A row of ``m`` columns with ``m`` at most a vector's lanes (16 float32, 8 float64) is one
masked load, and its maximum takes log2(V) steps. LLVM's vectoriser cannot do this with a
loop over ``m`` known only at run time (its vector loops need at least a vector's
iterations, so ten classes ran as scalar code, here a chain of dependent selects).

``first_max`` returns what the obvious loop over the row returns (given in its docstring);
``vector_row(a)`` tells whether a row of ``a`` fits one vector. They take C-contiguous 2-D
arrays and a row index, unchecked (callers check ``vector_row``).

Tried and measured slower: the same masked rows for the steps of a softmax and for the
cross-entropy delta, which store what they compute. A later vector load of memory that a
masked store (or several scalar ones) wrote cannot take the value from the store queue and
waits; the softmax of a 32 x 10 block took 1,050 ns instead of 330.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from ._cache import njit
from ._llvm import _masked, lane_mask, vector_type

_I32, _I64 = ir.IntType(32), ir.IntType(64)


def _c_matrix(a):
    return (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"
            and a.dtype in (types.float32, types.float64))


class _Row:
    """Row ``i`` of the C-contiguous 2-D array ``val`` (of type ``aty``) as one vector:
    its pointer, the mask of its ``m`` lanes, a masked load."""

    def __init__(self, context, builder, aty, val, i):
        self.builder = builder
        self.size, self.v, self.vty = vector_type(context, aty.dtype)
        arr = make_array(aty)(context, builder, val)
        m = builder.extract_value(arr.shape, 1)
        self.first = builder.gep(arr.data, [builder.mul(i, m)])
        self.ptr = builder.bitcast(self.first, self.vty.as_pointer())
        self.mask = lane_mask(builder, m, self.v)

    def splat(self, value):
        return ir.Constant(self.vty, [value] * self.v)

    def load(self, fill=0.0):
        """The row, ``fill`` in the lanes past its end."""
        return self.builder.call(_masked(self.builder, "load", self.vty, self.size),
                                 [self.ptr, ir.Constant(_I32, self.size), self.mask,
                                  self.splat(fill)])


def _lanes_max(builder, x, v):
    """Every lane: the largest lane of ``x`` by ``>`` (log2(v) rotations and selects)."""
    step = v // 2
    while step:
        lanes = ir.Constant(ir.VectorType(_I32, v), [(k + step) % v for k in range(v)])
        y = builder.shuffle_vector(x, x, lanes)
        x = builder.select(builder.fcmp_ordered(">", y, x), y, x)
        step //= 2
    return x


@njit(inline="always", cache=True, nogil=True)
def vector_row(a):
    """Whether a row of the 2-D array ``a`` fits one 512-bit vector."""
    return a.shape[1] <= 64 // a.itemsize


@intrinsic
def first_max(typingctx, a, i):
    """Column of the first maximum of row ``i`` of ``a`` (``vector_row``; unchecked), as the
    loop ``j = 0; for k > 0: if a[i, k] > a[i, j]: j = k`` finds it: 0 where ``a[i, 0]`` is
    NaN, else the first column holding the largest of the values that are not NaN. The
    loop's chain of dependent compares and selects was most of an accuracy count's time."""
    if not (_c_matrix(a) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        row = _Row(context, builder, a, args[0], args[1])
        ninf = row.splat(float("-inf"))
        x = row.load(float("-inf"))
        x = builder.select(builder.fcmp_unordered("uno", x, x), ninf, x)  # NaN never wins
        hits = builder.bitcast(builder.fcmp_ordered("==", x, _lanes_max(builder, x, row.v)),
                               ir.IntType(row.v))
        name = f"llvm.cttz.i{row.v}"
        cttz = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(ir.IntType(row.v), [ir.IntType(row.v),
                                                                 ir.IntType(1)]), name)
        first = builder.zext(builder.call(cttz, [hits, ir.Constant(ir.IntType(1), 1)]), _I64)
        x0 = builder.load(row.first)
        return builder.select(builder.fcmp_unordered("uno", x0, x0), ir.Constant(_I64, 0),
                              first)

    return types.int64(a, types.intp), codegen


__all__ = ["first_max", "vector_row"]
