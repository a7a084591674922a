"""The ``Model`` facade: validates input, owns the flat buffers, calls the compiled kernels."""

from __future__ import annotations

import copy
import numbers
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from . import _codes
from ._errors import DivergenceError, DivergenceWarning
from ._init import INITIALIZERS, default_initializer
from ._interrupt import DeferredInterrupt
from ._layout import param_offsets, workspace_offsets
from ._optim import add_l2
from ._threads import kernel_threads
from ._train import (
    count_correct,
    dataset_gradient_weighted,
    dataset_loss,
    predict_into,
    train_steps,
)
from ._validation import (
    check_bool,
    check_choice,
    check_class_weight,
    check_dtype,
    check_fraction,
    check_int,
    check_n_threads,
    check_positive_float,
    check_sample_weight,
    check_targets,
    check_X,
    rescale_sample_weight,
)
from .callbacks import EarlyStopping
from .optim import LBFGS, SGD, get_optimizer
from .schedules import Constant, get_schedule

#: rows per chunk when predicting or computing a whole-data-set gradient, at least: narrow
#: networks take more rows per chunk, up to ``CHUNK_BYTES`` of activations (fewer parallel
#: launches and calls per row); the count depends on the layer sizes only (never on the
#: thread count), so that chunked sums are reproducible
CHUNK_ROWS = 1024
CHUNK_ROWS_MAX = 16384
CHUNK_BYTES = 1 << 21


