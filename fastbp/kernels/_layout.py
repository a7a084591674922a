"""Layer sizes -> offsets into the flat buffers, and the objects that own those buffers.

No compiled code: ``param_offsets``/``workspace_offsets`` turn layer sizes into the int64
offset arrays the kernels take; ``Workspace`` holds the scratch buffers of one batch
capacity; ``Network`` owns a model's layout, parameter and gradient buffers and its cached
workspaces, and is what the training engine and the facade hand to the kernels.

Parameter layout (``params`` and ``grads``): for each layer ``p`` (mapping unit layer ``p``
to unit layer ``p + 1``), the weight matrix ``W`` of shape ``(n_out, n_in)`` in row-major
order starting at ``w_off[p]``, immediately followed by the bias ``b`` of length ``n_out``
starting at ``b_off[p]``.

Workspace layout (activations ``act`` and deltas ``delta``) for a batch capacity ``cap``:
unit layer ``l`` (``l = 0`` is the input) occupies ``act[a_off[l] : a_off[l] + cap * sizes[l]]``,
used as a row-major ``(n, sizes[l])`` block for a batch of ``n <= cap`` rows.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

#: rows per chunk when predicting or computing a whole-data-set gradient, at least: narrow
#: networks take more rows per chunk, up to ``CHUNK_BYTES`` of activations (fewer parallel
#: launches and calls per row); the count depends on the layer sizes only (never on the
#: thread count), so that chunked sums are reproducible
CHUNK_ROWS = 1024
CHUNK_ROWS_MAX = 16384
CHUNK_BYTES = 1 << 21

#: workspaces (one per batch capacity) kept per network; the least recently used is dropped
MAX_WORKSPACES = 4


#: alignment (bytes) of the flat buffers' first element: a cache line, and a 512-bit vector
#: (a vector load or store at an unaligned address straddles two lines)
BUFFER_ALIGN = 64


def aligned_zeros(n: int, dtype) -> np.ndarray:
    """A zeroed 1-D array of ``n`` elements of ``dtype`` that starts on a ``BUFFER_ALIGN``-byte
    boundary (NumPy aligns large arrays to 16 bytes). The block offsets of both layouts are
    multiples of 16 elements whenever the layer widths are, so the blocks start aligned too."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + BUFFER_ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % BUFFER_ALIGN
    return raw[start : start + n * dtype.itemsize].view(dtype)


