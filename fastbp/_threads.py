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

Busy machines: a parallel region ends only when each of its threads has checked in, so a
thread that another process keeps off its core stalls every region -- on a 2-core machine
with one busy neighbour, 2 threads ran an mnist epoch at a third of the 1-thread speed.
With the default thread count (``n_threads=None``), each call therefore uses no more
threads than there are cores that other processes leave free right now: the number of
runnable threads in the system (``/proc/loadavg``) less this process's own. Results do not
depend on the thread count (bit for bit), so this changes speed only. It is skipped where
the count is not meaningful for this process (no ``/proc``, or a CPU affinity mask narrower
than the machine, as in a container pinned to some of a host's cores), and off with
``FASTBP_ADAPTIVE_THREADS=0``. An explicit ``n_threads`` is always used as given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import numba

from ._validation.params import check_n_threads

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


#: re-read the machine's load at most this often (seconds); a read costs tens of microseconds
LOAD_INTERVAL = 0.05
_load = {"t": -1.0, "free": None}


def _system_running() -> int:
    """Runnable threads in the whole system now (the 4th field of ``/proc/loadavg``)."""
    with open("/proc/loadavg", "rb") as f:
        return int(f.read().split()[3].split(b"/")[0])


def _own_running() -> int:
    """Runnable threads of this process now (this one included)."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        if stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"R":
            n += 1
    return n


def free_cores() -> int | None:
    """Cores that other processes leave free now (None where that cannot be told)."""
    now = time.monotonic()
    if now - _load["t"] < LOAD_INTERVAL:
        return _load["free"]
    free = None
    if os.environ.get("FASTBP_ADAPTIVE_THREADS", "1").strip().lower() not in ("0", "false",
                                                                               "no"):
        try:
            cores = os.cpu_count() or 1
            if len(os.sched_getaffinity(0)) == cores:
                others = max(0, _system_running() - _own_running())
                free = max(1, cores - others)
        except (OSError, ValueError, IndexError, AttributeError):
            free = None
    _load["t"], _load["free"] = now, free
    return free


def default_threads() -> int | None:
    """The thread count a call with ``n_threads=None`` uses: Numba's current count, capped
    at the free cores (None: leave Numba's count as it is)."""
    free = free_cores()
    if free is None:
        return None
    current = numba.get_num_threads()
    return free if free < current else None


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
            n_threads = default_threads()
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


def _env_int(name: str) -> int | None:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def worker_threads() -> int | None:
    """Numba threads for a call with ``n_threads=None`` in the scikit-learn estimators:
    this worker's share of the cores when the call runs inside a joblib or Dask worker (or
    under an explicit thread limit), ``None`` (Numba's own count) otherwise.

    The limits, the smallest of which applies (never above Numba's thread count):

    - ``OMP_NUM_THREADS``: joblib's process workers (loky) and Dask's worker processes
      set it to their share of the cores, as do batch systems (threadpoolctl's convention
      for BLAS and OpenMP pools);
    - ``LOKY_MAX_CPU_COUNT``: the cores joblib may use at all;
    - inside a Dask worker: the cores divided by the worker's threads (its tasks run
      concurrently);
    - inside a joblib thread worker (``backend="threading"``): 1, since the number of
      threads running beside it is not known.
    """
    import sys

    limits = [v for v in (_env_int("OMP_NUM_THREADS"), _env_int("LOKY_MAX_CPU_COUNT"))
              if v is not None]
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    if "distributed" in sys.modules:  # a Dask worker runs nthreads tasks at once
        try:
            worker = sys.modules["distributed"].get_worker()
        except Exception:  # noqa: BLE001 - ValueError "No worker found", or no such API
            worker = None
        if worker is not None:
            nthreads = getattr(getattr(worker, "state", worker), "nthreads", None)
            if isinstance(nthreads, int) and nthreads >= 1:
                limits.append(max(1, cores // nthreads))
    if "joblib" in sys.modules and threading.current_thread() is not threading.main_thread():
        try:
            backend, _ = sys.modules["joblib"].parallel.get_active_backend()
        except Exception:  # noqa: BLE001 - an older or newer joblib
            backend = None
        if backend is not None and getattr(backend, "nesting_level", 0) >= 1 and (
                type(backend).__name__ == "ThreadingBackend"):
            limits.append(1)
    if not limits:
        return None
    return max(1, min(min(limits), int(numba.config.NUMBA_NUM_THREADS)))