def chunk_rows(layer_sizes, itemsize: int) -> int:
    """Rows per chunk of whole-data-set passes for a network (see ``CHUNK_ROWS``)."""
    per_row = int(sum(int(s) for s in layer_sizes)) * int(itemsize)
    return max(CHUNK_ROWS, min(CHUNK_ROWS_MAX, CHUNK_BYTES // per_row))

#: target duration of one compiled training call; ``fit`` runs each epoch as calls of about
#: this long (measured), so Ctrl-C is honoured within a fraction of a second
CALL_SECONDS = 0.2

#: workspaces (one per batch capacity) kept per model; the least recently used is dropped
MAX_WORKSPACES = 4


class History:
    """Per-epoch training record.

    ``history["loss"][e]`` is the mean training loss of epoch ``e``, measured on each
    minibatch before its update (as Keras and PyTorch loops usually report it);
    ``history["time"][e]`` its wall-clock seconds, ``history["lr"][e]`` its learning rate;
    ``accuracy`` (classification), ``val_loss`` and ``val_accuracy`` (with validation data)
    where they apply. ``history.epochs`` counts the epochs.
    """

    def __init__(self):
        self.metrics: dict[str, list] = {"loss": [], "time": []}
        #: interruptions and divergences, each a dict with ``event`` ("interrupted" or
        #: "diverged"), ``epoch`` (index of the epoch it happened in), ``batch`` (batches of
        #: that epoch whose updates were kept), ``n_batches``, ``step`` (optimizer steps
        #: kept) and for divergence ``reason`` and ``bad_batch``
        self.events: list[dict] = []

    def append(self, **values) -> None:
        """Add one epoch; metrics absent from this epoch (or from earlier ones) read NaN,
        so every list has one entry per epoch."""
        n = self.epochs
        for key, value in values.items():
            self.metrics.setdefault(key, [float("nan")] * n).append(value)
        for key, seq in self.metrics.items():
            if key not in values:
                seq.append(float("nan"))

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
        extra = f", events={len(self.events)}" if self.events else ""
        return f"History(epochs={self.epochs}, last_loss={last}{extra})"


class Workspace:
    """Activation and delta buffers for batches of up to ``capacity`` rows.

    Attributes
    ----------
    act, delta : (capacity * sum(layer_sizes),) float arrays
    a_off : (L + 1,) int64 array, block offsets (see ``fastbp._layout``)
    z_out : (capacity * n_out,) float array, the output layer's z
    t_buf : (capacity * n_out,) float array, a batch of targets
    w_buf : (capacity,) float array, a batch of sample weights
    raw : like ``act``, the undropped hidden activations (allocated on first use by dropout)
    """

    def __init__(self, sizes: np.ndarray, capacity: int, dtype):
        self.capacity = capacity
        self.a_off, total = workspace_offsets(sizes, capacity)
        self.act = np.zeros(total, dtype=dtype)
        self.delta = np.zeros(total, dtype=dtype)
        self.z_out = np.zeros(capacity * int(sizes[-1]), dtype=dtype)
        self.t_buf = np.zeros(capacity * int(sizes[-1]), dtype=dtype)
        self.w_buf = np.zeros(capacity, dtype=dtype)
        self._raw = None

    @property
    def raw(self) -> np.ndarray:
        if self._raw is None:
            self._raw = np.zeros_like(self.act)
        return self._raw


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
    dropout : float or sequence of float, default 0
        Inverted-dropout rate of the hidden layers, in [0, 1): one rate for every hidden
        layer or one per hidden layer. Applied only while training (``fit``/``partial_fit``);
        the mask of each step is a hash of (seed, step, row, unit), so runs are repeatable
        and independent of the thread count. ``predict``/``evaluate`` never drop.

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
        dropout: float | Sequence[float] = 0.0,
    ):
        sizes = self._check_layer_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        drop_rates = self._check_dropout(dropout, n_hidden)
        if isinstance(activation, str):
            hidden = [check_choice(activation, _codes.HIDDEN_ACTIVATIONS, "activation")] * n_hidden
        else:
            hidden = (list(activation) if isinstance(activation, (list, tuple, np.ndarray))
                      else None)
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
        self._check_memory(sizes, np.dtype(dt).itemsize)
        if init is not None:
            check_choice(init, INITIALIZERS, "init")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        else:
            seed = check_int(seed, "seed", minimum=0, maximum=None)

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
        self._workspaces: OrderedDict[int, Workspace] = OrderedDict()
        self._lock = threading.RLock()  # one call at a time per model, across threads
        self._seconds_per_batch: dict[int, float] = {}
        self.dropout = [float(r) for r in drop_rates]
        self._drop_rates = drop_rates
        # children (0,) and (1,) are the streams the core model always used (init, shuffle)
        ss = np.random.SeedSequence(seed)
        self._drop_seed = int(
            np.random.SeedSequence(seed, spawn_key=(2,)).generate_state(1, np.uint64)[0] >> 1
        )
        self._make_views()
        self._reset_training_state(ss)

    def _reset_training_state(self, ss=None) -> None:
        """Weights as constructed from ``seed``; no optimizer/schedule state; empty history."""
        init_ss, shuffle_ss = (ss or np.random.SeedSequence(self.seed)).spawn(2)
        self._shuffle_rng = np.random.Generator(np.random.PCG64(shuffle_ss))
        self._initialize(np.random.Generator(np.random.PCG64(init_ss)))
        self.history = History()
        self._opt = None  # an fastbp.optim.Optimizer (the model's own copy)
        self._opt_state = np.zeros((0, self._params.shape[0]), dtype=self.dtype)
        self._opt_counters = np.zeros(1, dtype=np.int64)  # [t], the optimizer's step number
        self._schedule = None  # a fastbp.schedules.Schedule with its progress

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

    @staticmethod
    def _check_memory(sizes: np.ndarray, itemsize: int) -> None:
        """Refuse architectures whose parameter and gradient buffers cannot fit in memory
        (rather than let the operating system kill the process while initialising)."""
        s = [int(v) for v in sizes]
        n_params = sum(a * b + b for a, b in zip(s[:-1], s[1:]))
        need = 2 * n_params * itemsize
        try:
            physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            physical = 1 << 46
        if need > physical:
            raise MemoryError(
                f"layer_sizes={s} has {n_params} parameters, needing {need / 2**30:.1f} GiB "
                f"for parameters and gradients, more than this machine's "
                f"{physical / 2**30:.1f} GiB of memory; use smaller layers."
            )

    @staticmethod
    def _check_dropout(dropout, n_hidden: int) -> np.ndarray:
        if isinstance(dropout, numbers.Real) and not isinstance(dropout, (bool, np.bool_)):
            rates = [check_fraction(dropout, "dropout")] * n_hidden
        elif isinstance(dropout, (list, tuple, np.ndarray)) and len(dropout) == n_hidden:
            rates = [check_fraction(r, f"dropout[{i}]") for i, r in enumerate(dropout)]
        else:
            raise ValueError(
                f"dropout must be one rate in [0, 1) or a list of {n_hidden} rates (one per "
                f"hidden layer); got {dropout!r}."
            )
        return np.array(rates, dtype=np.float64)

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

    @property
    def _chunk_rows(self) -> int:
        return chunk_rows(self.layer_sizes, self.dtype.itemsize)

    def _workspace(self, capacity: int) -> Workspace:
        ws = self._workspaces.get(capacity)
        if ws is None:
            ws = self._workspaces[capacity] = Workspace(self.layer_sizes, capacity, self.dtype)
            while len(self._workspaces) > MAX_WORKSPACES:  # bounded memory
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(capacity)
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

    # ---------------------------------------------------------------- training
    def fit(
        self,
        X,
        y,
        epochs: int = 1,
        batch_size: int | None = 32,
        learning_rate: float = 0.01,
        shuffle: bool = True,
        *,
        optimizer=None,
        schedule=None,
        l2: float = 0.0,
        clip_norm: float | None = None,
        validation_data=None,
        validation_split: float = 0.0,
        early_stopping: EarlyStopping | None = None,
        callbacks=(),
        verbose: bool = False,
        sample_weight=None,
        class_weight=None,
        reset: bool = False,
        on_divergence: str = "raise",
        n_threads: int | None = None,
    ) -> History:
        """Train by minibatch backpropagation (or full-batch L-BFGS).

        Training continues from the current weights and optimizer state; ``reset=True``
        starts over from the initial weights. Every argument is checked before anything
        changes: a rejected call leaves the model as it was.

        Parameters
        ----------
        X : (n, n_in) array_like
        y : array_like
            Targets; see ``Model`` for the shape each loss expects.
        epochs : int, default 1
            Passes over the data (L-BFGS: iterations).
        batch_size : int or None, default 32
            Rows per update; 1 is online learning, ``None`` the full batch. A batch size
            larger than the data is clamped to the number of samples. The last, partial
            batch of an epoch is used.
        learning_rate : float, default 0.01
            Base step size, ``>= 0``; the schedule scales it per epoch (0 runs the forward
            and backward passes without moving the parameters).
        shuffle : bool, default True
            Reshuffle the rows each epoch (seeded from ``seed``); else keep their order.
        optimizer : str or fastbp.optim.Optimizer, optional
            ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"lbfgs"``
            (default hyperparameters) or an object such as ``fastbp.optim.SGD(momentum=0.9,
            nesterov=True)``. ``None`` keeps the model's current optimizer (plain SGD for a
            new model). Its state is kept while the kind stays the same, and reset when it
            changes.
        schedule : str or fastbp.schedules.Schedule, optional
            Per-epoch learning-rate schedule; ``None`` keeps the current one (constant for a
            new model). Passing a schedule equal to the current one continues its progress.
        l2 : float, default 0
            L2 penalty ``l2/2 * sum W**2`` on weights (not biases), added to the gradient
            inside the optimizer kernel (torch's ``weight_decay``). Reported losses are the
            data loss, without the penalty.
        clip_norm : float, optional
            Clip the global L2 norm of each step's gradient to this value.
        validation_data : (X_val, y_val), optional
        validation_split : float in [0, 1), default 0
            Hold out this fraction of the rows (a seeded random subset) for validation.
        early_stopping : fastbp.EarlyStopping, optional
        callbacks : sequence of callables ``f(epoch, logs) -> bool``
            Called after every epoch; returning ``True`` stops training.
        verbose : bool, default False
            Show a tqdm progress bar with the loss and samples per second.
        sample_weight : (n,) array_like, optional
            Non-negative weight of each sample. Weights are rescaled to mean 1 over the
            training rows and each batch of ``m`` rows minimises ``sum_i w_i E_i / m``, an
            unbiased estimate of the weighted mean loss ``sum_i w_i E_i / sum_i w_i`` (which
            full-batch training and L-BFGS minimise exactly): a weight of 2 acts like a
            duplicated row, and the learning rate means the same as without weights.
        class_weight : dict or "balanced", optional
            Weight per class (multiplies ``sample_weight``); classification losses only.
        reset : bool, default False
            Re-initialise weights, optimizer, schedule, shuffling and history first.
        on_divergence : {"raise", "warn"}, default "raise"
            What to do when the loss or the parameters become non-finite: training stops
            at once, the parameters, optimizer state and step count are restored to the last
            finite state (the end of the last compiled call whose result was finite), an
            event is appended to ``history.events``, and ``fastbp.DivergenceError`` is
            raised (``"raise"``) or a ``fastbp.DivergenceWarning`` issued and the history
            returned (``"warn"``).
        n_threads : int, optional
            Numba threads for this call (1 .. ``numba.config.NUMBA_NUM_THREADS``); the
            previous count is restored afterwards. Results do not depend on it.

        Ctrl-C (``KeyboardInterrupt``) stops training between compiled calls of about
        ``CALL_SECONDS``: the model keeps every completed step, ``history`` holds the
        completed epochs plus an ``"interrupted"`` event, and the interrupt is re-raised.

        Returns
        -------
        History
            ``model.history``, extended by this call's epochs (keys ``loss``, ``lr``,
            ``time``, and ``accuracy``, ``val_loss``, ``val_accuracy`` where applicable).
        """
        with self._lock:
            plan = self._plan(
                X, y, epochs, batch_size, learning_rate, shuffle, optimizer, schedule, l2,
                clip_norm, validation_data, validation_split, early_stopping, callbacks,
                verbose, sample_weight, class_weight, reset,
            )
            plan["on_divergence"] = check_choice(on_divergence, ("raise", "warn"),
                                                 "on_divergence")
            n_threads = check_n_threads(n_threads)
            with kernel_threads(n_threads):
                return self._run(plan)

    def partial_fit(
        self,
        X,
        y,
        batch_size: int | None = 32,
        learning_rate: float = 0.01,
        shuffle: bool = True,
        *,
        optimizer=None,
        schedule=None,
        l2: float = 0.0,
        clip_norm: float | None = None,
        sample_weight=None,
        class_weight=None,
        callbacks=(),
        on_divergence: str = "raise",
        n_threads: int | None = None,
    ) -> History:
        """One pass over ``(X, y)``, keeping the weights and optimizer state.

        Same arguments as ``fit`` (``optimizer=None``/``schedule=None`` keep the current
        ones), for online and out-of-core training: successive ``partial_fit`` calls with
        the same optimizer continue its momentum/moment estimates and step count.
        """
        return self.fit(
            X, y, 1, batch_size, learning_rate, shuffle, optimizer=optimizer,
            schedule=schedule, l2=l2, clip_norm=clip_norm, sample_weight=sample_weight,
            class_weight=class_weight, callbacks=callbacks, on_divergence=on_divergence,
            n_threads=n_threads,
        )

    @property
    def optimizer(self):
        """The model's current optimizer (a ``fastbp.optim`` object), or ``None``."""
        return self._opt

    @property
    def schedule(self):
        """The model's current schedule with its progress, or ``None``."""
        return self._schedule

    @property
    def optimizer_state(self) -> np.ndarray:
        """(rows, n_params) optimizer state buffer (rows: ``fastbp._optim`` docstring)."""
        return self._opt_state

    @property
    def optimizer_steps(self) -> int:
        """Steps taken by the current optimizer (Adam's ``t``); L-BFGS: iterations."""
        return int(self._opt_counters[0])

    @property
    def _classification(self) -> bool:
        return self.loss != "squared_error"

    def _plan(self, X, y, epochs, batch_size, learning_rate, shuffle, optimizer, schedule, l2,
              clip_norm, validation_data, validation_split, early_stopping, callbacks, verbose,
              sample_weight, class_weight, reset) -> dict:
        """Check every argument and prepare the arrays; changes nothing in the model."""
        n_in, n_out = int(self.layer_sizes[0]), int(self.layer_sizes[-1])
        if not (reset is True or np.isfinite(self._params).all()):
            raise ValueError(
                "the model's parameters contain NaN or infinity (set through model.params or "
                "model.weights); assign finite values, or pass reset=True to start over."
            )
        X = check_X(X, self.dtype, n_in)
        T = check_targets(y, X.shape[0], self.loss, n_out, self.dtype)
        epochs = check_int(epochs, "epochs")
        lr = check_positive_float(learning_rate, "learning_rate", allow_zero=True)
        shuffle = check_bool(shuffle, "shuffle")
        reset = check_bool(reset, "reset")
        if not isinstance(verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be True or False; got {verbose!r}.")
        opt = get_optimizer(optimizer) if optimizer is not None else (
            SGD() if reset or self._opt is None else self._opt)
        sched = get_schedule(schedule) if schedule is not None else (
            Constant() if reset or self._schedule is None else self._schedule)
        l2 = check_positive_float(l2, "l2", allow_zero=True)
        if clip_norm is not None:
            clip_norm = check_positive_float(clip_norm, "clip_norm")
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise TypeError(
                "early_stopping must be None or a fastbp.EarlyStopping(patience=..., ...); got "
                f"{type(early_stopping).__name__} {early_stopping!r}."
            )
        if callbacks is None:
            callbacks = ()
        elif callable(callbacks):
            callbacks = [callbacks]
        if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
            raise TypeError(f"callbacks must be a list of callables; got {callbacks!r}.")
        callbacks = list(callbacks)
        for i, cb in enumerate(callbacks):
            if not callable(cb):
                raise TypeError(f"callbacks[{i}] must be callable f(epoch, logs); got {cb!r}.")

        n = X.shape[0]
        sw = None
        if sample_weight is not None:
            sw = check_sample_weight(sample_weight, n, np.float64)
        if class_weight is not None:
            cw = check_class_weight(class_weight, T, self.loss)
            sw = cw if sw is None else sw * cw
        if sw is not None and not (sw > 0).any():
            raise ValueError("sample_weight * class_weight is zero for every sample.")

        validation_split = check_fraction(validation_split, "validation_split")
        Xv = Tv = None
        if validation_data is not None:
            if validation_split > 0:
                raise ValueError("pass validation_data or validation_split, not both.")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(
                    "validation_data must be a pair (X_val, y_val); got "
                    f"{type(validation_data).__name__}."
                )
            Xv = check_X(validation_data[0], self.dtype, n_in, "validation_data[0]")
            Tv = check_targets(validation_data[1], Xv.shape[0], self.loss, n_out, self.dtype,
                               "validation_data[1]")
        elif validation_split > 0:
            n_val = int(round(validation_split * n))
            if n_val < 1 or n - n_val < 1:
                raise ValueError(
                    f"validation_split={validation_split} of {n} samples leaves "
                    f"{n_val} for validation and {n - n_val} for training; both need >= 1."
                )
            perm = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(3,)))
            ).permutation(n)
            val_rows = np.sort(perm[:n_val])
            keep = np.ones(n, dtype=bool)
            keep[val_rows] = False
            Xv, Tv = X[val_rows], T[val_rows]
            X, T = np.ascontiguousarray(X[keep]), np.ascontiguousarray(T[keep])
            if sw is not None:
                sw = sw[keep]
                if not (sw > 0).any():
                    raise ValueError("every training sample left after validation_split has "
                                     "weight 0.")
            n = X.shape[0]
        has_val = Xv is not None
        if early_stopping is not None:
            if early_stopping.monitor.startswith("val_") and not has_val:
                raise ValueError(
                    f"early_stopping monitors {early_stopping.monitor!r} but there is no "
                    "validation data; pass validation_data or validation_split, or use "
                    "EarlyStopping(monitor='loss')."
                )
            if early_stopping.monitor.endswith("accuracy") and not self._classification:
                raise ValueError(
                    f"early_stopping monitors {early_stopping.monitor!r} but loss="
                    f"{self.loss!r} is not a classification loss; monitor a loss instead."
                )
        batch_size = n if batch_size is None else min(check_int(batch_size, "batch_size"), n)
        if isinstance(opt, LBFGS):
            if any(self.dropout):
                raise ValueError("optimizer='lbfgs' needs a deterministic objective; build "
                                 "the model with dropout=0 or use a stochastic optimizer.")
            if clip_norm is not None:
                raise ValueError("clip_norm is not supported with optimizer='lbfgs'.")
            if not isinstance(sched, Constant):
                raise ValueError(
                    f"optimizer='lbfgs' has no learning rate to schedule; got schedule={sched!r}."
                )
            try:
                import scipy.optimize  # noqa: F401
            except ImportError:
                raise ImportError("optimizer='lbfgs' needs SciPy: pip install scipy") from None
        if sw is not None:  # mean 1 over the training rows: batches estimate the weighted mean
            sw = rescale_sample_weight(sw, self.dtype)
        return dict(
            X=X, T=T, SW=np.zeros(0, self.dtype) if sw is None else sw.astype(self.dtype),
            Xv=Xv, Tv=Tv, epochs=epochs, batch_size=batch_size, lr=lr, shuffle=shuffle,
            opt=opt, sched=sched, l2=l2, clip_norm=clip_norm, es=early_stopping,
            callbacks=callbacks, verbose=bool(verbose), reset=reset,
        )

    def _adopt_optimizer(self, opt) -> None:
        """Make ``opt`` the model's optimizer; keep the state when the kind is unchanged."""
        if self._opt is None or type(self._opt).kind != type(opt).kind or (
            isinstance(self._opt, LBFGS) != isinstance(opt, LBFGS)
        ):
            self._opt_state = opt.init_state(self._params.shape[0], self.dtype)
            self._opt_counters[0] = 0
        if opt is not self._opt:
            self._opt = copy.deepcopy(opt)

    def _adopt_schedule(self, sched) -> None:
        if sched is not self._schedule:
            if self._schedule is None or self._schedule != sched:
                self._schedule = copy.deepcopy(sched)
                self._schedule.reset()

    def _validation_metrics(self, Xv, Tv) -> dict:
        logs = {}
        ws = self._workspace(min(Xv.shape[0], self._chunk_rows))
        logs["val_loss"] = float(dataset_loss(
            Xv, Tv, self._params, self.layer_sizes, self._w_off, self._b_off, self._act_codes,
            self._loss_code, ws.act, ws.a_off, ws.z_out,
        ))
        if self._classification:
            out = np.empty_like(Tv)
            predict_into(Xv, self._params, self.layer_sizes, self._w_off, self._b_off,
                         self._act_codes, ws.act, ws.a_off, ws.z_out, out)
            logs["val_accuracy"] = count_correct(out, Tv, self._loss_code) / Xv.shape[0]
        return logs

    def _run(self, plan: dict) -> History:
        if plan["reset"]:
            self._reset_training_state()
        self._adopt_optimizer(plan["opt"])
        self._adopt_schedule(plan["sched"])
        es = plan["es"]
        if es is not None:
            es.reset()
        self._best_params = None
        loop = _EpochLoop(self, plan)
        try:
            with DeferredInterrupt() as interrupt:
                plan["interrupt"] = interrupt
                if isinstance(self._opt, LBFGS):
                    self._fit_lbfgs(plan, loop)
                else:
                    self._fit_steps(plan, loop)
                if es is not None and es.restore_best and self._best_params is not None:
                    self._params[...] = self._best_params
        finally:
            loop.close()
            self._best_params = None
        return self.history

    def _interrupted(self, epoch: int, batch: int, n_batches: int) -> None:
        """Record an interruption (the model is at a step boundary) in the history."""
        self.history.events.append({
            "event": "interrupted", "epoch": epoch, "batch": batch, "n_batches": n_batches,
            "step": int(self._opt_counters[0]),
        })

    def _diverged(self, plan: dict, event: dict) -> None:
        """Record a divergence (state already restored), then raise or warn."""
        self.history.events.append(event)
        msg = (
            f"training diverged in epoch {event['epoch']} (batch {event['bad_batch']} of "
            f"{event['n_batches']}): {event['reason']}. Parameters and optimizer state were "
            f"restored to the last finite state (optimizer step {event['step']}, "
            f"{event['batch']} batches into that epoch). Lower the learning rate, clip "
            "gradients (clip_norm=...) or scale the inputs."
        )
        if plan["on_divergence"] == "raise":
            raise DivergenceError(msg, event)
        warnings.warn(msg, DivergenceWarning, stacklevel=4)

    def _fit_steps(self, plan: dict, loop) -> None:
        X, T, SW, bs = plan["X"], plan["T"], plan["SW"], plan["batch_size"]
        n = X.shape[0]
        n_batches = -(-n // bs)
        ws = self._workspace(bs)
        raw = ws.raw if any(self.dropout) else ws.act
        hyper = self._opt.hyper()
        kind = self._opt.kind
        clip = plan["clip_norm"] or 0.0
        interrupt = plan["interrupt"]
        order = np.arange(n, dtype=np.int64)
        acc = np.zeros(3)
        # the last finite state: restored if the loss or the parameters become non-finite
        good_params = self._params.copy()
        good_state = self._opt_state.copy()
        good_step = int(self._opt_counters[0])
        per_batch = self._seconds_per_batch.get(bs)
        chunk = 1 if per_batch is None else max(1, int(CALL_SECONDS / per_batch))
        epoch, step0, done = self.history.epochs, good_step, 0
        try:
            for _ in range(plan["epochs"]):
                epoch, step0, done = self.history.epochs, int(self._opt_counters[0]), 0
                if plan["shuffle"]:
                    # shuffle the identity each epoch (not last epoch's order), so an epoch's
                    # order depends only on the RNG state: training split over several fit
                    # calls, or saved and resumed, equals uninterrupted training
                    order[:] = np.arange(n)
                    self._shuffle_rng.shuffle(order)
                lr = float(self._schedule.lr(plan["lr"]))
                acc[:] = 0.0
                seconds = 0.0
                while done < n_batches:
                    stop = min(n_batches, done + chunk)
                    t0 = time.perf_counter()
                    status, reached = train_steps(
                        X, T, SW, order, self._params, self.grads, self._opt_state, kind,
                        hyper, self._opt_counters, lr, plan["l2"], clip, self._drop_rates,
                        self._drop_seed, self.layer_sizes, self._w_off, self._b_off,
                        self._act_codes, self._loss_code, bs, ws.act, ws.delta, raw, ws.a_off,
                        ws.z_out, ws.t_buf, ws.w_buf, done, stop, acc, True,
                    )
                    dt = time.perf_counter() - t0
                    if status != 0:
                        self._params[...] = good_params
                        self._opt_state[...] = good_state
                        self._opt_counters[0] = good_step
                        reason = ("the loss became non-finite" if status == 1 else
                                  "the parameters or optimizer state became non-finite")
                        self._diverged(plan, {
                            "event": "diverged", "epoch": epoch, "reason": reason,
                            "bad_batch": int(reached), "batch": good_step - step0,
                            "n_batches": n_batches, "step": good_step,
                        })
                        return
                    np.copyto(good_params, self._params)
                    np.copyto(good_state, self._opt_state)
                    good_step = int(self._opt_counters[0])
                    seconds += dt
                    ran = stop - done
                    done = stop
                    if dt > 0:  # next call: about CALL_SECONDS, growing at most 4-fold
                        self._seconds_per_batch[bs] = dt / ran
                        chunk = max(1, min(4 * ran, int(CALL_SECONDS * ran / dt)))
                    if interrupt.pending and done < n_batches:
                        raise KeyboardInterrupt
                total = acc[0] / acc[1] if acc[1] > 0 else acc[0]
                logs = {"loss": float(total), "lr": lr, "time": seconds}
                if self._classification:
                    logs["accuracy"] = float(acc[2] / n)
                stop_training = loop.end_epoch(logs)
                if interrupt.pending:
                    raise KeyboardInterrupt
                if stop_training:
                    break
        except KeyboardInterrupt:
            if self.history.epochs > epoch:  # the epoch was recorded before the interrupt
                self._interrupted(self.history.epochs, 0, n_batches)
            else:
                self._interrupted(epoch, int(self._opt_counters[0]) - step0, n_batches)
            raise

    def _fit_lbfgs(self, plan: dict, loop) -> None:
        from scipy.optimize import minimize

        X, T, SW, l2 = plan["X"], plan["T"], plan["SW"], plan["l2"]
        cfg = self._opt.get_config()
        ws = self._workspace(min(X.shape[0], self._chunk_rows))
        params, grads = self._params, self.grads
        penalty = [0.0]
        interrupt = plan["interrupt"]
        last_good = params.copy()  # the last accepted (finite) iterate

        def objective(x):
            if interrupt.pending:
                raise KeyboardInterrupt
            params[...] = x
            loss = dataset_gradient_weighted(
                X, T, SW, params, grads, self.layer_sizes, self._w_off, self._b_off,
                self._act_codes, self._loss_code, ws.act, ws.delta, ws.a_off, ws.z_out,
            )
            penalty[0] = add_l2(params, grads, l2, self.layer_sizes, self._w_off) if l2 else 0.0
            return loss + penalty[0], grads.astype(np.float64)

        t0 = [time.perf_counter()]

        def callback(intermediate_result):
            x = intermediate_result.x
            params[...] = x
            loss = float(intermediate_result.fun)
            if l2:
                loss -= float(add_l2(params, np.zeros_like(grads), l2, self.layer_sizes,
                                     self._w_off))
            logs = {"loss": loss, "lr": float("nan"), "time": time.perf_counter() - t0[0]}
            if self._classification:
                logs["accuracy"] = self._accuracy(X, T)
            if np.isfinite(loss) and np.isfinite(params).all():
                last_good[...] = params
            self._opt_counters[0] += 1
            stop = loop.end_epoch(logs)
            t0[0] = time.perf_counter()
            if stop:
                raise StopIteration

        try:
            res = minimize(
                objective, params.astype(np.float64), jac=True, method="L-BFGS-B",
                callback=callback,
                options={"maxiter": plan["epochs"], "maxfun": cfg["max_fun"],
                         "maxcor": cfg["m"], "gtol": cfg["tol"], "ftol": cfg["ftol"]},
            )
        except KeyboardInterrupt:  # back to the last accepted iterate (not a line-search trial)
            params[...] = last_good
            self._interrupted(self.history.epochs, 0, 1)
            raise
        params[...] = res.x
        self.lbfgs_result_ = res
        if not (np.isfinite(res.fun) and np.isfinite(params).all()):
            params[...] = last_good
            self._diverged(plan, {
                "event": "diverged", "epoch": self.history.epochs, "reason":
                "the loss or the parameters became non-finite", "bad_batch": 0, "batch": 0,
                "n_batches": 1, "step": int(self._opt_counters[0]),
            })
        if interrupt.pending:
            self._interrupted(self.history.epochs, 0, 1)
            raise KeyboardInterrupt

    def _accuracy(self, X, T) -> float:
        ws = self._workspace(min(X.shape[0], self._chunk_rows))
        out = np.empty_like(T)
        predict_into(X, self._params, self.layer_sizes, self._w_off, self._b_off,
                     self._act_codes, ws.act, ws.a_off, ws.z_out, out)
        return count_correct(out, T, self._loss_code) / X.shape[0]

    def predict(self, X, *, n_threads: int | None = None) -> np.ndarray:
        """Output-layer activations.

        Parameters
        ----------
        X : (n, n_in) array_like
            Any real dtype, order or byte order (converted once to the model dtype).
        n_threads : int, optional
            Numba threads for this call; the previous count is restored afterwards.

        Returns
        -------
        (n, n_out) array of the model's dtype
            Class probabilities for cross-entropy, per-label probabilities for binary
            cross-entropy, regression outputs for squared error.
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        with self._lock, kernel_threads(n_threads):
            out = np.empty((X.shape[0], int(self.layer_sizes[-1])), dtype=self.dtype)
            ws = self._workspace(min(X.shape[0], self._chunk_rows))
            predict_into(
                X, self._params, self.layer_sizes, self._w_off, self._b_off, self._act_codes,
                ws.act, ws.a_off, ws.z_out, out,
            )
        return out

    def loss_value(self, X, y, *, n_threads: int | None = None) -> float:
        """Mean loss over ``(X, y)`` (float), with the current parameters."""
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        with self._lock, kernel_threads(n_threads):
            ws = self._workspace(min(X.shape[0], self._chunk_rows))
            return float(dataset_loss(
                X, T, self._params, self.layer_sizes, self._w_off, self._b_off,
                self._act_codes, self._loss_code, ws.act, ws.a_off, ws.z_out,
            ))

    def gradient(self, X, y, sample_weight=None, l2: float = 0.0, *,
                 n_threads: int | None = None) -> tuple[float, np.ndarray]:
        """Mean loss over ``(X, y)`` and its gradient with respect to ``params``.

        The objective is ``sum_i w_i E_i / sum_i w_i + l2/2 * sum W**2`` (the data loss with
        ``sample_weight`` and the L2 penalty of ``fit``; no dropout), the function L-BFGS
        minimises.

        Returns
        -------
        loss : float
        grad : (n_params,) array
            A copy, in the layout of ``params`` (``grads`` holds the same values).
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        SW = (np.zeros(0, self.dtype) if sample_weight is None
              else check_sample_weight(sample_weight, X.shape[0], self.dtype))
        l2 = check_positive_float(l2, "l2", allow_zero=True)
        with self._lock, kernel_threads(n_threads):
            ws = self._workspace(min(X.shape[0], self._chunk_rows))
            loss = dataset_gradient_weighted(
                X, T, SW, self._params, self.grads, self.layer_sizes, self._w_off,
                self._b_off, self._act_codes, self._loss_code, ws.act, ws.delta, ws.a_off,
                ws.z_out,
            )
            if l2:
                loss += add_l2(self._params, self.grads, l2, self.layer_sizes, self._w_off)
            return float(loss), self.grads.copy()

    def evaluate(self, X, y, sample_weight=None, *, n_threads: int | None = None) -> dict:
        """Loss (and accuracy for classification losses) of the current weights on ``(X, y)``.

        Returns
        -------
        dict
            ``{"loss": mean loss}`` (weighted mean with ``sample_weight``; no L2 penalty, no
            dropout), plus ``"accuracy"`` (fraction of rows whose argmax / 0.5-thresholded
            labels match) for ``cross_entropy`` and ``binary_cross_entropy``.
        """
        X = check_X(X, self.dtype, int(self.layer_sizes[0]))
        T = check_targets(y, X.shape[0], self.loss, int(self.layer_sizes[-1]), self.dtype)
        SW = (None if sample_weight is None
              else check_sample_weight(sample_weight, X.shape[0], self.dtype))
        with self._lock, kernel_threads(n_threads):
            ws = self._workspace(min(X.shape[0], self._chunk_rows))
            if SW is None:
                loss = dataset_loss(
                    X, T, self._params, self.layer_sizes, self._w_off, self._b_off,
                    self._act_codes, self._loss_code, ws.act, ws.a_off, ws.z_out,
                )
            else:
                loss = dataset_gradient_weighted(
                    X, T, SW, self._params, np.empty_like(self.grads), self.layer_sizes,
                    self._w_off, self._b_off, self._act_codes, self._loss_code, ws.act,
                    ws.delta, ws.a_off, ws.z_out,
                )
            out = {"loss": float(loss)}
            if self._classification:
                out["accuracy"] = float(self._accuracy(X, T))
        return out

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the model to ``path`` (an ``.npz`` file; see ``fastbp._io`` for the format).

        The file holds the flat parameters, the optimizer state and a JSON header
        (architecture, dtype, seed, optimizer and schedule with their progress, shuffling
        RNG state, history). Writing is atomic: a crash never leaves a partial file and
        never destroys an existing one.
        """
        from ._io import save_model

        with self._lock:
            save_model(self, path)

    @classmethod
    def load(cls, path) -> Model:
        """Read a model written by ``save`` (``allow_pickle=False``: loading runs no code).

        The round trip is bit-exact, and training resumes exactly where it stopped.
        """
        from ._io import load_model

        return load_model(cls, path)

    def __getstate__(self) -> dict:
        from ._io import model_state

        header, arrays = model_state(self)
        return {"header": header, "arrays": {k: v.copy() for k, v in arrays.items()}}

    def __setstate__(self, state: dict) -> None:
        from ._io import restore_model

        restore_model(self, state["header"], state["arrays"])

    def __repr__(self) -> str:
        return (
            f"Model({list(map(int, self.layer_sizes))}, activation={self.activations}, "
            f"loss={self.loss!r}, output={self.output!r}, dtype={self.dtype.name!r}, "
            f"seed={self.seed}" + (f", dropout={self.dropout}" if any(self.dropout) else "")
            + ")"
        )

    # ---------------------------------------------------------------- embedding API
    # (issue 5: hands out what the public kernels in ``fastbp.kernels`` take)
    def kernel_args(self):
        """The model's buffers and layout, as the compiled kernels in ``fastbp.kernels`` take them.

        Returns
        -------
        fastbp.kernels.KernelArgs
            Named tuple ``(params, grads, sizes, w_off, b_off, act_codes, loss_code,
            out_code, drop_rates, drop_seed)``. ``params`` and ``grads`` are the model's own
            buffers, not copies: kernels that update ``params`` change this model, and
            assignments through ``model.params`` / ``model.weights`` are seen by the kernels.
            The tuple can be passed to an ``@njit`` function as it is.
        """
        from .kernels import KernelArgs

        return KernelArgs(
            self._params, self.grads, self.layer_sizes, self._w_off, self._b_off,
            self._act_codes, int(self._loss_code), int(self._act_codes[-1]),
            self._drop_rates, int(self._drop_seed),
        )

    def allocate_workspace(self, batch_size: int):
        """Fresh activation/delta workspace for batches of up to ``batch_size`` rows.

        Parameters
        ----------
        batch_size : int
            Capacity in rows (>= 1).

        Returns
        -------
        fastbp.kernels.WorkspaceArrays
            Named tuple ``(act, delta, a_off, z_out, t_buf, raw, w_buf, capacity)`` in the
            model's dtype, owned by the caller (the model keeps no reference to it).
        """
        from .kernels import WorkspaceArrays

        cap = check_int(batch_size, "batch_size")
        ws = Workspace(self.layer_sizes, cap, self.dtype)
        return WorkspaceArrays(
            ws.act, ws.delta, ws.a_off, ws.z_out, ws.t_buf, ws.raw, ws.w_buf, cap
        )

    def optimizer_args(self, optimizer=None):
        """The model's optimizer as the step kernels in ``fastbp.kernels`` take it.

        Parameters
        ----------
        optimizer : str or fastbp.optim.Optimizer, optional
            Make this the model's optimizer first (as ``fit(optimizer=...)`` would: the
            state is kept when the kind is unchanged, else started afresh). Default: the
            model's current optimizer, or plain SGD if it has none yet.

        Returns
        -------
        fastbp.kernels.OptimizerArgs
            Named tuple ``(kind, hyper, state, counters)``: the optimizer code, its (4,)
            float64 hyperparameters, the model's own ``(rows, n_params)`` state buffer and
            ``counters``, the model's own (1,) int64 array holding the step number ``t``.
            Kernels that update ``state``/``counters`` advance the model's optimizer, so a
            later ``fit`` continues from there. The tuple stays valid while the optimizer
            kind is unchanged; after ``fit`` with another kind of optimizer or with
            ``reset=True`` (which start a new state), call ``optimizer_args`` again.
        """
        from .kernels import OptimizerArgs

        if optimizer is not None:
            opt = get_optimizer(optimizer)
        else:
            opt = self._opt if self._opt is not None else SGD()
        if isinstance(opt, LBFGS):
            raise ValueError(
                "L-BFGS has no per-step kernel (it runs through SciPy); use "
                "fastbp.kernels.loss_and_gradient with scipy.optimize.minimize instead, or "
                "choose a step optimizer such as 'sgd' or 'adam'."
            )
        self._adopt_optimizer(opt)
        return OptimizerArgs(
            int(self._opt.kind), self._opt.hyper(), self._opt_state, self._opt_counters
        )


class _EpochLoop:
    """End-of-epoch bookkeeping shared by the step-based and L-BFGS paths: validation,
    history, schedule, early stopping, callbacks, progress bar."""

    def __init__(self, model: Model, plan: dict):
        self.model = model
        self.plan = plan
        self.n = plan["X"].shape[0]
        self.bar = None
        if plan["verbose"]:
            from tqdm import tqdm

            self.bar = tqdm(total=plan["epochs"], unit="epoch", desc="fastbp fit")

    def end_epoch(self, logs: dict) -> bool:
        m, plan = self.model, self.plan
        if plan["Xv"] is not None:
            logs.update(m._validation_metrics(plan["Xv"], plan["Tv"]))
        epoch = m.history.epochs
        m.history.append(**logs)
        m._schedule.step(logs.get("val_loss", logs["loss"]), self.n)
        stop = False
        es = plan["es"]
        if es is not None:
            improved, stop = es.update(epoch, logs)
            if improved and es.restore_best:
                m._best_params = m._params.copy()
        for cb in plan["callbacks"]:
            if cb(epoch, dict(logs)):
                stop = True
        if self.bar is not None:
            post = {"loss": f"{logs['loss']:.4g}"}
            if "val_loss" in logs:
                post["val_loss"] = f"{logs['val_loss']:.4g}"
            if logs["time"] > 0:
                post["samples/s"] = f"{self.n / logs['time']:.3g}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        return stop

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