def param_offsets(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Offsets of each layer's weights and biases in the flat parameter buffer.

    Parameters
    ----------
    sizes : int64 array, shape (L + 1,)
        Units per layer, input first.

    Returns
    -------
    w_off, b_off : int64 arrays, shape (L,)
    n_params : int
    """
    n_layers = len(sizes) - 1
    w_off = np.empty(n_layers, dtype=np.int64)
    b_off = np.empty(n_layers, dtype=np.int64)
    pos = 0
    for p in range(n_layers):
        n_in, n_out = int(sizes[p]), int(sizes[p + 1])
        w_off[p] = pos
        pos += n_out * n_in
        b_off[p] = pos
        pos += n_out
    return w_off, b_off, pos


def workspace_offsets(sizes: np.ndarray, capacity: int) -> tuple[np.ndarray, int]:
    """Offsets of each unit layer's block in an activation/delta workspace.

    Returns
    -------
    a_off : int64 array, shape (L + 1,)
    total : int
        Length of the workspace buffer.
    """
    a_off = np.empty(len(sizes), dtype=np.int64)
    pos = 0
    for l, s in enumerate(sizes):
        a_off[l] = pos
        pos += capacity * int(s)
    return a_off, pos


# ------------------------------------------------------------------ argument bundles
# The compiled kernels take these named tuples as single arguments (Numba passes a tuple
# of arrays as a struct): a model's layout and buffers, a workspace, an optimizer.
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
    drop_rates : (L - 1,) float64 array
        Dropout rate of each hidden layer (used by ``train_epoch`` only).
    drop_seed : int
        Seed of the dropout masks.
    """

    params: np.ndarray
    grads: np.ndarray
    sizes: np.ndarray
    w_off: np.ndarray
    b_off: np.ndarray
    act_codes: np.ndarray
    loss_code: int
    out_code: int
    drop_rates: np.ndarray
    drop_seed: int


class WorkspaceArrays(NamedTuple):
    """Scratch buffers for batches of up to ``capacity`` rows (``Model.allocate_workspace``).

    Attributes
    ----------
    act : (cap * sum(sizes),) float array
        Activations; unit layer ``l`` is the row-major ``(n, sizes[l])`` block starting at
        ``a_off[l]`` (layer 0 holds the input rows). See ``layer_block``.
    delta : (cap * sum(sizes),) float array
        ``dE/dz`` of every layer, same layout as ``act``.
    a_off : (L + 1,) int64 array
        Block offsets, ``a_off[l] = cap * sum(sizes[:l])``.
    z_out : (cap * n_out,) float array
        The output layer's pre-activation ``z`` (for numerically stable losses).
    t_buf : (cap * n_out,) float array
        Room for a batch of targets (used by the epoch drivers).
    raw : (cap * sum(sizes),) float array
        Undropped hidden activations (used by ``train_epoch`` with dropout).
    w_buf : (cap,) float array
        Room for a batch of sample weights (used by ``train_epoch``).
    capacity : int
        ``cap``, the most rows a batch may have.
    """

    act: np.ndarray
    delta: np.ndarray
    a_off: np.ndarray
    z_out: np.ndarray
    t_buf: np.ndarray
    raw: np.ndarray
    w_buf: np.ndarray
    capacity: int


class OptimizerArgs(NamedTuple):
    """A model's optimizer as the step kernels take it (``Model.optimizer_args()``).

    Attributes
    ----------
    kind : int
        ``OPT_SGD``, ``OPT_ADAM`` (Adam and AdamW), ``OPT_RMSPROP`` or ``OPT_ADAGRAD``.
    hyper : (4,) float64 array
        Hyperparameters (see ``optimizer_step``).
    state : (rows, n_params) float array
        The model's optimizer state (momentum buffer, moment estimates), not a copy.
    counters : (1,) int64 array
        ``[t]``, the model's count of optimizer steps taken, not a copy.
    """

    kind: int
    hyper: np.ndarray
    state: np.ndarray
    counters: np.ndarray


class CSRRows(NamedTuple):
    """A CSR matrix as the kernels take it (the CSR kernels' ``X``).

    ``fastbp`` builds one from any SciPy sparse input
    (``fastbp._validation.arrays.check_csr``); from your own code:
    ``CSRRows(X.data.astype(dtype), X.indices.astype(np.int64), X.indptr.astype(np.int64),
    X.shape[1])`` for a SciPy CSR ``X``.

    Attributes
    ----------
    data : (nnz,) float array, the model's dtype
    indices : (nnz,) int64 array, the column of each value
    indptr : (n + 1,) int64 array, row ``r`` is ``data[indptr[r]:indptr[r + 1]]``
    n_cols : int
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_cols: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.indptr.shape[0] - 1, self.n_cols

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def take(self, rows) -> CSRRows:
        """The rows ``rows`` (an int array), in that order, as a new ``CSRRows``."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return CSRRows(self.data[pos], self.indices[pos], indptr, self.n_cols)

    def toarray(self) -> np.ndarray:
        """Dense ``(n, n_cols)`` copy (for tests and small data)."""
        out = np.zeros(self.shape, dtype=self.data.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices[: self.nnz]), self.data[: self.nnz])
        return out


