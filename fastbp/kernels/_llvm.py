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
- ``flat_rows(arr)``: the elements of a C-contiguous 2-D array as a borrowed 1-D one.
- ``prefetch(arr, i, j)``: a hint to load the cache line of element ``(i, j)`` (the next
  batch's rows, while this one trains).
- ``outer_rows(d, d0, M, a, a0, N, C, c0, accumulate)``: one row's weight gradient (an
  outer product) in whole 512-bit vectors with a masked last one.
- ``threads()``: Numba's thread count of the calling thread (``numba.get_num_threads()``),
  read from the threading layer's C function by its symbol name, as Numba's own parallel
  code does; ``numba.get_num_threads`` itself holds a ctypes pointer, with which Numba
  cannot cache the calling function. The layer must be started first (``import fastbp``).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel.models import ArrayModel
from numba.core.imputils import impl_ret_borrowed, lower_cast
from numba.extending import intrinsic, register_model
from numba.np.arrayobj import make_array, populate_array


class BorrowedArray(types.Array):
    """The type of an array whose owner a caller up the stack keeps alive: the same data
    model as Numba's arrays (every array operation applies), but Numba does no reference
    counting on it. Numba counts references by calling the runtime's ``NRT_incref`` and
    ``NRT_decref``, out of line, even on an array without owner: a kernel that unpacked a
    bundle of eleven buffers made some thirty such calls on entry and exit (35 ns for an
    empty one-row call). ``borrowed``, ``view2d`` of a borrowed array and the bundles that
    flat kernels receive by reference (``_flat.deref``) have this type; slices and other
    derived arrays are ordinary arrays again."""

    def __init__(self, dtype, ndim, layout, readonly=False, aligned=True):
        kind = "readonly borrowed array" if readonly else "borrowed array"
        super().__init__(dtype, ndim, layout, readonly=readonly, aligned=aligned,
                         name=f"{kind}({dtype}, {ndim}d, {layout})")

    @property
    def plain(self):
        """The ordinary array type with the same dtype, dimensions and layout."""
        return types.Array(self.dtype, self.ndim, self.layout, readonly=not self.mutable,
                           aligned=self.aligned)


@register_model(BorrowedArray)
class _BorrowedArrayModel(ArrayModel):
    # no member is reference-counted: Numba's incref / decref find nothing to call
    def traverse(self, builder):
        return []

    def inner_models(self):
        return []


@lower_cast(BorrowedArray, types.Array)
def _borrowed_to_array(context, builder, fromty, toty, val):
    # the same data model: an array with no owner, as ``borrowed`` makes it
    return val


def without_owner(context, builder, arrty, val):
    """The array value ``val`` (of type ``arrty``) with its owner (meminfo and parent)
    cleared: what every borrowed array holds, so that ``as_array`` can hand one on as an
    ordinary array whose reference counting does nothing."""
    arr = make_array(arrty)(context, builder, val)
    arr.meminfo = cgutils.get_null_value(arr.meminfo.type)
    arr.parent = cgutils.get_null_value(arr.parent.type)
    return arr._getvalue()


@lower_cast(types.Array, BorrowedArray)
def _array_to_borrowed(context, builder, fromty, toty, val):
    # an argument of a flat kernel: the caller keeps the array (and its owner) alive
    # during the call, and the kernel counts no reference on it. The owner is cleared, as
    # ``borrowed`` clears it (with the owner kept, a callee's count of ``as_array`` of it,
    # a "new" reference, freed the caller's array)
    return without_owner(context, builder, fromty, val)


def borrowed_type(arr):
    """``BorrowedArray`` with the dtype, dimensions and layout of the array type ``arr``."""
    if isinstance(arr, BorrowedArray):
        return arr
    return BorrowedArray(arr.dtype, arr.ndim, arr.layout, readonly=not arr.mutable,
                         aligned=arr.aligned)


