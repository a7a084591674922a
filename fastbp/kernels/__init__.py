"""Public compiled kernels, callable from your own ``@njit`` code.

Every function here is a Numba ``@njit`` function that takes NumPy arrays, scalars and the
named tuples below: the network's layout is a handful of ``int64`` offset arrays and the
activation and loss are small integer codes (module constants below). A user's ``@njit``
function can therefore call them inside its own loops with no Python in between. These
names and signatures are the stable public surface (``CHANGELOG.md`` lists every change);
the private modules they come from (``fastbp.kernels._network``, ``fastbp.kernels._drivers``,
...) are internal.

Getting the arguments
---------------------
The kernels take a model and its scratch buffers as named tuples:

- ``net``: ``Model.kernel_args()`` returns a ``KernelArgs`` of the model's own buffers
  (``params``, ``grads``) and layout (``sizes``, ``w_off``, ``b_off``, ``act_codes``,
  ``loss_code``, ``out_code``, ``drop_rates``, ``drop_seed``);
- ``ws``: ``Model.allocate_workspace(batch_size)`` returns a ``WorkspaceArrays`` (``act``,
  ``delta``, ``a_off``, ``z_out``, ``t_buf``, ``raw``, ``w_buf``, ``capacity``) for batches
  of up to ``batch_size`` rows;
- ``opt``: ``Model.optimizer_args()`` returns an ``OptimizerArgs`` (``kind``, ``hyper``,
  ``state``, ``counters``), the model's own optimizer state;
- the CSR kernels take ``X`` as a ``CSRRows`` (``data``, ``indices``, ``indptr``,
  ``n_cols``).

``params`` and ``grads`` are the model's buffers, not copies: what a kernel writes there is
what ``Model.predict`` uses next, and the other way round. All of them can be passed to an
``@njit`` function as they are, and their fields read there (``net.params``).

Shapes
------
``L`` weight layers, ``sizes = [n_in, h_1, ..., n_out]`` (``L + 1`` entries), ``n_params`` the
total number of weights and biases, ``cap`` the workspace capacity (rows), ``n`` the rows of
a batch (``n <= cap``). ``X`` is ``(n, n_in)`` and targets ``T`` are ``(n, n_out)`` in the
model's float dtype; for ``LOSS_CROSS_ENTROPY`` the targets are one-hot rows (or
probabilities), for ``LOSS_BINARY_CROSS_ENTROPY`` 0/1 values. All float arrays passed to one
call must share one dtype (float32 or float64) and be C-contiguous.

Example
-------
>>> import numpy as np
>>> from numba import njit
>>> import fastbp
>>> from fastbp import kernels as K
>>> @njit
... def online_sgd(X, T, net, ws, lr):
...     total = 0.0
...     for i in range(X.shape[0]):          # one sample per step, no Python in the loop
...         total += K.train_step(X[i:i + 1], T[i:i + 1], net, ws, lr)
...     return total / X.shape[0]
>>> model = fastbp.Model([2, 8, 1], activation="tanh", seed=0)
>>> X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
>>> T = X[:, :1] * X[:, 1:]
>>> mean_loss = online_sgd(X, T, model.kernel_args(), model.allocate_workspace(1), 0.05)
"""

from __future__ import annotations

import numpy as np

from . import _codes
from ._cache import njit
from ._drivers import (
    loss,
    loss_and_gradient,
    loss_and_gradient_weighted,
    predict,
    train_epoch,
    train_epoch_sgd,
)
from ._layout import CSRRows, KernelArgs, OptimizerArgs, WorkspaceArrays
from ._llvm import rt
from ._network import _block, backward, batch_loss, forward, output_delta
from ._sparse import loss_and_gradient_csr, loss_csr, predict_csr, train_steps_csr
from ._updates import add_l2, clip_grad_norm, grad_norm, optimizer_step, sgd_step

