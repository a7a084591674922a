"""fastbp: fast backpropagation for multilayer perceptrons on multicore CPUs.

The forward and backward passes are Numba-compiled loop kernels over flat, preallocated
buffers; :class:`Model` is the Python facade.
"""

from . import optim, schedules
from .callbacks import EarlyStopping
from .model import History, Model, Workspace

__version__ = "0.1.0"

__all__ = ["EarlyStopping", "History", "Model", "Workspace", "optim", "schedules", "__version__"]
