"""Safe on-disk caching of fastbp's compiled kernels.

Numba's ``cache=True`` keys each cached function on the source of *its own file* only. A
kernel inlines and links functions from other files (``_train`` -> ``_network`` ->
``_dense`` -> ``_gemm``), so after an edit to ``_gemm.py`` the cached ``_train`` functions
would still hold the old inlined code -- stale results, or a crash when the old code calls
a parallel kernel whose signature changed. This module registers a cache locator, used for
fastbp's own files only, whose source stamp hashes *every* source file of the package: any
change anywhere in fastbp invalidates all of fastbp's cache entries, while unchanged
installs load every kernel from disk. The cache stays where Numba would put it
(``__pycache__`` next to the sources, or ``NUMBA_CACHE_DIR`` when set).

Must be imported before any module that defines a cached kernel (``fastbp/__init__.py``
imports it first).
"""

from __future__ import annotations

import hashlib
import os

from numba.core import caching

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_stamp: str | None = None


def package_stamp() -> str:
    """SHA-256 over the package's ``.py`` files and compile-time switches (computed once)."""
    global _stamp
    if _stamp is None:
        h = hashlib.sha256()
        # compile-time switches read from the environment must invalidate the cache too
        h.update(os.environ.get("FASTBP_USE_BLAS", "0").encode())
        for name in sorted(os.listdir(_PACKAGE_DIR)):
            if name.endswith(".py"):
                h.update(name.encode())
                with open(os.path.join(_PACKAGE_DIR, name), "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
        _stamp = h.hexdigest()
    return _stamp


def _in_package(py_file) -> bool:
    try:
        return os.path.dirname(os.path.abspath(py_file)) == _PACKAGE_DIR
    except (TypeError, ValueError):
        return False


class _PackageStampMixin:
    def get_source_stamp(self):
        return package_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _in_package(py_file):
            return None
        return super().from_function(py_func, py_file)


class PackageUserProvidedLocator(_PackageStampMixin, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR`` location, package-wide stamp."""


class PackageInTreeLocator(_PackageStampMixin, caching.InTreeCacheLocator):
    """``__pycache__`` location, package-wide stamp."""


class PackageUserWideLocator(_PackageStampMixin, caching.UserWideCacheLocator):
    """User-wide cache directory (read-only installs), package-wide stamp."""


def install() -> None:
    """Put the package locators first in Numba's locator list (idempotent)."""
    classes = caching.CacheImpl._locator_classes
    for cls in (PackageUserWideLocator, PackageInTreeLocator, PackageUserProvidedLocator):
        if cls not in classes:
            classes.insert(0, cls)


install()
