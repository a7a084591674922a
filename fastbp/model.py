"""The ``Model`` facade: validates input, owns the flat buffers, calls the compiled kernels."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from . import _codes
from ._init import INITIALIZERS, default_initializer
from ._layout import param_offsets, workspace_offsets
from ._train import dataset_gradient, dataset_loss, predict_into, train_epoch_sgd
from ._validation import (
    check_choice,
    check_dtype,
    check_int,
    check_positive_float,
    check_targets,
    check_X,
)

#: rows per chunk when predicting or computing a whole-data-set gradient; fixed (not tied
#: to the thread count) so that chunked sums are reproducible
CHUNK_ROWS = 1024


class History:
    """Per-epoch training record.

    ``history["loss"][e]`` is the mean training loss of epoch ``e``, measured on each
    minibatch before its update (as Keras and PyTorch loops usually report it);
    ``history["time"][e]`` its wall-clock seconds. ``history.epochs`` counts the epochs.
    """

    def __init__(self):
        self.metrics: dict[str, list] = {"loss": [], "time": []}

    def append(self, **values) -> None:
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list:
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def keys(self):
        return self.metrics.keys()

    @property
    def epochs(self) -> int:
        return len(self.metrics["loss"])

    def __repr__(self) -> str:
        last = self.metrics["loss"][-1] if self.epochs else None
        return f"History(epochs={self.epochs}, last_loss={last})"


class Workspace:
    """Activation and delta buffers for batches of up to ``capacity`` rows.

    Attributes
    ----------
    act, delta : (capacity * sum(layer_sizes),) float arrays
    a_off : (L + 1,) int64 array, block offsets (see ``fastbp._layout``)
    z_out : (capacity * n_out,) float array, the output layer's z
    t_buf : (capacity * n_out,) float array, a batch of targets
    """

    def __init__(self, sizes: np.ndarray, capacity: int, dtype):
        self.capacity = capacity
        self.a_off, total = workspace_offsets(sizes, capacity)
        self.act = np.zeros(total, dtype=dtype)
        self.delta = np.zeros(total, dtype=dtype)
        self.z_out = np.zeros(capacity * int(sizes[-1]), dtype=dtype)
        self.t_buf = np.zeros(capacity * int(sizes[-1]), dtype=dtype)


class Model:
    """A multilayer perceptron trained by backpropagation over flat buffers.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first, output last; at least two entries, all >= 1.
    activation : str or sequence of str, default "relu"
        Hidden-layer activation: one name for every hidden layer, or one name per hidden
        layer. One of identity, logistic, tanh, relu, leaky_relu (slope 0.01).
    loss : str, default "squared_error"
        ``squared_error`` (E = 1/n sum 1/2 ||y - t||^2), ``cross_entropy`` (softmax output,
        integer labels or one-hot targets) or ``binary_cross_entropy`` (logistic output,
        binary or multi-label 0/1 targets).
    output : str, optional
        Output activation. Defaults to the one the loss implies (identity, softmax,
        logistic). Cross-entropy requires softmax and binary cross-entropy requires logistic
        (the fused, numerically stable pairs); squared error accepts any activation.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds weight initialisation and shuffling. ``None`` draws fresh entropy, recorded in
        ``model.seed`` so the run can be repeated.
    init : str, optional
        Weight initialiser for every layer: glorot_uniform, glorot_normal, he_uniform,
        he_normal or lecun_normal. Default: He uniform for layers feeding relu/leaky_relu,
        Glorot uniform otherwise. Biases start at zero.

    Attributes
    ----------
    params : (n_params,) array
        All weights and biases, layer by layer, each ``W`` row-major ``(n_out, n_in)``
        followed by its ``b``.
    grads : (n_params,) array
        Gradient buffer with the layout of ``params``.
    weights, biases : lists of array views into ``params``.
    history : History
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str | Sequence[str] = "relu",
        loss: str = "squared_error",
        output: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        init: str | None = None,
    ):
        sizes = self._check_layer_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        if isinstance(activation, str):
            hidden = [check_choice(activation, _codes.HIDDEN_ACTIVATIONS, "activation")] * n_hidden
        else:
            hidden = list(activation) if not isinstance(activation, (bytes,)) else None
            if hidden is None or len(hidden) != n_hidden:
                raise ValueError(
                    f"activation must be one name or a list of {n_hidden} names (one per "
                    f"hidden layer); got {activation!r}."
                )
            hidden = [
                check_choice(a, _codes.HIDDEN_ACTIVATIONS, f"activation[{i}]")
                for i, a in enumerate(hidden)
            ]
        loss = check_choice(loss, _codes.LOSSES, "loss")
        if output is None:
            output = _codes.DEFAULT_OUTPUT[loss]
        output = check_choice(output, _codes.ACTIVATIONS, "output")
        if output not in _codes.ALLOWED_OUTPUTS[loss]:
            raise ValueError(
                f"output={output!r} cannot be used with loss={loss!r}; this loss needs "
                f"output in {list(_codes.ALLOWED_OUTPUTS[loss])} (leave output=None to get it)."
            )
        dt = check_dtype(dtype)
        if init is not None:
            check_choice(init, INITIALIZERS, "init")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        else:
            seed = check_int(seed, "seed", minimum=0)

        self.layer_sizes = sizes
        self.activations = hidden
        self.output = output
        self.loss = loss
        self.dtype = np.dtype(dt)
        self.seed = seed
        self.init = init
        self._act_codes = np.array(
            [_codes.ACTIVATIONS[a] for a in hidden] + [_codes.ACTIVATIONS[output]], dtype=np.int64
        )
        self._loss_code = _codes.LOSSES[loss]
        self._w_off, self._b_off, n_params = param_offsets(sizes)
        self._params = np.zeros(n_params, dtype=dt)
        self.grads = np.zeros(n_params, dtype=dt)
        self._workspaces: dict[int, Workspace] = {}
        init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
        self._shuffle_rng = np.random.Generator(np.random.PCG64(shuffle_ss))
        self._make_views()
        self._initialize(np.random.Generator(np.random.PCG64(init_ss)))
        self.history = History()

    # ---------------------------------------------------------------- construction helpers
    @staticmethod
    def _check_layer_sizes(layer_sizes) -> np.ndarray:
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise TypeError(
                f"layer_sizes must be a sequence of integers such as [64, 32, 10]; got "
                f"{layer_sizes!r}."
            )
        if len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes needs at least an input and an output size, e.g. [4, 1]; got "
                f"{list(layer_sizes)!r}."
            )
        return np.array(
            [check_int(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)], dtype=np.int64
        )

    def _make_views(self) -> None:
        self.weights = []
        self.biases = []
        for p in range(len(self.layer_sizes) - 1):
            n_in, n_out = int(self.layer_sizes[p]), int(self.layer_sizes[p + 1])
            w0, b0 = int(self._w_off[p]), int(self._b_off[p])
            self.weights.append(self._params[w0 : w0 + n_out * n_in].reshape(n_out, n_in))
            self.biases.append(self._params[b0 : b0 + n_out])

    def _initialize(self, rng: np.random.Generator) -> None:
        codes_to_names = {v: k for k, v in _codes.ACTIVATIONS.items()}
        for p, W in enumerate(self.weights):
            name = self.init or default_initializer(codes_to_names[int(self._act_codes[p])])
            n_out, n_in = W.shape
            W[:] = INITIALIZERS[name](rng, n_out, n_in)
            self.biases[p][:] = 0

    def _workspace(self, capacity: int) -> Workspace:
        ws = self._workspaces.get(capacity)
        if ws is None:
            ws = self._workspaces[capacity] = Workspace(self.layer_sizes, capacity, self.dtype)
        return ws

    # ---------------------------------------------------------------- public API
    @property
    def params(self) -> np.ndarray:
        """The flat parameter buffer (writable; ``weights``/``biases`` are views into it)."""
        return self._params

    @params.setter
    def params(self, value) -> None:
        arr = np.asarray(value)
        if arr.shape != self._params.shape:
            raise ValueError(
                f"params must have shape {self._params.shape}; got {arr.shape}. Assign "
                "through model.params[...] = ... or model.weights[l][...] = ... instead."
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"params must be numeric; got dtype {arr.dtype}.")
        self._params[...] = arr

    @property
    def n_layers(self) -> int:
        """Number of weight layers (``len(layer_sizes) - 1``)."""
        return len(self.layer_sizes) - 1

    def fit(
        self,
        X,
        y,
        epochs: int = 1,
        batch_size: int | None = 32,
        learning_rate: float = 0.01,
        shuffle: bool = True,
    ) -> History:
        """Train with minibatch stochastic gradient descent.

        Parameters
        ----------
        X : (n, n_in) array_like
        y : array_like
            Targets; see ``Model`` for the shape each loss expects.
        epochs : int, default 1
        batch_size : int or None, default 32
            Rows per update; 1 is online learning, ``None`` the full batch. A batch size
            larger than the data is clamped to the number of samples. The last, partial
            batch of an epoch is used.
        learning_rate : float, default 0.01
            Step size, ``>= 0`` (0 runs the forward and backward passes without moving).
        shuffle : bool, default True
            Reshuffle the rows each epoch (seeded from ``seed``); else keep their order.

        Returns
        -------
        History
            ``model.history``, extended by this call's epochs.
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        epochs = check_int(epochs, "epochs")
        n = X.shape[0]
        batch_size = n if batch_size is None else min(check_int(batch_size, "batch_size"), n)
        lr = check_positive_float(learning_rate, "learning_rate", allow_zero=True)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; got {shuffle!r}.")

        ws = self._workspace(batch_size)
        order = np.arange(n, dtype=np.int64)
        for _ in range(epochs):
            if shuffle:
                self._shuffle_rng.shuffle(order)
            t0 = time.perf_counter()
            loss = train_epoch_sgd(
                X, T, order, self._params, self.grads, self.layer_sizes, self._w_off,
                self._b_off, self._act_codes, self._loss_code, batch_size, lr,
                ws.act, ws.delta, ws.a_off, ws.z_out, ws.t_buf,
            )
            self.history.append(loss=float(loss), time=time.perf_counter() - t0)
        return self.history

    def predict(self, X) -> np.ndarray:
        """Output-layer activations.

        Parameters
        ----------
        X : (n, n_in) array_like

        Returns
        -------
        (n, n_out) array of the model's dtype
            Class probabilities for cross-entropy, per-label probabilities for binary
            cross-entropy, regression outputs for squared error.
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        out = np.empty((X.shape[0], int(self.layer_sizes[-1])), dtype=self.dtype)
        ws = self._workspace(min(X.shape[0], CHUNK_ROWS))
        predict_into(
            X, self._params, self.layer_sizes, self._w_off, self._b_off, self._act_codes,
            ws.act, ws.a_off, ws.z_out, out,
        )
        return out

    def loss_value(self, X, y) -> float:
        """Mean loss over ``(X, y)`` (float), with the current parameters."""
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        ws = self._workspace(min(X.shape[0], CHUNK_ROWS))
        return float(dataset_loss(
            X, T, self._params, self.layer_sizes, self._w_off, self._b_off, self._act_codes,
            self._loss_code, ws.act, ws.a_off, ws.z_out,
        ))

    def gradient(self, X, y) -> tuple[float, np.ndarray]:
        """Mean loss over ``(X, y)`` and its gradient with respect to ``params``.

        Returns
        -------
        loss : float
        grad : (n_params,) array
            A copy, in the layout of ``params`` (``grads`` holds the same values).
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        ws = self._workspace(min(X.shape[0], CHUNK_ROWS))
        loss = dataset_gradient(
            X, T, self._params, self.grads, self.layer_sizes, self._w_off, self._b_off,
            self._act_codes, self._loss_code, ws.act, ws.delta, ws.a_off, ws.z_out,
        )
        return float(loss), self.grads.copy()

    def __repr__(self) -> str:
        return (
            f"Model({list(map(int, self.layer_sizes))}, activation={self.activations}, "
            f"loss={self.loss!r}, output={self.output!r}, dtype={self.dtype.name!r}, "
            f"seed={self.seed})"
        )
