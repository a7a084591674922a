"""fastbp's on-disk compile cache, and the ``njit`` every kernel is defined with.

``njit`` is Numba's ``njit`` whose ``cache=True`` uses fastbp's cache instead of Numba's
``FunctionCache``. It differs from Numba's in six ways, all local to fastbp's functions
(Numba's own cache and other packages' functions are untouched):

**One stamp for the package.** Numba stamps a cached function with a hash of *its own*
source file. A kernel compiled with code from another module (the drivers inline the layer
kernels, activations and optimizer steps) is then not invalidated when only that other
module changes, and would run stale machine code. fastbp's stamp is a hash of *every*
module of the package (contents, not times), so any change to any fastbp source recompiles
all of fastbp's kernels once, and a reinstall of the same version keeps the cache valid.

**Where.** The usual places, in Numba's order: ``NUMBA_CACHE_DIR`` if set, else
``__pycache__`` beside the sources, else the user-wide cache (``~/.cache/numba``). A
read-only ``__pycache__`` that already holds this version's kernels (a warm cache baked
into a read-only image) is read from, not bypassed for an empty user cache. A kernel it
lacks (warmed on another CPU, or a signature the image's warm-up did not build) falls back
to the writable cache that would be used without it (the user cache, else memory): it is
compiled once, saved there, and loaded from there by later processes.

**Never fatal.** With no writable location at all (read-only site-packages and home, no
``NUMBA_CACHE_DIR``), kernels compile in memory for the process and a one-line notice says
where fastbp would cache and how to set ``NUMBA_CACHE_DIR``; ``import fastbp`` never fails
because of the cache (Numba alone raises "no locator available" at import). A cache that
fails while saving (disk full, permissions changed) is switched off for that function. An
index or data file that cannot be read (empty, truncated, zeroed, not a regular file,
unpicklable) is a miss: fastbp says once which file it was, compiles the kernel again and
replaces the entry. Cache files are opened without blocking and only if they are regular
files, so a FIFO planted in the cache cannot hang a process.

**Entry points only where Python calls.** A function is compiled for calls from compiled
code only (no Python wrapper, no C callback: each costs about as much compile time as a
small kernel), and calling it from Python is a ``TypeError`` naming it, unless it is
declared ``njit(..., entry=True)``: the public kernels and the drivers the facade calls.

**Machine code only where it is called.** Numba links a callee's LLVM module into each
caller's and optimises and emits the merged module again, yet also gives every callee
machine code of its own and caches it. An internal kernel that is neither a flat kernel
(``_flat``: called through a pointer) nor parallel is only ever linked: it is lowered and
optimised but gets no machine code and no cache entry (its cached callers hold its code),
and ``njit(..., optimised_by_callers=True)`` also skips its own module passes, which its
callers run on the merged module anyway (the product machinery: ``gemm_tile``, ``pack_b``,
``tile_grid``). A process that compiles a new caller of it compiles it again, without
machine code.

**Says so.** When a kernel is about to be compiled rather than loaded, fastbp prints one
line on stderr per dtype and process -- ``fastbp: compiling kernels for float32, once;
cached in ...``, naming the directory the compiled code is actually saved in -- and nothing
when the cache is warm. Set ``FASTBP_COMPILE_NOTICE=0`` to silence it. ``python -m fastbp
warmup`` fills the cache ahead of time; ``unsaved()`` tells it whether anything it compiled
could not be saved.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import io
import os
import pickle
import stat
import sys
import threading
from contextlib import contextmanager

import numba
from numba.core import caching, compiler, types
from numba.core.codegen import JITCodeLibrary
from numba.core.registry import CPUDispatcher

try:  # the lock that serialises saves across processes (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: environment switches read when kernels are compiled; they are part of the stamp
COMPILE_SWITCHES = ()
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_stamp(package_dir: str) -> str:
    """SHA-256 over the package's ``.py`` files (paths and contents) and compile switches."""
    h = hashlib.sha256()
    for name in COMPILE_SWITCHES:
        h.update(f"{name}={os.environ.get(name, '')};".encode())
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".py") and os.path.isfile(path):  # a regular file, not a FIFO
                h.update(os.path.relpath(path, package_dir).encode())
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _numba_attr(name: str):
    # Numba 0.68 made these public; earlier versions spell them with a leading underscore
    return getattr(caching, name, None) or getattr(caching, "_" + name, None)


