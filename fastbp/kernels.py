"""Public compiled kernels, callable from your own ``@njit`` code.

Every function here is a Numba ``@njit`` function that takes only NumPy arrays and scalars:
the network's layout is a handful of ``int64`` offset arrays and the activation and loss are
small integer codes (module constants below). A user's ``@njit`` function can therefore call
them inside its own loops with no Python in between. These names and signatures are the
stable public surface; the modules they come from (``fastbp._network``, ``fastbp._train``,
...) are internal.

Getting the arguments
---------------------
``Model.kernel_args()`` returns a :class:`KernelArgs` named tuple of the model's own buffers
(``params``, ``grads``) and layout (``sizes``, ``w_off``, ``b_off``, ``act_codes``,
``loss_code``, ``out_code``); ``Model.allocate_workspace(batch_size)`` returns a
:class:`WorkspaceArrays` named tuple (``act``, ``delta``, ``a_off``, ``z_out``, ``t_buf``) for
batches of up to ``batch_size`` rows. ``params`` and ``grads`` are the model's buffers, not
copies: what a kernel writes there is what ``Model.predict`` uses next, and the other way
round. Both named tuples can be passed to an ``@njit`` function as they are.

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
... def online_sgd(X, T, k, ws, lr):
...     total = 0.0
...     for i in range(X.shape[0]):          # one sample per step, no Python in the loop
...         total += K.train_step(X[i:i + 1], T[i:i + 1], k.params, k.grads, k.sizes,
...                               k.w_off, k.b_off, k.act_codes, k.loss_code, lr,
...                               ws.act, ws.delta, ws.a_off, ws.z_out)
...     return total / X.shape[0]
>>> model = fastbp.Model([2, 8, 1], activation="tanh", seed=0)
>>> X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
>>> T = X[:, :1] * X[:, 1:]
>>> mean_loss = online_sgd(X, T, model.kernel_args(), model.allocate_workspace(1), 0.05)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit

from . import _codes
from ._network import _block
from ._network import backward as _backward
from ._network import batch_loss as _batch_loss
from ._network import forward as _forward
from ._network import output_delta as _output_delta
from ._optim import sgd_update as _sgd_update
from ._train import dataset_gradient as _dataset_gradient
from ._train import dataset_loss as _dataset_loss
from ._train import predict_into as _predict_into
from ._train import train_epoch_sgd as _train_epoch_sgd

__all__ = [
    # argument bundles
    "KernelArgs",
    "WorkspaceArrays",
    # kernels
    "forward",
    "predict",
    "output_delta",
    "batch_loss",
    "backward",
    "loss",
    "loss_and_gradient",
    "sgd_step",
    "train_step",
    "train_epoch",
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
    "LOSS_SQUARED_ERROR",
    "LOSS_CROSS_ENTROPY",
    "LOSS_BINARY_CROSS_ENTROPY",
]

# Several kernels below are ``parallel=True`` functions loaded from Numba's on-disk cache.
# Until Numba's threading layer has been started in the process, a user's ``@njit`` function
# that calls them fails to link (``LLVM ERROR: Symbol not found: allocate_sched``) or, when
# the user's function is itself cached, segfaults (numba/numba#8578). ``get_num_threads()``
# starts the threading layer, so importing this module makes the kernels safe to embed.
get_num_threads()

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

LOSS_SQUARED_ERROR = _codes.SQUARED_ERROR
LOSS_CROSS_ENTROPY = _codes.CROSS_ENTROPY
LOSS_BINARY_CROSS_ENTROPY = _codes.BINARY_CROSS_ENTROPY


# ---------------------------------------------------------------------------- argument bundles
class KernelArgs(NamedTuple):
    """A model's buffers and layout, as the kernels take them (``Model.kernel_args()``).

    Attributes
    ----------
    params : (n_params,) float array
        The model's parameter buffer itself (not a copy).
    grads : (n_params,) float array
        The model's gradient buffer, same layout as ``params``.
    sizes : (L + 1,) int64 array
        Units per layer, input first.
    w_off, b_off : (L,) int64 arrays
        Start of layer ``p``'s weights ``W`` (row-major ``(sizes[p+1], sizes[p])``) and bias
        in ``params``/``grads``.
    act_codes : (L,) int64 array
        Activation code of each layer; the last entry is the output activation.
    loss_code : int
    out_code : int
        ``act_codes[-1]``, the output activation (``output_delta`` takes it).
    """

    params: np.ndarray
    grads: np.ndarray
    sizes: np.ndarray
    w_off: np.ndarray
    b_off: np.ndarray
    act_codes: np.ndarray
    loss_code: int
    out_code: int


class WorkspaceArrays(NamedTuple):
    """Scratch buffers for batches of up to ``capacity`` rows (``Model.allocate_workspace``).

    Attributes
    ----------
    act : (cap * sum(sizes),) float array
        Activations; unit layer ``l`` is the row-major ``(n, sizes[l])`` block starting at
        ``a_off[l]`` (layer 0 holds the input rows). See :func:`layer_block`.
    delta : (cap * sum(sizes),) float array
        ``dE/dz`` of every layer, same layout as ``act``.
    a_off : (L + 1,) int64 array
        Block offsets, ``a_off[l] = cap * sum(sizes[:l])``.
    z_out : (cap * n_out,) float array
        The output layer's pre-activation ``z`` (for numerically stable losses).
    t_buf : (cap * n_out,) float array
        Room for a batch of targets (used by :func:`train_epoch`).
    capacity : int
        ``cap``, the most rows a batch may have.
    """

    act: np.ndarray
    delta: np.ndarray
    a_off: np.ndarray
    z_out: np.ndarray
    t_buf: np.ndarray
    capacity: int


# ---------------------------------------------------------------------------- workspace views
@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def input_block(act, sizes, a_off, n):
    """``(n, sizes[0])`` view of the input rows in ``act`` (fill it before ``forward``)."""
    return _block(act, sizes, a_off, 0, n)


@njit(cache=True, nogil=True)
def output_block(act, sizes, a_off, n):
    """``(n, sizes[-1])`` view of the output activations in ``act`` (after ``forward``).

    Applied to ``delta`` instead of ``act`` it is the output delta that ``output_delta``
    writes and ``backward`` reads.
    """
    return _block(act, sizes, a_off, sizes.shape[0] - 1, n)


@njit(cache=True, nogil=True)
def output_z(z_out, sizes, n):
    """``(n, sizes[-1])`` view of the output layer's pre-activation ``z`` (after ``forward``)."""
    m = sizes[sizes.shape[0] - 1]
    return z_out[: n * m].reshape((n, m))


