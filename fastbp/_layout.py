"""Layer sizes -> offsets into the flat buffers (pure data, no compiled code).

Parameter layout (``params`` and ``grads``): for each layer ``p`` (mapping unit layer ``p``
to unit layer ``p + 1``), the weight matrix ``W`` of shape ``(n_out, n_in)`` in row-major
order starting at ``w_off[p]``, immediately followed by the bias ``b`` of length ``n_out``
starting at ``b_off[p]``.

Workspace layout (activations ``act`` and deltas ``delta``) for a batch capacity ``cap``:
unit layer ``l`` (``l = 0`` is the input) occupies ``act[a_off[l] : a_off[l] + cap * sizes[l]]``,
used as a row-major ``(n, sizes[l])`` block for a batch of ``n <= cap`` rows.
"""

from __future__ import annotations

import numpy as np


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
