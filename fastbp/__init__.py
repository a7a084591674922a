"""fastbp: fast backpropagation for multilayer perceptrons on multicore CPUs.

The forward and backward passes are Numba-compiled loop kernels over flat, preallocated
buffers; ``Model`` is the Python facade.
"""

# Start Numba's threading layer now. A process that loads a cached kernel calling a
# parallel=True function before the layer is started crashes when it runs it ("Symbol not
# found: allocate_sched" or a segfault, numba/numba#8578) -- seen with users' cached @njit
# code calling fastbp.kernels and with MPI ranks that only load from the cache. The layer is
# Numba's usual choice (tbb, then omp, then workqueue, or NUMBA_THREADING_LAYER); processes
# forked from this one run fastbp's kernels on one thread if it is GNU OpenMP (_threads).
from . import _threads  # noqa: E402

_threads.start_threading_layer()

from . import optim, schedules  # noqa: E402
from ._errors import (  # noqa: E402
    ConvergenceWarning,
    DivergenceError,
    DivergenceWarning,
    ModelFileError,
)
from ._training.state import History  # noqa: E402
from ._version import __version__  # noqa: E402
from ._warmup import warmup  # noqa: E402
from .callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402
from .kernels._layout import Workspace  # noqa: E402
from .model import Model  # noqa: E402

__all__ = [
    "ConvergenceWarning", "DivergenceError", "DivergenceWarning", "EarlyStopping", "History",
    "Model", "ModelCheckpoint", "ModelFileError", "Workspace", "optim", "schedules", "warmup",
    "__version__",
]