__all__ = [
    # argument bundles
    "KernelArgs",
    "WorkspaceArrays",
    "OptimizerArgs",
    "CSRRows",
    # kernels
    "forward",
    "predict",
    "output_delta",
    "batch_loss",
    "backward",
    "loss",
    "loss_and_gradient",
    "loss_and_gradient_weighted",
    "add_l2",
    "grad_norm",
    "clip_grad_norm",
    "sgd_step",
    "optimizer_step",
    "sgd_momentum_step",
    "adam_step",
    "rmsprop_step",
    "adagrad_step",
    "sgd_hyper",
    "adam_hyper",
    "rmsprop_hyper",
    "adagrad_hyper",
    "train_step",
    "train_epoch_sgd",
    "train_epoch",
    # sparse (CSR) inputs: a CSRRows in place of X
    "train_steps_csr",
    "predict_csr",
    "loss_csr",
    "loss_and_gradient_csr",
    # workspace views
    "layer_block",
    "input_block",
    "output_block",
    "output_z",
    # code tables
    "ACTIVATION_CODES",
    "LOSS_CODES",
    "ACT_IDENTITY",
    "ACT_LOGISTIC",
    "ACT_TANH",
    "ACT_RELU",
    "ACT_LEAKY_RELU",
    "ACT_SOFTMAX",
    "ACT_EXP",
    "LOSS_SQUARED_ERROR",
    "LOSS_CROSS_ENTROPY",
    "LOSS_BINARY_CROSS_ENTROPY",
    "LOSS_POISSON",
    "OPTIMIZER_CODES",
    "OPT_SGD",
    "OPT_ADAM",
    "OPT_RMSPROP",
    "OPT_ADAGRAD",
    "OPT_STATE_ROWS",
]

# Several kernels below are ``parallel=True`` functions loaded from Numba's on-disk cache.
# Embedding the kernels in users' cached ``@njit`` code needs Numba's threading layer to be
# started first (numba/numba#8578); ``import fastbp`` (run before this module) does that.

# ---------------------------------------------------------------------------- code tables
#: activation name -> int code (``act_codes`` entries)
ACTIVATION_CODES = dict(_codes.ACTIVATIONS)
#: loss name -> int code (``loss_code``)
LOSS_CODES = dict(_codes.LOSSES)

ACT_IDENTITY = _codes.IDENTITY
ACT_LOGISTIC = _codes.LOGISTIC
ACT_TANH = _codes.TANH
ACT_RELU = _codes.RELU
ACT_LEAKY_RELU = _codes.LEAKY_RELU
ACT_SOFTMAX = _codes.SOFTMAX
ACT_EXP = _codes.EXP

LOSS_SQUARED_ERROR = _codes.SQUARED_ERROR
LOSS_CROSS_ENTROPY = _codes.CROSS_ENTROPY
LOSS_BINARY_CROSS_ENTROPY = _codes.BINARY_CROSS_ENTROPY
LOSS_POISSON = _codes.POISSON

OPT_SGD = _codes.OPT_SGD
OPT_ADAM = _codes.OPT_ADAM  # also AdamW (decoupled weight decay in hyper[3])
OPT_RMSPROP = _codes.OPT_RMSPROP
OPT_ADAGRAD = _codes.OPT_ADAGRAD
#: optimizer name -> int code (``kind``)
OPTIMIZER_CODES = {
    "sgd": OPT_SGD, "adam": OPT_ADAM, "adamw": OPT_ADAM, "rmsprop": OPT_RMSPROP,
    "adagrad": OPT_ADAGRAD,
}
#: optimizer code -> rows of its ``(rows, n_params)`` state buffer
OPT_STATE_ROWS = dict(_codes.OPT_STATE_ROWS)


# ---------------------------------------------------------------------------- workspace views
@njit(cache=True, nogil=True, entry=True)
def layer_block(ws, sizes, a_off, l, n):
    """View of unit layer ``l``'s ``(n, sizes[l])`` block in ``ws`` (``act`` or ``delta``).

    Parameters
    ----------
    ws : (cap * sum(sizes),) float array
    sizes, a_off : (L + 1,) int64 arrays
    l : int, 0 (input) .. L (output)
    n : int, rows, ``n <= cap``

    Returns
    -------
    (n, sizes[l]) float array view
    """
    return _block(ws, sizes, a_off, l, n)


@njit(cache=True, nogil=True, entry=True)
def input_block(act, sizes, a_off, n):
    """``(n, sizes[0])`` view of the input rows in ``act`` (fill it before ``forward``)."""
    return _block(act, sizes, a_off, 0, n)


@njit(cache=True, nogil=True, entry=True)
def output_block(act, sizes, a_off, n):
    """``(n, sizes[-1])`` view of the output activations in ``act`` (after ``forward``).

    Applied to ``delta`` instead of ``act`` it is the output delta that ``output_delta``
    writes and ``backward`` reads.
    """
    return _block(act, sizes, a_off, sizes.shape[0] - 1, n)


