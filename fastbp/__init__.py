"""fastbp: fast backpropagation for multilayer perceptrons on multicore CPUs.

The forward and backward passes are Numba-compiled loop kernels over flat, preallocated
buffers; :class:`Model` is the Python facade.
"""

# first: makes every kernel's disk cache depend on all of fastbp's sources (see _cache.py)
from . import _cache  # noqa: F401
from .model import History, Model, Workspace

__version__ = "0.1.0"

__all__ = ["History", "Model", "Workspace", "__version__"]