def plain_type(ty):
    """``ty`` with every ``BorrowedArray`` (in tuples too) replaced by its ordinary array
    type: what a flat kernel's signature names."""
    if isinstance(ty, BorrowedArray):
        return ty.plain
    if isinstance(ty, types.BaseTuple) and any(isinstance(t, BorrowedArray) for t in ty):
        members = [plain_type(t) for t in ty]
        if isinstance(ty, types.BaseNamedTuple):
            return type(ty)(members, ty.instance_class)
        return types.Tuple(members)
    return ty


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


#: alignment (bytes) of the buffers of ``stack``: a cache line, and a 512-bit vector
STACK_ALIGN = 64


def stack(nbytes: int):
    """An intrinsic ``f(dtype) -> pointer`` to ``nbytes`` of stack as elements of ``dtype``,
    aligned to ``STACK_ALIGN`` bytes."""

    @intrinsic
    def alloca(typingctx, dtype):
        dt = dtype.dtype
        sig = types.CPointer(dt)(dtype)

        def codegen(context, builder, signature, args):
            lty = context.get_data_type(dt)
            n = nbytes // context.get_abi_sizeof(lty)
            ptr = cgutils.alloca_once(builder, lty, size=ir.Constant(ir.IntType(64), n))
            # on a cache line: a 512-bit load or store of an unaligned buffer straddles two
            # lines whenever its offset is not a multiple of 64 bytes
            ptr.align = STACK_ALIGN
            return ptr

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
def prefetch(typingctx, arr, row, col):
    """Ask the CPU to bring the cache line of element ``(row, col)`` of the 2-D array ``arr``
    into its caches for a coming read (``llvm.prefetch``: a hint that never faults, so the
    indices are not checked)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(row, types.Integer)
            and isinstance(col, types.Integer)):
        return None
    sig = types.none(arr, row, col)

    def codegen(context, builder, signature, args):
        a = make_array(arr)(context, builder, args[0])
        strides = cgutils.unpack_tuple(builder, a.strides, 2)
        i, j = (context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], (row, col)))
        off = builder.add(builder.mul(i, strides[0]), builder.mul(j, strides[1]))
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        ptr = builder.gep(builder.bitcast(a.data, i8p), [off])
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read, high temporal locality (all cache levels), data cache
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def view2d(typingctx, flat, start, n_rows, n_cols):
    """The C-contiguous ``(n_rows, n_cols)`` view of ``flat[start : start + n_rows * n_cols]``
    (unchecked: the caller keeps the range inside ``flat``)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    ret = types.Array(flat.dtype, 2, "C")
    if isinstance(flat, BorrowedArray):
        ret = borrowed_type(ret)
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
def flat_rows(typingctx, arr):
    """The rows of the 2-D ``arr`` as one borrowed 1-D C-contiguous array of its elements
    (unchecked: only for an ``arr`` that is C-contiguous at run time, whatever its type's
    layout; Numba's ``reshape`` is typed for the layout, this for any)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None
    ret = BorrowedArray(arr.dtype, 1, "C")
    sig = ret(arr)

    def codegen(context, builder, signature, args):
        src = make_array(arr)(context, builder, args[0])
        dst = make_array(ret)(context, builder)
        shape = cgutils.unpack_tuple(builder, src.shape)
        populate_array(
            dst, data=src.data, shape=cgutils.pack_array(builder, [builder.mul(*shape)]),
            strides=cgutils.pack_array(builder, [src.itemsize]), itemsize=src.itemsize,
            meminfo=None, parent=None,
        )
        return dst._getvalue()

    return sig, codegen


@intrinsic
def as_array(typingctx, arr):
    """A borrowed array typed as an ordinary one (the same value: its owner stays empty),
    for a call of a kernel that Python calls too, so that both share one signature."""
    if not isinstance(arr, types.Array):
        return None
    ret = plain_type(arr)
    sig = ret(arr)

    def codegen(context, builder, signature, args):
        if isinstance(arr, BorrowedArray):
            return args[0]  # no owner: nothing to count
        return impl_ret_borrowed(context, builder, ret, args[0])  # a new reference

    return sig, codegen


@intrinsic
def borrowed(typingctx, arr):
    """``arr`` without its reference-counted owner: the same data, shape and strides.

    Only for use inside a call that keeps ``arr`` itself alive: a borrowed array must not
    be returned or stored.
    """
    if not isinstance(arr, types.Array):
        return None
    ret = borrowed_type(arr)
    sig = ret(arr)

    def codegen(context, builder, signature, args):
        return without_owner(context, builder, arr, args[0])  # (the same data model)

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
def threads(typingctx):
    """Numba's thread count of the calling thread (see the module docstring)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])  # C: int get_num_threads(void)
        fn = cgutils.get_or_insert_function(builder.module, fnty, "get_num_threads")
        return builder.sext(builder.call(fn, []), ir.IntType(64))

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


