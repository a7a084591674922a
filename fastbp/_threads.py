"""Thread safety of the compiled calls: Numba's threading layer and per-call thread counts.

fastbp does not change Numba's threading layer. Numba's default choice tries ``tbb``, then
``omp``, then ``workqueue``. ``tbb`` and ``omp`` are thread-safe: parallel kernels launched
from several Python threads at once run concurrently, and since every kernel releases the
GIL (``nogil=True``) and writes only into its own model's buffers, models trained in
different threads give bitwise the results they give one after another. ``workqueue`` is
not thread-safe (concurrent launches abort the process), so when it is the layer in use
fastbp serialises its compiled calls with a process-wide lock.
"""

from __future__ import annotations

import contextlib
import threading

import numba

from ._validation import check_n_threads

_SERIAL_LOCK = threading.RLock()  # re-entrant: a validation pass may predict inside a fit
_serialize: bool | None = None


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
    across Python threads when the threading layer is not thread-safe."""
    n_threads = check_n_threads(n_threads)
    serial = serialize_kernels()
    if serial:
        _SERIAL_LOCK.acquire()
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
            _SERIAL_LOCK.release()