def chunk_rows(layer_sizes, itemsize: int) -> int:
    """Rows per chunk of whole-data-set passes for a network (see ``CHUNK_ROWS``)."""
    per_row = int(sum(int(s) for s in layer_sizes)) * int(itemsize)
    return max(CHUNK_ROWS, min(CHUNK_ROWS_MAX, CHUNK_BYTES // per_row))


class Workspace:
    """Activation and delta buffers for batches of up to ``capacity`` rows.

    Attributes
    ----------
    act, delta : (capacity * sum(layer_sizes),) float arrays
    a_off : (L + 1,) int64 array, block offsets (see ``workspace_offsets``)
    z_out : (capacity * n_out,) float array, the output layer's z
    t_buf : (capacity * n_out,) float array, a batch of targets
    w_buf : (capacity,) float array, a batch of sample weights
    raw : like ``act``, the undropped hidden activations (allocated on first use by dropout)
    """

    def __init__(self, sizes: np.ndarray, capacity: int, dtype):
        self.capacity = capacity
        self.a_off, total = workspace_offsets(sizes, capacity)
        self.act = aligned_zeros(total, dtype)
        self.delta = aligned_zeros(total, dtype)
        self.z_out = aligned_zeros(capacity * int(sizes[-1]), dtype)
        self.t_buf = aligned_zeros(capacity * int(sizes[-1]), dtype)
        self.w_buf = aligned_zeros(capacity, dtype)
        self._raw = None

    @property
    def raw(self) -> np.ndarray:
        if self._raw is None:
            self._raw = aligned_zeros(self.act.shape[0], self.act.dtype)
        return self._raw

    def arrays(self, dropout: bool = True) -> WorkspaceArrays:
        """The buffers as the kernels take them; without ``dropout``, ``raw`` is ``act``
        (the drivers never write it then, and no second buffer is allocated)."""
        return WorkspaceArrays(self.act, self.delta, self.a_off, self.z_out, self.t_buf,
                               self.raw if dropout else self.act, self.w_buf, self.capacity)


#: every live ``Network``, so that a forked child can re-create their locks
_NETWORKS: weakref.WeakSet = weakref.WeakSet()


def _renew_locks_after_fork() -> None:
    # a fork copies each lock in the state it had: one held by a thread that was training
    # or predicting at that moment would never be released in the child (no such thread)
    for net in list(_NETWORKS):
        net.lock = threading.RLock()
        net.boundary = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks_after_fork)


class Network:
    """A network's layout, its flat parameter and gradient buffers, and its workspaces.

    Everything the compiled kernels are given about one model: ``sizes``, ``w_off``,
    ``b_off``, ``act_codes`` (int64 arrays), ``loss_code``, ``drop_rates`` (float64, one per
    hidden layer), ``drop_seed``, and the buffers ``params`` and ``grads``; ``init`` names
    the weight initialiser (``fastbp._initializers``).

    Two locks order the calls that use the buffers: ``lock`` (re-entrant) is held for a
    whole training or inference call, so one model runs one such call at a time whatever
    the number of Python threads; ``boundary`` is held by the training engine while it runs
    a compiled call and updates its bookkeeping, and released between calls, so that a
    snapshot taken under it (pickling, copying) always sees the state at a step boundary.
    Both are re-created in a forked child (``os.register_at_fork``), so a fork while another
    thread trains cannot leave them held there.
    """

    def __init__(self, sizes: np.ndarray, act_codes: np.ndarray, loss_code: int, dtype,
                 drop_rates: np.ndarray, drop_seed: int, init: str | None = None):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.act_codes = np.asarray(act_codes, dtype=np.int64)
        self.loss_code = int(loss_code)
        self.dtype = np.dtype(dtype)
        self.drop_rates = np.asarray(drop_rates, dtype=np.float64)
        self.drop_seed = int(drop_seed)
        self.init = init  # weight initialiser of every layer, or None for the default
        self.w_off, self.b_off, n_params = param_offsets(self.sizes)
        self.params = aligned_zeros(n_params, self.dtype)
        self.grads = aligned_zeros(n_params, self.dtype)
        self.lock = threading.RLock()
        self.boundary = threading.Lock()
        _NETWORKS.add(self)
        self._workspaces: OrderedDict[tuple, Workspace] = OrderedDict()

    @property
    def n_params(self) -> int:
        return self.params.shape[0]

    @property
    def n_layers(self) -> int:
        """Weight layers (``len(sizes) - 1``)."""
        return self.sizes.shape[0] - 1

    @property
    def dropout(self) -> bool:
        """Whether any hidden layer drops units while training."""
        return bool((self.drop_rates > 0).any())

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk of whole-data-set passes (``chunk_rows``)."""
        return chunk_rows(self.sizes, self.dtype.itemsize)

    def weight(self, buf: np.ndarray, p: int) -> np.ndarray:
        """Layer ``p``'s ``(n_out, n_in)`` weight block of ``buf`` (``params`` or ``grads``),
        a view."""
        n_in, n_out = int(self.sizes[p]), int(self.sizes[p + 1])
        w0 = int(self.w_off[p])
        return buf[w0 : w0 + n_out * n_in].reshape(n_out, n_in)

    def bias(self, buf: np.ndarray, p: int) -> np.ndarray:
        """Layer ``p``'s ``(n_out,)`` bias block of ``buf``, a view."""
        b0 = int(self.b_off[p])
        return buf[b0 : b0 + int(self.sizes[p + 1])]

    def args(self) -> KernelArgs:
        """The layout and buffers as the kernels take them."""
        return KernelArgs(self.params, self.grads, self.sizes, self.w_off, self.b_off,
                          self.act_codes, self.loss_code, int(self.act_codes[-1]),
                          self.drop_rates, self.drop_seed)

    def workspace(self, capacity: int, sparse: bool = False) -> Workspace:
        """The cached workspace for batches of up to ``capacity`` rows (at most
        ``MAX_WORKSPACES`` kept, least recently used dropped, so memory stays bounded).

        ``sparse``: for CSR inputs (``fastbp.kernels._sparse``): no input block (the
        offsets are those of ``sizes`` with ``sizes[0] = 0``)."""
        key = (capacity, bool(sparse))
        ws = self._workspaces.get(key)
        if ws is None:
            sizes = self.sizes
            if sparse:
                sizes = sizes.copy()
                sizes[0] = 0
            ws = Workspace(sizes, capacity, self.dtype)
            self._workspaces[key] = ws
            while len(self._workspaces) > MAX_WORKSPACES:
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(key)
        return ws

    def chunk_workspace(self, n_rows: int, sparse: bool = False) -> Workspace:
        """The workspace for a whole-data-set pass over ``n_rows`` rows."""
        return self.workspace(min(n_rows, self.chunk_rows), sparse)