class _MemoryLocator(caching._CacheLocator):
    """The last resort: no directory at all. ``_Cache`` disables itself on this one."""

    path = "<memory>"

    def __init__(self, py_func, py_file):
        self._lineno = py_func.__code__.co_firstlineno

    def ensure_cache_path(self):
        raise OSError("fastbp compiles in memory: no writable cache directory")

    def get_cache_path(self):
        return self.path

    def get_source_stamp(self):
        return None

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        return cls(py_func, py_file)


def locators(package_dir: str, stamp: str | None = None) -> list:
    """Numba locator classes for functions defined under ``package_dir``, in the order
    they are tried; each stamps with ``stamp`` (default: ``package_stamp(package_dir)``)."""
    package_dir = os.path.abspath(package_dir)
    stamp = package_stamp(package_dir) if stamp is None else stamp

    def stamped(base, name, read_only=False):
        def get_source_stamp(self):
            return stamp

        def from_function(cls, py_func, py_file):
            if not os.path.abspath(py_file).startswith(package_dir + os.sep):
                return None
            if not read_only:
                return base.from_function.__func__(cls, py_func, py_file)
            # a read-only __pycache__ (an image, a shared install) that holds this
            # function's kernels for this stamp: load from it, never write to it
            self = cls(py_func, py_file)
            index = CacheFile(self.get_cache_path(), _filename_base(py_func, py_file), stamp)
            return self if index._load_index() else None  # unreadable: reported, {}

        ns = {"get_source_stamp": get_source_stamp,
              "from_function": classmethod(from_function), "read_only": read_only}
        if read_only:
            ns["ensure_cache_path"] = _MemoryLocator.ensure_cache_path
        cls = type(name, (base,), ns)
        cls.__qualname__ = name
        return cls

    user = _numba_attr("UserProvidedCacheLocator")
    tree = _numba_attr("InTreeCacheLocator")
    wide = _numba_attr("UserWideCacheLocator")
    return [stamped(user, "PackageStampedUserProvided"),
            stamped(tree, "PackageStampedInTree"),
            stamped(tree, "PackageStampedReadOnlyInTree", read_only=True),
            stamped(wide, "PackageStampedUserWide"),
            _MemoryLocator]


def _filename_base(py_func, py_file) -> str:
    """The name Numba's ``CacheImpl.get_filename_base`` gives ``py_func``'s cache files."""
    modname = os.path.splitext(os.path.basename(py_file))[0]
    fullname = f"{modname}.{py_func.__qualname__}".replace("<", "").replace(">", "")
    v = sys.version_info
    return (f"{fullname}-{py_func.__code__.co_firstlineno}.py{v[0]}{v[1]}"
            f"{getattr(sys, 'abiflags', '')}")


