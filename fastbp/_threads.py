"""Thread safety of the compiled calls: Numba's threading layer, fork, per-call thread counts.

fastbp does not change Numba's threading layer. Numba's default choice tries ``tbb``, then
``omp``, then ``workqueue``. ``tbb`` and ``omp`` are thread-safe: parallel kernels launched
from several Python threads at once run concurrently, and since every kernel releases the
GIL (``nogil=True``) and writes only into its own model's buffers, models trained in
different threads give bitwise the results they give one after another. ``workqueue`` is
not thread-safe (concurrent launches abort the process), so when it is the layer in use
fastbp serialises its compiled calls with a process-wide lock.

``import fastbp`` starts the layer (``start_threading_layer``): a cached ``parallel=True``
kernel that runs before the layer is started crashes the process (numba/numba#8578).

GNU OpenMP (``omp`` on Linux) is not fork-safe: Numba terminates a process forked from one
that started it at its first parallel launch, and once the parent has run parallel regions
libgomp would hang the child anyway. ``multiprocessing`` forks by default on Linux, so in a
process forked from one that started GNU OpenMP fastbp runs its compiled calls on one
thread: the kernels take their serial paths when Numba's thread count is 1, launching no
parallel region (results never depend on the thread count). ``tbb`` and ``workqueue`` are
fork-safe and keep all threads in forked children. The process-wide lock is re-created in a
forked child, so a fork while another thread held it cannot leave the child blocked.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numba

from ._validation import check_n_threads

_SERIAL_LOCK = threading.RLock()  # re-entrant: a validation pass may predict inside a fit
_serialize: bool | None = None
_gnu_omp = False  # the layer in use is GNU OpenMP (not fork-safe)
_forked_from_gnu_omp = False  # this process was forked from one that started it


def start_threading_layer() -> str:
    """Start Numba's threading layer (its usual choice) if it is not running yet, and
    prepare forked children; returns the layer's name. Called by ``import fastbp``."""
    global _gnu_omp
    layer = threading_layer()
    _gnu_omp = _is_gnu_openmp(layer)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    return layer


def _is_gnu_openmp(layer: str) -> bool:
    if layer != "omp":
        return False
    try:
        from numba.np.ufunc import omppool
    except ImportError:  # pragma: no cover - omp in use implies it imports
        return False
    return getattr(omppool, "openmp_vendor", "") == "GNU"


def _after_fork_in_child() -> None:
    global _SERIAL_LOCK, _forked_from_gnu_omp
    _SERIAL_LOCK = threading.RLock()  # a fork may have happened while a thread held it
    if _gnu_omp:
        _forked_from_gnu_omp = True
        try:  # also for kernels called directly from this thread (user @njit code)
            numba.set_num_threads(1)
        except Exception:  # noqa: BLE001 - kernel_threads sets it for fastbp's calls anyway
            pass


def threading_layer() -> str:
    """The Numba threading layer in use (starting Numba's thread pool if needed)."""
    numba.get_num_threads()  # launches the threading layer, so it can be queried
    return numba.threading_layer()


def serialize_kernels() -> bool:
    """True when the threading layer in use is not thread-safe (``workqueue``)."""
    global _serialize
    if _serialize is None:
        _serialize = threading_layer() not in ("tbb", "omp")
    return _serialize


@contextlib.contextmanager
def kernel_threads(n_threads):
    """Run the body with ``n_threads`` Numba threads (``None``: leave the count as it is),
    restoring the previous count afterwards, even on error. Numba's thread count is
    thread-local, so this does not affect other Python threads. Serialises the body
    across Python threads when the threading layer is not thread-safe. In a process forked
    from one that started GNU OpenMP the body always runs with one thread (the kernels'
    serial paths: no OpenMP region, which would kill or hang this process)."""
    n_threads = check_n_threads(n_threads)
    if _forked_from_gnu_omp:
        n_threads = 1
    serial = serialize_kernels()
    lock = _SERIAL_LOCK
    if serial:
        lock.acquire()
    # tiles handed out one at a time (each a fixed amount of work): a thread that another
    # process slows down takes fewer of them instead of holding the others back
    chunk = numba.set_parallel_chunksize(1)
    try:
        if n_threads is None:
            yield
        else:
            previous = numba.get_num_threads()
            numba.set_num_threads(n_threads)
            try:
                yield
            finally:
                numba.set_num_threads(previous)
    finally:
        numba.set_parallel_chunksize(chunk)
        if serial:
            lock.release()
