"""On-disk caching of fastbp's compiled kernels that is safe across source changes.

Numba's ``cache=True`` stamps each cached function with a hash of *its own* source file.
A kernel compiled with code from another module (fastbp's drivers inline the layer
kernels, activations and optimizer steps) is then not invalidated when only that other
module changes, and would run stale machine code -- wrong results, or a crash when a
signature changed. fastbp therefore registers cache locators for its own files whose
stamp is a hash of *every* module of the package: any change to any fastbp source
recompiles all of fastbp's kernels once. Cache locations are Numba's usual ones
(``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the sources, else the user-wide
cache); other packages' functions are unaffected.
"""

from __future__ import annotations

import hashlib
import os

from numba.core import caching

#: environment switches read when kernels are compiled; they are part of the stamp
COMPILE_SWITCHES = ()


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


def _stamped(base, package_dir: str, stamp: str):
    """A subclass of Numba locator ``base`` that claims only files inside ``package_dir``."""

    class Locator(base):
        def get_source_stamp(self):
            return stamp

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.abspath(py_file).startswith(package_dir + os.sep):
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = f"PackageStamped{base.__name__}"
    return Locator


def _numba_attr(name: str):
    # Numba 0.68 made these public; earlier versions spell them with a leading underscore
    return getattr(caching, name, None) or getattr(caching, "_" + name, None)


def install(package_dir: str) -> bool:
    """Make functions defined under ``package_dir`` cache with a package-wide stamp.

    Must run before the package's ``@njit(cache=True)`` functions are defined. Idempotent.
    Returns False (and changes nothing) if this Numba lacks the locator machinery.
    """
    package_dir = os.path.abspath(package_dir)
    impl = _numba_attr("CacheImpl")
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = tuple(_numba_attr(n) for n in names)
    if impl is None or not hasattr(impl, "_locator_classes") or None in bases:
        return False
    if any(getattr(c, "_fastbp_package", None) == package_dir for c in impl._locator_classes):
        return True
    stamp = package_stamp(package_dir)
    locators = [_stamped(b, package_dir, stamp) for b in bases]
    for loc in locators:
        loc._fastbp_package = package_dir
    impl._locator_classes = locators + list(impl._locator_classes)
    return True