@intrinsic
def transpose_block(typingctx, src, s0, lds, dst, d0, ldd):
    """Transpose one ``V x V`` block, ``V`` the values of one 512-bit vector (16 float32,
    8 float64): ``dst[d0 + c*ldd + r] = src[s0 + r*lds + c]`` for ``r, c < V`` (unchecked).

    ``V`` vector loads, ``log2(V)`` rounds of ``V`` two-source shuffles (each round swaps one
    bit of the row index with the same bit of the column index), ``V`` vector stores: the
    transposed copies that packing needs, without strided scalar moves or gathers.
    """
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)
            and src.dtype == dst.dtype and src.dtype in (types.float32, types.float64)):
        return None
    sig = types.none(src, types.intp, types.intp, dst, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        fty = context.get_data_type(src.dtype)
        size = context.get_abi_sizeof(fty)
        v = 64 // size
        vty = ir.VectorType(fty, v)
        mty = ir.VectorType(ir.IntType(32), v)
        a = make_array(src)(context, builder, args[0])
        b = make_array(dst)(context, builder, args[3])
        s0, lds, d0, ldd = (context.cast(builder, x, t, types.intp)
                            for x, t in zip((args[1], args[2], args[4], args[5]),
                                            signature.args[1:3] + signature.args[4:6]))

        def at(base, start, stride, i):
            off = builder.add(start, builder.mul(stride, ir.Constant(ir.IntType(64), i)))
            return builder.bitcast(builder.gep(base, [off]), vty.as_pointer())

        rows = [builder.load(at(a.data, s0, lds, r), align=size) for r in range(v)]
        bit = 1
        while bit < v:
            new = list(rows)
            for i in range(v):
                if i & bit:
                    continue
                lo, hi = rows[i], rows[i | bit]
                m_lo = [c if not c & bit else v + (c ^ bit) for c in range(v)]
                m_hi = [v + c if c & bit else c ^ bit for c in range(v)]
                new[i] = builder.shuffle_vector(lo, hi, ir.Constant(mty, m_lo))
                new[i | bit] = builder.shuffle_vector(lo, hi, ir.Constant(mty, m_hi))
            rows = new
            bit *= 2
        for c in range(v):
            builder.store(rows[c], at(b.data, d0, ldd, c), align=size)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def elem_bytes(typingctx, arr):
    """The element size of ``arr`` in bytes as a compile-time constant (``arr.itemsize`` is
    read from the array at run time, which keeps LLVM from unrolling and vectorising loops
    whose trip count depends on it)."""
    if not isinstance(arr, types.Array):
        return None
    sig = types.intp(arr)

    def codegen(context, builder, signature, args):
        size = context.get_abi_sizeof(context.get_data_type(arr.dtype))
        return context.get_constant(types.intp, size)

    return sig, codegen


def vector_type(context, dtype):
    """``(size, lanes, vty)``: the element size in bytes of the float ``dtype``, the lanes of
    a 512-bit vector of it, and that vector's LLVM type."""
    fty = context.get_data_type(dtype)
    size = context.get_abi_sizeof(fty)
    return size, 64 // size, ir.VectorType(fty, 64 // size)


def vector_fma(builder, vty, size):
    """``llvm.fma`` of the vector type ``vty`` (elements of ``size`` bytes), declared once
    per module."""
    name = f"llvm.fma.v{vty.count}f{8 * size}"
    return builder.module.globals.get(name) or ir.Function(
        builder.module, ir.FunctionType(vty, [vty, vty, vty]), name)


def lane_mask(builder, n, v):
    """The ``v``-lane mask of the lanes below ``n`` (an i64, any sign: none when
    ``n <= 0``)."""
    iota = ir.Constant(ir.VectorType(ir.IntType(64), v), list(range(v)))
    return builder.icmp_signed("<", iota, _splat(builder, n, v))


def _splat(builder, x, v):
    """The ``v``-lane vector with ``x`` in every lane (a broadcast)."""
    t = ir.VectorType(x.type, v)
    s = builder.insert_element(ir.Constant(t, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(s, ir.Constant(t, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), v), [0] * v))


def _panel_fma_codegen(n_panels):
    """Code of ``panel_fma`` (one panel) or ``panel_fma2`` (two): per step, one broadcast
    of ``x[x0 + k]`` and one vector fused multiply-add per panel into its accumulator."""

    def codegen(context, builder, signature, args):
        P, x, out = signature.args[0], signature.args[-5], signature.args[-2]
        size, v, vty = vector_type(context, P.dtype)
        i64 = ir.IntType(64)
        p = make_array(P)(context, builder, args[0])
        xa = make_array(x)(context, builder, args[-5])
        o = make_array(out)(context, builder, args[-2])
        x0, kc, o0 = args[-4], args[-3], args[-1]
        p1 = args[1] if n_panels == 2 else None  # the second panel's offset in P
        fma = vector_fma(builder, vty, size)
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vty, None))
                for _ in range(n_panels)]
        with cgutils.for_range(builder, kc) as loop:
            k = loop.index
            xs = _splat(builder, builder.load(builder.gep(xa.data, [builder.add(x0, k)])), v)
            at = builder.mul(k, ir.Constant(i64, v))
            bases = (at,) if n_panels == 1 else (at, builder.add(at, p1))
            for acc_ptr, base in zip(accs, bases):
                row = builder.gep(p.data, [base])
                pv = builder.load(builder.bitcast(row, vty.as_pointer()), align=size)
                builder.store(builder.call(fma, [xs, pv, builder.load(acc_ptr)]), acc_ptr)
        for i, acc_ptr in enumerate(accs):
            off = builder.add(o0, ir.Constant(i64, i * v))
            dst = builder.bitcast(builder.gep(o.data, [off]), vty.as_pointer())
            builder.store(builder.load(acc_ptr), dst, align=size)
        return context.get_dummy_value()

    return codegen