def open_regular(path) -> int:
    """A read-only file descriptor of ``path`` if it is a regular file. Never blocks: opened
    non-blocking (a FIFO would wait for a writer, a device could too) and its type checked
    before anything is read. Raises ``IsADirectoryError`` for a directory and ``OSError``
    (``EINVAL``) for anything else that is not a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"Not a regular file ({stat.filemode(mode)[0]})", path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str) -> bytes:
    """The bytes of ``path`` if it is a regular file (``open_regular``)."""
    with os.fdopen(open_regular(path), "rb") as f:
        return f.read()


@contextmanager
def _file_lock(path: str):
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while the block runs.
    Best effort, never fatal: without ``fcntl``, or when the lock file cannot be opened as
    a regular file (a read-only cache, a FIFO planted under that name), the block runs
    unlocked, as Numba's own cache always does. A process that dies holding the lock
    releases it."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK
                         | getattr(os, "O_NOFOLLOW", 0), 0o644)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                fd = None
            else:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # (closing releases the lock)


_lock = threading.Lock()
_noticed: set = set()
_bad_files: set = set()
#: functions whose compiled code could not be saved: ``{qualified name: reason}``
_unsaved: dict = {}
#: every cache made by ``jit_for_package`` in this process
_caches: list = []


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a fork may have happened while another thread held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _say(msg: str) -> None:
    try:
        print(msg, file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - a closed or odd stderr must not stop a compile
        pass


def report_bad_file(path: str, exc: BaseException) -> None:
    """Say once per process that the cache file ``path`` could not be read."""
    with _lock:
        if path in _bad_files:
            return
        _bad_files.add(path)
    _say(f"fastbp: ignoring the unreadable compile cache file {path} "
         f"({type(exc).__name__}: {exc}); the kernel is compiled again and the entry "
         f"replaced.")


class CacheFile(caching.IndexDataCacheFile):
    """Numba's index and data files, read without trusting them: a file that cannot be
    read or unpickled is a miss (said once, see ``report_bad_file``), and only regular
    files are opened, without blocking. Saving is Numba's (a temporary file renamed over
    the entry), so a bad entry is replaced by the next save."""

    def _load_index(self):
        try:
            data = read_regular(self._index_path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            report_bad_file(self._index_path, exc)
            return {}
        try:
            stream = io.BytesIO(data)
            if pickle.load(stream) != self._version:
                return {}  # another Numba's: not ours to read further
            stamp, overloads = pickle.loads(stream.read())
            if not isinstance(overloads, dict):
                raise TypeError(f"the index holds a {type(overloads).__name__}, not a dict")
        except Exception as exc:  # noqa: BLE001 - empty, truncated, zeroed, foreign
            report_bad_file(self._index_path, exc)
            return {}
        return overloads if stamp == self._source_stamp else {}

    def _load_data(self, name):
        return pickle.loads(read_regular(self._data_path(name)))

    def load(self, key):
        name = self._load_index().get(key)
        if name is None:
            return None
        try:
            return self._load_data(name)
        except FileNotFoundError:  # removed while the index still refers to it
            return None
        except Exception as exc:  # noqa: BLE001
            report_bad_file(self._data_path(name), exc)
            return None

    def save(self, key, data):
        # Numba reads the index, picks the first free data-file name, writes the index, then
        # the data: two processes saving overloads of one function at once (``python -m
        # fastbp warmup`` compiles the dtypes in parallel processes) could each drop the
        # other's entry, or write their code to the same data file. A lock file beside the
        # index serialises the whole save.
        with _file_lock(self._index_path + ".lock"):
            super().save(key, data)

    def data_path(self, key) -> str | None:
        """The data file the index names for ``key`` (None if none)."""
        name = self._load_index().get(key)
        return None if name is None else self._data_path(name)


def unsaved() -> dict:
    """``{function: reason}`` for every fastbp function compiled in this process whose
    machine code could not be saved to the on-disk cache (none: everything compiled here
    was saved)."""
    with _lock:
        return dict(_unsaved)


def nowhere() -> bool:
    """Whether no cache of this process has a directory at all (no writable one, and no
    read-only one holding any of its kernels): nothing compiled here can be saved."""
    with _lock:
        return bool(_caches) and all(c.in_memory for c in _caches)


def _dtype_of(sig) -> str | None:
    for t in sig:
        if isinstance(t, types.Array) and isinstance(t.dtype, types.Float):
            return str(t.dtype)
    return None


def notice(cache, dtype: str | None) -> None:
    """Print, once per dtype and process, that kernels are about to be compiled."""
    if os.environ.get("FASTBP_COMPILE_NOTICE", "1").strip().lower() in ("0", "false", "no"):
        return
    with _lock:
        if dtype in _noticed or (dtype is None and _noticed):
            return
        _noticed.add(dtype)
    what = f"kernels for {dtype}" if dtype else "kernels"
    if cache.in_memory:
        msg = (f"fastbp: compiling {what} in memory for this process only: {NO_CACHE_DIR}; "
               f"set NUMBA_CACHE_DIR to a writable directory to compile once.")
    else:
        msg = (f"fastbp: compiling {what}, once; cached in {cache.where} "
               f"(`python -m fastbp warmup` compiles ahead of time).")
    _say(msg)


#: why a cache is in memory, in the words of the notice and of ``python -m fastbp warmup``
NO_CACHE_DIR = (f"no writable cache directory (tried NUMBA_CACHE_DIR, {PACKAGE_DIR}{os.sep}"
                f"kernels{os.sep}__pycache__ and the user cache)")


class Cache(caching.FunctionCache):
    """Numba's ``FunctionCache`` with a package's stamped locators, the read-only and
    in-memory fallbacks, tolerant reading and the compile notice (see the module docstring).
    Subclasses made by ``jit_for_package`` set ``_impl_class`` and ``_writable_class`` (the
    cache a read-only one falls back to for what it lacks)."""

    _writable_class = None

    def __init__(self, py_func):
        super().__init__(py_func)
        locator = self._impl.locator
        self._cache_file = CacheFile(self._cache_path, self._impl.filename_base,
                                     locator.get_source_stamp())
        self.in_memory = isinstance(locator, _MemoryLocator)
        self.read_only = getattr(locator, "read_only", False)
        self._writable = None
        if self.in_memory:
            self.disable()
        with _lock:
            _caches.append(self)

    @property
    def where(self) -> str:
        """The cache directory to name in the notice."""
        path = self.cache_path
        return path if os.path.basename(path) == "__pycache__" else os.path.dirname(path)

    def writable(self) -> Cache:
        """The cache that takes what a read-only one lacks (made on first use)."""
        if self._writable is None:
            self._writable = self._writable_class(self._py_func)
        return self._writable

    def _load_overload(self, sig, target_context):
        if not self._enabled:
            return None
        key = self._index_key(sig, target_context.codegen())
        data = self._cache_file.load(key)
        if data is None:
            return None
        try:
            return self._impl.rebuild(target_context, data)
        except Exception as exc:  # noqa: BLE001 - unpickled but not machine code we can use
            report_bad_file(self._cache_file.data_path(key) or self.cache_path, exc)
            return None

    def load_overload(self, sig, target_context):
        data = super().load_overload(sig, target_context)
        if data is None and self.read_only:  # not in the read-only cache: the writable one
            return self.writable().load_overload(sig, target_context)
        if data is None:
            notice(self, _dtype_of(sig))
        return data

    def _record_unsaved(self, reason: str) -> None:
        with _lock:
            _unsaved.setdefault(self._py_func.__qualname__, reason)

    def save_overload(self, sig, data):
        if self.read_only:
            self.writable().save_overload(sig, data)
            return
        if self.in_memory:
            self._record_unsaved(NO_CACHE_DIR)
            return
        if not self._enabled:
            self._record_unsaved(f"an earlier save to {self.cache_path} failed")
            return
        try:
            super().save_overload(sig, data)
        except OSError as exc:  # disk full, permissions changed under us: keep the code
            self.disable()
            self._record_unsaved(f"saving to {self.cache_path} failed: {exc}")


#: the cyclic collector's thresholds while fastbp compiles (each generation's at least):
#: Numba's compiler makes millions of short-lived objects among hundreds of thousands of
#: long-lived ones (IR, types, templates), and at the default thresholds a cold first fit
#: ran about 1,450 young and a dozen full collections, 0.4-0.9 of its 8-9 CPU-s. (mypy
#: raises its thresholds for the same reason.) Restored when the outermost compile ends.
COMPILE_GC_THRESHOLD = (50_000, 20, 100)
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_thresholds: tuple = ((), ())  # (the saved thresholds, the raised ones)


@contextmanager
def few_collections():
    """Raise the collector's thresholds to ``COMPILE_GC_THRESHOLD`` for the duration (nested:
    the outermost restores them, unless something else changed them meanwhile)."""
    global _gc_depth, _gc_thresholds
    with _gc_lock:
        if _gc_depth == 0:
            saved = gc.get_threshold()
            _gc_thresholds = saved, tuple(map(max, saved, COMPILE_GC_THRESHOLD))
            gc.set_threshold(*_gc_thresholds[1])
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            saved, raised = _gc_thresholds
            if _gc_depth == 0 and gc.get_threshold() == raised:
                gc.set_threshold(*saved)


class _NoEnvironment:
    """The JIT codegen, as a ``_LinkOnlyLibrary`` shows it to Numba: its function has no
    machine code, so no environment pointer to set (its linked copies are in the callers'
    modules, as when a cached caller is loaded)."""

    def __init__(self, codegen):
        self._codegen = codegen

    def set_env(self, env_name, env):
        pass

    def __getattr__(self, name):
        return getattr(self._codegen, name)


class _LinkOnlyLibrary(JITCodeLibrary):
    """The code library of a kernel that is only ever linked into its callers: lowered and
    optimised, but not turned into machine code. Numba links a callee's module into each
    caller and optimises and emits the caller's merged module again, so the callee's own
    machine code (0.37 CPU-s of a first fit's compile: ``gemm_tile`` 0.21) was work no
    call used. (Numba's emitter also rewrote the module in place, so callers used to link
    IR already prepared for the emitter; now they link the optimised IR.)"""

    @property
    def codegen(self):
        return _NoEnvironment(self._codegen)

    def _finalize_final_module(self):
        self._finalize_dynamic_globals()
        self._verify_declare_only_symbols()
        self._finalized = True  # (not added to the JIT: no machine code, no address)

    def get_pointer_to_function(self, name):
        # nothing here has an address: the module was never added to the JIT
        self._ensure_finalized()
        return 0


class _CallerOptimisedLibrary(_LinkOnlyLibrary):
    """A ``_LinkOnlyLibrary`` whose module is optimised only in its callers' modules (its
    functions get the per-function passes): ``gemm_tile``'s own module passes took 0.44
    CPU-s, and its caller's speed did not change without them."""

    def _optimize_final_module(self):
        pass


