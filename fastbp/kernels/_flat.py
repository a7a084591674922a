"""Flat kernels: compiled once per dtype, called through a pointer, never linked into callers.

When a Numba function calls another, Numba links the callee's whole LLVM module into the
caller's and optimises and emits the merged module again (``CPUCodeLibrary.finalize``):
every driver that runs the layer products re-compiled the tile machinery (packing,
micro-kernels, epilogues, activations), and a deep call tree paid this at each level. A
*flat* kernel is compiled (or loaded from the cache) once per dtype, and its callers reach
it through a pointer:

- ``flat(kernel, signature)`` wraps an ``njit`` kernel and the function that gives its one
  signature for a dtype. The wrapper is called from compiled code like the kernel itself.
- At the call site the caller's module holds a private pointer, null at first. The first
  call asks ``fastbp_flat_resolve`` (a C callback registered at import, under a fixed
  symbol name) for the kernel's address: it compiles the kernel for that dtype, or loads it
  from the cache, and returns the address; the pointer keeps it. Later calls cost one load
  and an indirect call. Nothing in the caller's machine code depends on an address of this
  process, so callers cache as usual (also user code that calls fastbp's kernels).
- The call uses Numba's own calling convention: arguments as Numba passes them, and an
  exception raised in the kernel propagates to the caller as from any Numba call. A tuple
  of buffers that the signature takes as a ``CPointer`` is passed by reference (a pointer
  to the caller's copy on its stack, read with ``deref``): one argument instead of seven
  per array.

Each flat kernel has exactly one signature per dtype: a call with other argument types is
an error at compile time, which names the kernel and both signatures.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
import threading

import llvmlite.binding as ll
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from ._cache import EntryDispatcher
from ._llvm import BorrowedArray, plain_type, without_owner

#: the resolver's symbol (versioned: a cached caller of another version never finds it)
RESOLVER = "fastbp_flat_resolve_v1"

_KERNELS: dict[str, tuple] = {}  # "module:name" -> (dispatcher, signature of a dtype)
_ADDRESSES: dict[str, int] = {}  # "module:name:dtype" -> address
_LOCK = threading.RLock()


def _signature_for(key: str):
    """The dispatcher and the signature of ``key`` (``module:name:dtype``)."""
    modname, name, dtype = key.split(":")
    ident = f"{modname}:{name}"
    if ident not in _KERNELS:
        importlib.import_module(modname)  # defines the kernel, which registers itself
    dispatcher, signature_of = _KERNELS[ident]
    return dispatcher, signature_of(getattr(types, dtype))


def address(key: str) -> int:
    """Compile (or load from the cache) the kernel ``key`` and return its entry point."""
    with _LOCK:
        addr = _ADDRESSES.get(key)
        if addr is None:
            dispatcher, sig = _signature_for(key)
            dispatcher.compile(tuple(sig.args))
            cres = dispatcher.overloads[tuple(sig.args)]
            addr = cres.library.get_pointer_to_function(cres.fndesc.mangled_name)
            _ADDRESSES[key] = addr
        return addr


@ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
def _resolve(key):
    # called from compiled code (holding no GIL: ctypes takes it); must never raise
    try:
        return address(key.decode())
    except BaseException as exc:  # noqa: BLE001 - reported, then raised in the caller
        print(f"fastbp: could not load the kernel {key.decode()}: {exc!r}", file=sys.stderr)
        return None


ll.add_symbol(RESOLVER, ctypes.cast(_resolve, ctypes.c_void_p).value)


@intrinsic
def deref(typingctx, ref):
    """The bundle a flat kernel received by reference (its ``CPointer`` argument); a
    bundle passed by value (a ``fallback`` call) as it is."""
    if isinstance(ref, types.BaseTuple):
        def passed(context, builder, signature, args):  # a new reference, as results are
            return impl_ret_borrowed(context, builder, ref, args[0])

        return ref(ref), passed
    if not isinstance(ref, types.CPointer):
        return None

    def codegen(context, builder, signature, args):
        # the caller owns the buffers and passed them without owners (``_call``): the
        # reference counting Numba does on the result is then a no-op
        return builder.load(args[0])

    return ref.dtype(ref), codegen


def c_array(dtype, ndim):
    """The Numba type of a C-contiguous ``ndim``-D array of ``dtype`` in flat signatures:
    borrowed (``_llvm.BorrowedArray``), as every argument of a call is borrowed from its
    caller, so that the kernel counts no references on it."""
    return BorrowedArray(dtype, ndim, "C")


def _where(kernel):
    code = kernel.py_func.__code__
    return code.co_filename, code.co_firstlineno


def flat(kernel, signature_of, lazy=False, fallback=False):
    """A function that calls ``kernel`` (an ``njit`` dispatcher) through a pointer.

    ``signature_of(dtype)`` returns the kernel's signature for a float dtype (the dtype is
    read from the first float array among the arguments).

    The kernel is compiled (or loaded) when a caller is compiled, or, if ``lazy``, only at
    its first call: a path that a run may never take (one-row batches, products big enough
    for threads) then costs nothing until it is taken. A lazy kernel's first call must be
    made by the thread that entered compiled code, never inside a parallel region (it
    takes the GIL to compile): a kernel that a parallel region calls is first called on an
    empty block before the region (``_dense._layer_op`` does so for the activations and
    dropout).

    With ``fallback``, a call whose argument types are not the flat signature's (a strided
    array from user code, a float32 scalar) is an ordinary call of ``kernel`` instead of a
    compile-time error.
    """
    ident = f"{kernel.py_func.__module__}:{kernel.py_func.__name__}"
    if isinstance(kernel, EntryDispatcher):
        # a kernel that Python calls too takes ordinary arrays (``EntryDispatcher``): its
        # flat signature is one that Python's calls share
        borrowing = signature_of

        def signature_of(dtype):
            sig = borrowing(dtype)
            return plain_type(sig.return_type)(*(plain_type(t) for t in sig.args))
    if ident in _KERNELS and _where(_KERNELS[ident][0]) != _where(kernel):
        # (the same function again, as after a reload, replaces its entry)
        raise ValueError(f"a flat kernel named {ident} is already defined: name each "
                         "kernel's function uniquely in its module")
    _KERNELS[ident] = (kernel, signature_of)
    kernel.by_pointer = True  # compiled to machine code (``_cache.InternalDispatcher``)

    def dtype_of(args):
        for a in args:
            if isinstance(a, types.Array) and isinstance(a.dtype, types.Float):
                return a.dtype
            if isinstance(a, types.CPointer):
                a = a.dtype
            if isinstance(a, types.BaseTuple):
                found = dtype_of(list(a))
                if found is not None:
                    return found
        return None

    def typer(typingctx, *args):
        dtype = dtype_of(args)
        if dtype is None:
            return None
        key = f"{ident}:{dtype}"
        sig = signature_of(dtype)
        for got, want in zip(args, sig.args, strict=True):
            if plain_type(got) != plain_type(want) \
                    and not (isinstance(got, types.Integer | types.Boolean)
                             and isinstance(want, types.Integer | types.Boolean)) \
                    and not _by_reference(want, got):
                if fallback:
                    return _direct(kernel, args)
                raise TypeError(f"{key} takes {sig.args}; called with {args}")
        if not lazy:
            address(key)  # compile it now: the caller's first call then finds it at once

        def codegen(context, builder, signature, llargs):
            return _call(context, builder, key, sig, signature, llargs)

        return sig.return_type(*args), codegen

    n_args = len(signature_of(types.float64).args)
    if n_args not in _ARITIES:
        raise TypeError(f"flat kernels take 1 to {max(_ARITIES)} arguments, not {n_args}")
    call = intrinsic(_ARITIES[n_args](typer))
    call.__doc__ = kernel.py_func.__doc__
    return call


# an intrinsic's typing function takes its arguments one by one (Numba cannot lower a
# ``*args`` intrinsic): one definition per arity
_ARITIES = {
    1: lambda t: lambda typingctx, a: t(typingctx, a),
    2: lambda t: lambda typingctx, a, b: t(typingctx, a, b),
    3: lambda t: lambda typingctx, a, b, c: t(typingctx, a, b, c),
    4: lambda t: lambda typingctx, a, b, c, d: t(typingctx, a, b, c, d),
    5: lambda t: lambda typingctx, a, b, c, d, e: t(typingctx, a, b, c, d, e),
    6: lambda t: lambda typingctx, a, b, c, d, e, f: t(typingctx, a, b, c, d, e, f),
    7: lambda t: lambda typingctx, a, b, c, d, e, f, g: t(typingctx, a, b, c, d, e, f, g),
    8: lambda t: lambda typingctx, a, b, c, d, e, f, g, h: t(typingctx, a, b, c, d, e, f, g,
                                                               h),
    9: lambda t: lambda typingctx, a, b, c, d, e, f, g, h, i: t(typingctx, a, b, c, d, e, f,
                                                                  g, h, i),
    10: lambda t: lambda typingctx, a, b, c, d, e, f, g, h, i, j: t(typingctx, a, b, c, d, e,
                                                                      f, g, h, i, j),
    11: lambda t: lambda typingctx, a, b, c, d, e, f, g, h, i, j, k: t(typingctx, a, b, c, d,
                                                                         e, f, g, h, i, j, k),
}


def _direct(kernel, args):
    """An ordinary call of ``kernel`` (compiled for ``args`` and linked into the caller)."""
    plain = tuple(types.unliteral(a) for a in args)
    kernel.compile(plain)
    cres = kernel.overloads[plain]

    def codegen(context, builder, signature, llargs):
        context.active_code_library.add_linking_library(cres.library)
        cast = [context.cast(builder, v, t, w) for v, t, w in zip(llargs, args, plain)]
        return context.call_internal(builder, cres.fndesc, cres.signature, cast)

    return cres.signature.return_type(*args), codegen


def _by_reference(want, got):
    """Whether ``got`` is a bundle that the kernel takes by reference as ``want`` (its
    arrays borrowed: the same data model)."""
    return isinstance(want, types.CPointer) and plain_type(want.dtype) == plain_type(got)


def _without_owners(context, builder, ty, value):
    """``value`` (a tuple) with each array's owner cleared: the kernel borrows the caller's
    buffers, so no reference counting is needed (nor done) on them."""
    if not isinstance(ty, types.BaseTuple):
        return value
    for i, member in enumerate(ty):
        if isinstance(member, types.Array):
            value = builder.insert_value(
                value, without_owner(context, builder, member, builder.extract_value(value, i)),
                i)
    return value


def _call(context, builder, key, sig, caller_sig, llargs):
    mod = builder.module
    fnty = context.call_conv.get_function_type(sig.return_type, sig.args)
    gname = "fastbp_flat." + key
    slot = mod.globals.get(gname)
    if slot is None:
        slot = ir.GlobalVariable(mod, fnty.as_pointer(), gname)
        slot.linkage = "internal"
        slot.initializer = ir.Constant(fnty.as_pointer(), None)
    with builder.if_then(cgutils.is_null(builder, builder.load(slot)), likely=False):
        i8p = ir.IntType(8).as_pointer()
        resolver = cgutils.get_or_insert_function(mod, ir.FunctionType(i8p, [i8p]), RESOLVER)
        found = builder.call(resolver, [context.insert_const_string(mod, key)])
        builder.store(builder.bitcast(found, fnty.as_pointer()), slot)
    fn = builder.load(slot)
    with builder.if_then(cgutils.is_null(builder, fn), likely=False):
        context.call_conv.return_user_exc(
            builder, RuntimeError, (f"fastbp could not load the kernel {key} (see stderr)",))
    args = []
    for v, t, w in zip(llargs, caller_sig.args, sig.args, strict=True):
        if _by_reference(w, t):  # a bundle, passed by reference
            ref = cgutils.alloca_once(builder, context.get_value_type(t))
            builder.store(_without_owners(context, builder, t, v), ref)
            args.append(ref)
        else:
            args.append(context.cast(builder, v, t, w))
    status, res = context.call_conv.call_function(builder, fn, sig.return_type, sig.args,
                                                  args)
    with cgutils.if_unlikely(builder, status.is_error):
        context.call_conv.return_status_propagate(builder, status)
    return res


def compile_all(dtype: str) -> None:
    """Compile (or load) every flat kernel for ``dtype`` (``"float32"`` or ``"float64"``),
    the lazy ones included: what ``python -m fastbp warmup`` needs."""
    for ident in list(_KERNELS):
        address(f"{ident}:{dtype}")
