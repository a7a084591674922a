"""fastbp: fast backpropagation for multilayer perceptrons on multicore CPUs.

The forward and backward passes are Numba-compiled loop kernels over flat, preallocated
buffers; :class:`Model` is the Python facade.
"""

from .model import History, Model, Workspace

__version__ = "0.1.0"

__all__ = ["History", "Model", "Workspace", "__version__"]