class _LinkOnlyCompiler(compiler.Compiler):
    """Numba's pipeline, lowering into a ``_LinkOnlyLibrary``."""

    library_class = _LinkOnlyLibrary

    def compile_extra(self, func):
        if self.state.library is None:
            library = self.state.targetctx.codegen().create_library(func.__qualname__)
            library.__class__ = self.library_class
            self.state.library = library
        return super().compile_extra(func)


class _CallerOptimisedCompiler(_LinkOnlyCompiler):
    library_class = _CallerOptimisedLibrary


#: the Numba internals a link-only library relies on (Numba 0.59-0.69 has them); without
#: them internal kernels are compiled as Numba compiles any function
LINK_ONLY = all(hasattr(JITCodeLibrary, name) for name in (
    "_finalize_dynamic_globals", "_verify_declare_only_symbols", "_optimize_final_module",
    "_ensure_finalized"))


class InternalDispatcher(CPUDispatcher):
    """A dispatcher compiled without a Python entry point (``njit`` without ``entry``):
    callable from compiled code as any other, refused with a clear error from Python
    (where Numba alone would jump to the missing wrapper and crash the interpreter).

    Unless it is called through a pointer (a flat kernel: ``_flat.flat`` sets
    ``by_pointer``) or runs a parallel region, its code is only ever linked into callers,
    which are cached with it inside: it is compiled link-only (``_LinkOnlyLibrary``), and
    not cached itself (a cache holds machine code, which it has none of). A process that
    compiles a new caller of it compiles its front end again (no machine code).
    """

    by_pointer = False
    optimised_by_callers = False

    def compile(self, sig):
        if LINK_ONLY and not self.by_pointer and not self.targetoptions.get("parallel") \
                and self._compiler.pipeline_class is compiler.Compiler:
            self._compiler.pipeline_class = _CallerOptimisedCompiler \
                if self.optimised_by_callers else _LinkOnlyCompiler
            self._cache = caching.NullCache()
        with few_collections():
            return super().compile(sig)

    def __call__(self, *args, **kwargs):
        func = self.py_func
        raise TypeError(f"{func.__module__}.{func.__qualname__} is an internal compiled kernel: "
                        "call it from an @njit function, or use the public kernels of "
                        "fastbp.kernels from Python")


