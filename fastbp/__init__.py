"""fastbp: fast backpropagation for multilayer perceptrons on multicore CPUs.

The forward and backward passes are Numba-compiled loop kernels over flat, preallocated
buffers; :class:`Model` is the Python facade.
"""

import os as _os

from . import _cache

# before any kernel module is imported: cache stamps must cover the whole package
_cache.install(_os.path.dirname(_os.path.abspath(__file__)))

from . import optim, schedules  # noqa: E402
from .callbacks import EarlyStopping  # noqa: E402
from .model import History, Model, Workspace  # noqa: E402

__version__ = "0.1.0"

__all__ = ["EarlyStopping", "History", "Model", "Workspace", "optim", "schedules", "__version__"]