def _panel_operands(P, x, out):
    return (isinstance(P, types.Array) and isinstance(x, types.Array)
            and isinstance(out, types.Array) and P.dtype == x.dtype == out.dtype
            and P.dtype in (types.float32, types.float64))


@intrinsic
def panel_fma2(typingctx, P, p1, x, x0, kc, out, o0):
    """``panel_fma`` of two panels at once, the second at ``P[p1:]``, its sums into
    ``out[o0 + V + u]``: two independent chains per step, so that each waits half as long
    on the multiply-add before it (the sums and their order are ``panel_fma``'s)."""
    if not _panel_operands(P, x, out):
        return None
    sig = types.none(P, types.intp, x, types.intp, types.intp, out, types.intp)
    return sig, _panel_fma_codegen(2)


@intrinsic
def panel_fma(typingctx, P, x, x0, kc, out, o0):
    """``out[o0 + u] = sum_k x[x0 + k] * P[k*V + u]`` for ``u < V`` (``V`` values per
    512-bit vector), each sum a chain of fused multiply-adds from zero in the order of ``k``
    (unchecked). One vector multiply-add per step, whatever LLVM's vectoriser decides."""
    if not _panel_operands(P, x, out):
        return None
    sig = types.none(P, x, types.intp, types.intp, out, types.intp)
    return sig, _panel_fma_codegen(1)