class EntryDispatcher(CPUDispatcher):
    """A dispatcher with a Python entry point (``njit(entry=True)``) that never compiles a
    signature with a borrowed array (``_llvm.BorrowedArray``): Numba would convert a NumPy
    array from Python to it and then not release what unboxing acquired. Compiled callers
    pass ``_llvm.as_array(a)`` to such a kernel, and share its one signature with Python."""

    def compile(self, sig):
        from ._llvm import plain_type  # (no import cycle at module load)

        args = sig.args if hasattr(sig, "args") else sig
        if any(plain_type(t) != t for t in args):  # a borrowed array, or a bundle of some
            func = self.py_func
            raise TypeError(f"{func.__module__}.{func.__qualname__} takes ordinary arrays: "
                            f"pass a borrowed array as as_array(a) (got {args})")
        with few_collections():
            return super().compile(sig)


def jit_for_package(package_dir: str):
    """An ``njit`` decorator whose ``cache=True`` caches with ``package_dir``'s stamp.

    Functions must be defined in files under ``package_dir``; the stamp is computed once,
    here, so call this at import time of the package.
    """
    classes = locators(package_dir)
    base = _numba_attr("CompileResultCacheImpl")
    impl = type("PackageCacheImpl", (base,), {"_locator_classes": classes})
    # what a read-only __pycache__ lacks goes where it would without it: the locators after it
    after = next(i for i, c in enumerate(classes) if getattr(c, "read_only", False)) + 1
    writable_impl = type("PackageWritableCacheImpl", (base,),
                         {"_locator_classes": classes[after:]})
    writable_cls = type("PackageWritableCache", (Cache,), {"_impl_class": writable_impl})
    cache_cls = type("PackageCache", (Cache,), {"_impl_class": impl,
                                                 "_writable_class": writable_cls})

    def njit(*args, cache: bool = False, entry: bool = False,
             optimised_by_callers: bool = False, **options):
        """``numba.njit`` whose ``cache=True`` uses the package's ``Cache``.

        Without ``entry``, the function is an internal kernel: compiled for calls from
        compiled code only, with neither of the two entry points Numba otherwise builds for
        each signature (the wrapper that unboxes Python arguments and the C callback), which
        cost about as much compile time as a small kernel itself. Calling it from Python
        raises ``TypeError``. ``entry=True``: the function can also be called from Python
        (the public kernels, the drivers the facade calls). An internal kernel that is not
        made a flat kernel gets no machine code of its own (``InternalDispatcher``);
        ``optimised_by_callers=True``: nor module passes of its own (for kernels linked
        into few callers whose speed was measured unchanged by it).
        """
        def decorate(func):
            if not entry:
                options.setdefault("no_cpython_wrapper", True)
                options.setdefault("no_cfunc_wrapper", True)
            dispatcher = numba.njit(**options)(func)
            dispatcher.__class__ = EntryDispatcher if entry else InternalDispatcher
            if optimised_by_callers:
                dispatcher.optimised_by_callers = True
            if cache:
                dispatcher._cache = cache_cls(dispatcher.py_func)
            return dispatcher

        if args:
            if len(args) == 1 and callable(args[0]) and not options:
                return decorate(args[0])
            raise TypeError("njit takes keyword options only")
        return decorate

    return njit


#: the decorator of every fastbp kernel
njit = jit_for_package(PACKAGE_DIR)