@njit(cache=True, nogil=True, entry=True)
def output_z(z_out, sizes, n):
    """``(n, sizes[-1])`` view of the output layer's pre-activation ``z`` (after ``forward``)."""
    m = sizes[sizes.shape[0] - 1]
    return z_out[: n * m].reshape((n, m))


# ---------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, entry=True)
def sgd_momentum_step(params, grads, state, hyper, lr, step, l2, sizes, w_off, b_off):
    """SGD with (Nesterov) momentum: ``optimizer_step`` with ``kind = OPT_SGD``.

    ``state`` is ``(1, n_params)`` (the momentum buffer); ``hyper = sgd_hyper(...)``.
    """
    optimizer_step(params, grads, state, rt(OPT_SGD), hyper, lr, step, l2, sizes, w_off, b_off)


@njit(cache=True, nogil=True, entry=True)
def adam_step(params, grads, state, hyper, lr, step, l2, sizes, w_off, b_off):
    """Adam / AdamW: ``optimizer_step`` with ``kind = OPT_ADAM``.

    ``state`` is ``(2, n_params)`` (first and second moments); ``hyper = adam_hyper(...)``.
    """
    optimizer_step(params, grads, state, rt(OPT_ADAM), hyper, lr, step, l2, sizes, w_off, b_off)


@njit(cache=True, nogil=True, entry=True)
def rmsprop_step(params, grads, state, hyper, lr, step, l2, sizes, w_off, b_off):
    """RMSprop: ``optimizer_step`` with ``kind = OPT_RMSPROP``.

    ``state`` is ``(3, n_params)``; ``hyper = rmsprop_hyper(...)``.
    """
    optimizer_step(params, grads, state, rt(OPT_RMSPROP), hyper, lr, step, l2, sizes, w_off,
                    b_off)


@njit(cache=True, nogil=True, entry=True)
def adagrad_step(params, grads, state, hyper, lr, step, l2, sizes, w_off, b_off):
    """Adagrad: ``optimizer_step`` with ``kind = OPT_ADAGRAD``.

    ``state`` is ``(1, n_params)``, the accumulator (start it at the initial accumulator
    value); ``hyper = adagrad_hyper(...)``.
    """
    optimizer_step(params, grads, state, rt(OPT_ADAGRAD), hyper, lr, step, l2, sizes, w_off,
                    b_off)


@njit(cache=True, entry=True)
def sgd_hyper(momentum=0.0, dampening=0.0, nesterov=False):
    """(4,) float64 hyperparameters of SGD: ``[momentum, dampening, nesterov, 0]``."""
    return np.array([momentum, dampening, 1.0 if nesterov else 0.0, 0.0])


@njit(cache=True, entry=True)
def adam_hyper(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """(4,) float64 hyperparameters of Adam (``weight_decay > 0``: AdamW's decoupled decay)."""
    return np.array([beta1, beta2, eps, weight_decay])


@njit(cache=True, entry=True)
def rmsprop_hyper(alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    """(4,) float64 hyperparameters of RMSprop: ``[alpha, eps, momentum, centered]``."""
    return np.array([alpha, eps, momentum, 1.0 if centered else 0.0])


@njit(cache=True, entry=True)
def adagrad_hyper(lr_decay=0.0, eps=1e-10):
    """(4,) float64 hyperparameters of Adagrad: ``[lr_decay, eps, 0, 0]``."""
    return np.array([lr_decay, eps, 0.0, 0.0])


@njit(cache=True, nogil=True, entry=True)
def train_step(X, T, net, ws, learning_rate):
    """One SGD step on one batch: mean loss and gradient of ``(X, T)``, then update
    ``net.params``.

    Equivalent to ``loss_and_gradient`` followed by ``sgd_step``.

    Parameters
    ----------
    X : (n, n_in) float array, ``n <= ws.capacity``
    T : (n, n_out) float array
    net : KernelArgs (``params`` updated, ``grads`` overwritten); no dropout
    ws : WorkspaceArrays
    learning_rate : float

    Returns
    -------
    float
        The batch's mean loss before the update (float64).
    """
    value = loss_and_gradient(X, T, net, ws)
    sgd_step(net.params, net.grads, learning_rate)
    return value
