"""fastbp's on-disk compile cache, and the ``njit`` every kernel is defined with.

``njit`` is Numba's ``njit`` whose ``cache=True`` uses fastbp's cache instead of Numba's
``FunctionCache``. It differs from Numba's in four ways, all local to fastbp's functions
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
into a read-only image) is read from, not bypassed for an empty user cache.

**Never fatal.** With no writable location at all (read-only site-packages and home, no
``NUMBA_CACHE_DIR``), kernels compile in memory for the process and a one-line notice says
where fastbp would cache and how to set ``NUMBA_CACHE_DIR``; ``import fastbp`` never fails
because of the cache (Numba alone raises "no locator available" at import). A cache that
fails while saving (disk full, permissions changed) is switched off for that function.

**Says so.** When a kernel is about to be compiled rather than loaded, fastbp prints one
line on stderr per dtype and process -- ``fastbp: compiling kernels for float32, once;
cached in ...`` -- and nothing when the cache is warm. Set
``FASTBP_COMPILE_NOTICE=0`` to silence it. ``python -m fastbp warmup`` fills the cache
ahead of time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading

import numba
from numba.core import caching, types

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
            if name.endswith(".py"):
                path = os.path.join(root, name)
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
            index = caching.IndexDataCacheFile(
                self.get_cache_path(), _filename_base(py_func, py_file), stamp)
            try:
                return self if index._load_index() else None
            except Exception:  # noqa: BLE001 - unreadable or foreign: not ours to use
                return None

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


_lock = threading.Lock()
_noticed: set = set()


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
        msg = (f"fastbp: compiling {what} in memory for this process only: no writable "
               f"cache directory (tried NUMBA_CACHE_DIR, {PACKAGE_DIR}{os.sep}kernels"
               f"{os.sep}__pycache__ and the user cache); set NUMBA_CACHE_DIR to a writable "
               f"directory to compile once.")
    else:
        msg = (f"fastbp: compiling {what}, once; cached in {cache.where} "
               f"(`python -m fastbp warmup` compiles ahead of time).")
    try:
        print(msg, file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - a closed or odd stderr must not stop a compile
        pass


class Cache(caching.FunctionCache):
    """Numba's ``FunctionCache`` with a package's stamped locators, the read-only and
    in-memory fallbacks and the compile notice (see the module docstring). Subclasses made
    by ``jit_for_package`` set ``_impl_class``."""

    def __init__(self, py_func):
        super().__init__(py_func)
        locator = self._impl.locator
        self.in_memory = isinstance(locator, _MemoryLocator)
        self.read_only = getattr(locator, "read_only", False)
        if self.in_memory:
            self.disable()

    @property
    def where(self) -> str:
        """The cache directory to name in the notice."""
        path = self.cache_path
        return path if os.path.basename(path) == "__pycache__" else os.path.dirname(path)

    def load_overload(self, sig, target_context):
        data = super().load_overload(sig, target_context)
        if data is None:
            notice(self, _dtype_of(sig))
        return data

    def save_overload(self, sig, data):
        if self.read_only:
            return
        try:
            super().save_overload(sig, data)
        except OSError:  # disk full, permissions changed under us: keep the compiled code
            self.disable()


def jit_for_package(package_dir: str):
    """An ``njit`` decorator whose ``cache=True`` caches with ``package_dir``'s stamp.

    Functions must be defined in files under ``package_dir``; the stamp is computed once,
    here, so call this at import time of the package.
    """
    impl = type("PackageCacheImpl", (_numba_attr("CompileResultCacheImpl"),),
                {"_locator_classes": locators(package_dir)})
    cache_cls = type("PackageCache", (Cache,), {"_impl_class": impl})

    def njit(*args, cache: bool = False, **options):
        """``numba.njit`` whose ``cache=True`` uses the package's ``Cache``."""
        def decorate(func):
            dispatcher = numba.njit(**options)(func)
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