# ---------------------------------------------------------------------------- kernels
#: Forward pass of the ``n`` rows already written into ``input_block(act, sizes, a_off, n)``.
#:
#: ``forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, n) -> None``
#:
#: Fills every layer's block of ``act`` (``a^l = f_l(W^l a^(l-1) + b^l)``) and the output's
#: ``z`` into ``z_out``. Shapes: ``params (n_params,)``, ``act (cap * sum(sizes),)``,
#: ``z_out (>= n * n_out,)``, ``n <= cap``.
forward = _forward

#: Loss of a batch and the output delta ``dE/dz^L``.
#:
#: ``output_delta(z, a, t, loss_code, out_code, scale, delta) -> float``
#:
#: ``z, a, t, delta`` are ``(n, n_out)`` (use ``output_z``, ``output_block(act, ...)``,
#: ``output_block(delta, ...)``); returns ``E = scale * sum_i E_i`` (float64) and writes
#: ``delta = dE/dz``. ``scale = 1 / n`` gives the batch mean (what ``Model`` uses).
output_delta = _output_delta

#: ``batch_loss(z, a, t, loss_code) -> float``: sum over the ``n`` rows of the per-row loss
#: (float64), no delta. ``z, a, t`` are ``(n, n_out)``.
batch_loss = _batch_loss

#: Backward sweep from the output delta to every layer's gradient.
#:
#: ``backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, n, accumulate)``
#:
#: Needs the activations of a ``forward`` of the same ``n`` rows in ``act`` and the output
#: delta in ``output_block(delta, ...)``. Writes ``grads`` (``(n_params,)``, layout of
#: ``params``), adding to it when ``accumulate`` is true.
backward = _backward

#: Batched prediction of any number of rows, in workspace-sized chunks.
#:
#: ``predict(X, params, sizes, w_off, b_off, act_codes, act, a_off, z_out, out) -> None``
#:
#: ``X (n, n_in)``, ``out (n, n_out)`` written; ``n`` may exceed the workspace capacity.
predict = _predict_into

#: Mean loss over a data set, in workspace-sized chunks.
#:
#: ``loss(X, T, params, sizes, w_off, b_off, act_codes, loss_code, act, a_off, z_out) -> float``
#:
#: ``X (n, n_in)``, ``T (n, n_out)``; ``n`` may exceed the workspace capacity.
loss = _dataset_loss

#: Mean loss over a data set and its gradient, written into ``grads``.
#:
#: ``loss_and_gradient(X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code,
#: act, delta, a_off, z_out) -> float``
#:
#: ``X (n, n_in)``, ``T (n, n_out)``, ``grads (n_params,)`` written with ``dE/dparams`` of
#: ``E = 1/n sum_i E_i``; ``n`` may exceed the workspace capacity (chunks are accumulated in
#: a fixed order). The same computation as ``Model.gradient``.
loss_and_gradient = _dataset_gradient

#: Plain gradient-descent step ``params -= learning_rate * grads`` (in place).
#:
#: ``sgd_step(params, grads, learning_rate) -> None``; both ``(n_params,)``.
sgd_step = _sgd_update

#: One epoch of minibatch SGD over ``X[order]``, the same computation as ``Model.fit``.
#:
#: ``train_epoch(X, T, order, params, grads, sizes, w_off, b_off, act_codes, loss_code,
#: batch_size, learning_rate, act, delta, a_off, z_out, t_buf) -> float``
#:
#: ``order (n,)`` int64 row order (a permutation, or ``arange(n)``); batches are consecutive
#: slices of it, the last partial one included; ``batch_size <= cap``. Returns the mean over
#: the epoch's samples of the loss measured before each update.
train_epoch = _train_epoch_sgd


@njit(cache=True, nogil=True)
def train_step(
    X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code, learning_rate,
    act, delta, a_off, z_out,
):
    """One SGD step on one batch: mean loss and gradient of ``(X, T)``, then update ``params``.

    Equivalent to ``loss_and_gradient`` followed by ``sgd_step``.

    Parameters
    ----------
    X : (n, n_in) float array, ``n <= cap``
    T : (n, n_out) float array
    params, grads : (n_params,) float arrays, updated / overwritten
    sizes, w_off, b_off, act_codes : int64 layout arrays
    loss_code : int
    learning_rate : float
    act, delta, a_off, z_out : workspace with capacity ``>= n``

    Returns
    -------
    float
        The batch's mean loss before the update (float64).
    """
    value = _dataset_gradient(
        X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code, act, delta, a_off, z_out
    )
    _sgd_update(params, grads, learning_rate)
    return value