def _masked(builder, op, vty, size):
    """``llvm.masked.load`` or ``llvm.masked.store`` of ``vty`` (declared once per module)."""
    width = 8 * size
    mty = ir.VectorType(ir.IntType(1), vty.count)
    name = f"llvm.masked.{op}.v{vty.count}f{width}.p0"
    fn = builder.module.globals.get(name)
    if fn is None:
        if op == "load":
            fty = ir.FunctionType(vty, [vty.as_pointer(), ir.IntType(32), mty, vty])
        else:
            fty = ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), ir.IntType(32), mty])
        fn = ir.Function(builder.module, fty, name)
    return fn


@intrinsic
def outer_rows(typingctx, d, d0, M, a, a0, N, C, c0, accumulate):
    """``C[c0 + i*N + j] = 0 + d[d0 + i] * a[a0 + j]`` for ``i < M``, ``j < N``, or with
    ``accumulate`` ``C[...] + (0 + d[d0 + i] * a[a0 + j])`` (unchecked): the outer product
    of one row's weight gradient. Each row is whole 512-bit vectors, the last one masked:
    no scalar tails, no 8-wide loops or overlap checks that LLVM's vectoriser gives a
    short run-time ``N`` (the 16 columns of a small layer). The product is rounded, then
    added to zero (``-0`` becomes ``+0``), as a matrix product's first multiply-add from
    zero gives it."""
    arrays = (d, a, C)
    if not (all(isinstance(t, types.Array) for t in arrays)
            and d.dtype == a.dtype == C.dtype and C.dtype in (types.float32, types.float64)):
        return None
    sig = types.none(d, types.intp, types.intp, a, types.intp, types.intp, C, types.intp,
                     types.boolean)

    def codegen(context, builder, signature, args):
        size, v, vty = vector_type(context, C.dtype)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        da = make_array(d)(context, builder, args[0])
        aa = make_array(a)(context, builder, args[3])
        ca = make_array(C)(context, builder, args[6])
        d0, M, a0, N, c0, acc = args[1], args[2], args[4], args[5], args[7], args[8]
        load, store = _masked(builder, "load", vty, size), _masked(builder, "store", vty, size)
        align = ir.Constant(i32, size)
        zero_v = ir.Constant(vty, [0.0] * v)
        nv = builder.udiv(builder.add(N, ir.Constant(i64, v - 1)), ir.Constant(i64, v))

        def row(i, x, mask, j):
            """Row ``i``'s columns ``j .. j + V`` (those in ``mask``) of ``x`` times d[i]."""
            s = _splat(builder, builder.load(builder.gep(da.data, [builder.add(d0, i)])), v)
            dst = builder.bitcast(builder.gep(ca.data, [builder.add(
                builder.add(c0, builder.mul(i, N)), j)]), vty.as_pointer())
            t = builder.fadd(zero_v, builder.fmul(s, x))
            old = builder.call(load, [dst, align, mask, zero_v])
            builder.call(store, [builder.select(acc, builder.fadd(old, t), t), dst, align,
                                 mask])

        def columns(j):
            mask = lane_mask(builder, builder.sub(N, j), v)
            src = builder.bitcast(builder.gep(aa.data, [builder.add(a0, j)]),
                                  vty.as_pointer())
            return builder.call(load, [src, align, mask, zero_v]), mask

        zero = ir.Constant(i64, 0)
        with builder.if_else(builder.icmp_unsigned("<=", N, ir.Constant(i64, v))) as (
                one, many):
            with one:  # one vector of columns: loaded once
                x, mask = columns(zero)
                with cgutils.for_range(builder, M) as rows:
                    row(rows.index, x, mask, zero)
            with many:
                with cgutils.for_range(builder, M) as rows:
                    with cgutils.for_range(builder, nv) as vecs:
                        j = builder.mul(vecs.index, ir.Constant(i64, v))
                        x, mask = columns(j)
                        row(rows.index, x, mask, j)
        return context.get_dummy_value()

    return sig, codegen

