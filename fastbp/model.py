"""The ``Model`` facade: checks arguments, owns the buffers, trains through the engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _io
from ._initializers import INITIALIZERS, initialize
from ._threads import kernel_threads
from ._training import passes
from ._training.loop import Trainer
from ._training.plan import FIT_DEFAULTS as D
from ._training.plan import make_plan
from ._training.state import SEED_DROPOUT, SEED_INIT, History, TrainingState, seed_stream
from ._validation.architecture import check_layer_sizes, check_memory, check_per_layer
from ._validation.arrays import check_sample_weight, check_targets, check_X
from ._validation.params import Bool, Choice, Int, Real, check_dtype, check_params
from .kernels import _codes
from .kernels._layout import Network, Workspace
from .kernels._updates import add_l2
from .optim import LBFGS, SGD, get_optimizer

#: Keras, PyTorch and scikit-learn names of fastbp's activations. Names are matched without
#: regard to case, "-", "_" or spaces, so fastbp's own names need no entry: "ReLU", "RELU",
#: "Tanh", "LeakyReLU", "leaky-relu", "Softmax" are accepted as they are.
ACTIVATION_ALIASES = {
    "ReLU": "relu",  # torch.nn.ReLU
    "sigmoid": "logistic",  # Keras, torch.nn.Sigmoid, torch.sigmoid, jax.nn.sigmoid
    "linear": "identity",  # Keras (activation=None)
    "Identity": "identity",  # torch.nn.Identity
    "Tanh": "tanh",  # torch.nn.Tanh
    "LeakyReLU": "leaky_relu",  # torch.nn.LeakyReLU (fastbp's slope 0.01 is torch's default)
    "Softmax": "softmax",  # torch.nn.Softmax, output only
    "exponential": "exp",  # Keras, output only (Poisson)
}
#: other libraries' activations that fastbp does not implement (refused as such)
UNSUPPORTED_ACTIVATIONS = (
    "elu", "selu", "gelu", "silu", "swish", "mish", "softplus", "softsign", "relu6",
    "hard_sigmoid", "hardsigmoid", "hard_tanh", "hardtanh", "hardswish", "hard_swish",
    "prelu", "rrelu", "celu", "glu", "log_softmax", "logsigmoid", "softmin",
)
_HIDDEN = Choice(_codes.HIDDEN_ACTIVATIONS, aliases=ACTIVATION_ALIASES,
                 unsupported=UNSUPPORTED_ACTIVATIONS)
_OUTPUT = Choice(_codes.ACTIVATIONS, none=True, aliases=ACTIVATION_ALIASES,
                 unsupported=UNSUPPORTED_ACTIVATIONS)

#: Keras and PyTorch names of fastbp's losses (matched without regard to case, "-" or "_")
LOSS_ALIASES = {
    "categorical_crossentropy": "cross_entropy",  # Keras, one-hot targets
    "sparse_categorical_crossentropy": "cross_entropy",  # Keras, integer labels
    "CrossEntropyLoss": "cross_entropy",  # torch.nn, logits and integer labels
    "mse": "squared_error",  # Keras
    "mean_squared_error": "squared_error",  # Keras
    "MSELoss": "squared_error",  # torch.nn
    "binary_crossentropy": "binary_cross_entropy",  # Keras
    "BCELoss": "binary_cross_entropy",  # torch.nn, probabilities
    "BCEWithLogitsLoss": "binary_cross_entropy",  # torch.nn, logits
    "log_loss": "binary_cross_entropy",  # scikit-learn's name for the logistic loss
}
_LOSS = Choice(_codes.LOSSES, aliases=LOSS_ALIASES)


class Model:
    """A multilayer perceptron trained by backpropagation over flat buffers.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first, output last; at least two entries, all >= 1.
    activation : str or sequence of str, default "relu"
        Hidden-layer activation: one name for every hidden layer, or one name per hidden
        layer. One of identity, logistic, tanh, relu, leaky_relu (slope 0.01). Names are
        matched without regard to case, ``-`` or ``_``, and Keras's, PyTorch's and
        scikit-learn's names are accepted (``ACTIVATION_ALIASES``: ``ReLU``, ``sigmoid``,
        ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``linear``, ...); ``model.activations`` holds
        fastbp's names. Another name gets the closest valid one suggested.
    loss : str, default "squared_error"
        ``squared_error`` (E = 1/n sum 1/2 ||y - t||^2), ``cross_entropy`` (softmax output,
        integer labels or one-hot targets), ``binary_cross_entropy`` (logistic output,
        binary or multi-label 0/1 targets) or ``poisson`` (exp output, counts or rates
        ``t >= 0``; E = 1/n sum_j t_j log(t_j / y_j) - t_j + y_j, the half Poisson deviance,
        as scikit-learn's ``MLPRegressor(loss="poisson")``). Keras and PyTorch names are
        accepted too (``LOSS_ALIASES``): ``categorical_crossentropy``,
        ``sparse_categorical_crossentropy`` and ``CrossEntropyLoss`` mean
        ``cross_entropy``; ``mse``, ``mean_squared_error`` and ``MSELoss`` mean
        ``squared_error`` (the same minimiser; fastbp's value is half the sum over outputs
        rather than the mean); ``binary_crossentropy``, ``BCELoss``, ``BCEWithLogitsLoss``
        and ``log_loss`` mean ``binary_cross_entropy``. ``model.loss`` holds fastbp's
        name.
    output : str, optional
        Output activation. Defaults to the one the loss implies (identity, softmax,
        logistic, exp); the same names and aliases as ``activation``. Cross-entropy
        requires softmax, binary cross-entropy logistic and Poisson exp (the fused,
        numerically stable pairs); squared error accepts any activation but exp.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds weight initialisation, shuffling and dropout. ``None`` draws fresh entropy,
        recorded in ``model.seed`` so the run can be repeated.
    init : str, optional
        Weight initialiser for every layer: glorot_uniform, glorot_normal, he_uniform,
        he_normal or lecun_normal. Default: He uniform for layers feeding relu/leaky_relu,
        Glorot uniform otherwise. Biases start at zero.
    dropout : float or sequence of float, default 0
        Inverted-dropout rate of the hidden layers, in [0, 1): one rate for every hidden
        layer or one per hidden layer, applied only while training. The mask of each step
        is a hash of (seed, step, row, unit): repeatable, independent of the thread count.

    Attributes
    ----------
    params : (n_params,) array
        All weights and biases, layer by layer, each ``W`` row-major ``(n_out, n_in)``
        followed by its ``b``.
    grads : (n_params,) array
        Gradient buffer with the layout of ``params``.
    weights, biases : lists of array views into ``params``.
    history : History
    network : fastbp.kernels._layout.Network
        The layout and buffers the compiled kernels are given.
    state : TrainingState
        Optimizer with its state and step count, schedule, shuffling generator, history.
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
        sizes = check_layer_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        dropout = check_per_layer(dropout, n_hidden, "dropout", Real(0.0, 1.0, hi_open=True),
                                  "rate in [0, 1)", "rates")
        hidden = check_per_layer(activation, n_hidden, "activation", _HIDDEN, "name", "names")
        args = check_params(
            {"loss": loss, "output": output, "init": init, "seed": seed},
            {"loss": _LOSS, "output": _OUTPUT,
             "init": Choice(INITIALIZERS, none=True), "seed": Int(0, None, none=True)},
        )
        loss, output, init, seed = args["loss"], args["output"], args["init"], args["seed"]
        output = output or _codes.DEFAULT_OUTPUT[loss]
        if output not in _codes.ALLOWED_OUTPUTS[loss]:
            raise ValueError(
                f"output={output!r} cannot be used with loss={loss!r}; this loss needs "
                f"output in {list(_codes.ALLOWED_OUTPUTS[loss])} (leave output=None to get it)."
            )
        dt = check_dtype(dtype)
        check_memory(sizes, np.dtype(dt).itemsize)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))

        self.layer_sizes = sizes
        self.activations = hidden
        self.output = output
        self.loss = loss
        self.dtype = np.dtype(dt)
        self.seed = seed
        self.init = init
        self.dropout = [float(r) for r in dropout]
        drop_seed = int(seed_stream(seed, SEED_DROPOUT).generate_state(1, np.uint64)[0] >> 1)
        codes = [_codes.ACTIVATIONS[a] for a in hidden + [output]]
        self._net = Network(sizes, codes, _codes.LOSSES[loss], dt, self.dropout, drop_seed,
                            init)
        self._state = TrainingState(seed, self._net.n_params, dt)
        self.weights = [self._net.weight(self._net.params, p) for p in range(len(sizes) - 1)]
        self.biases = [self._net.bias(self._net.params, p) for p in range(len(sizes) - 1)]
        initialize(self._net, seed_stream(seed, SEED_INIT))

    # ---------------------------------------------------------------- buffers and state
    @property
    def params(self) -> np.ndarray:
        """The flat parameter buffer (writable; ``weights``/``biases`` are views into it)."""
        return self._net.params

    @params.setter
    def params(self, value) -> None:
        arr = np.asarray(value)
        if arr.shape != self._net.params.shape:
            raise ValueError(
                f"params must have shape {self._net.params.shape}; got {arr.shape}. Assign "
                "through model.params[...] = ... or model.weights[l][...] = ... instead."
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"params must be numeric; got dtype {arr.dtype}.")
        with np.errstate(over="ignore", invalid="ignore"):
            cast = arr.astype(self.dtype)
        overflow = np.flatnonzero(np.isfinite(arr) & ~np.isfinite(cast))
        if overflow.size:
            i = int(overflow[0])
            p = int(np.searchsorted(self._net.w_off, i, side="right")) - 1
            part = "weights" if i < int(self._net.b_off[p]) else "biases"
            raise ValueError(
                f"params[{i}] = {arr[i].item()!r} (layer {p}'s {part}) does not fit in "
                f"{self.dtype} (it overflows to {cast[i]}); rescale it or use a float64 "
                f"model.")
        self._net.params[...] = cast

    def set_activation(self, activation: str | Sequence[str]) -> None:
        """Change the hidden layers' activation, keeping the weights and training state.

        What scikit-learn's estimators do when ``activation`` changes between fits that
        continue from the fitted weights (``warm_start``, ``partial_fit``).

        Parameters
        ----------
        activation : str or sequence of str
            As for the constructor: one name for every hidden layer, or one per hidden
            layer. The output activation (set by the loss) is unchanged.
        """
        hidden = check_per_layer(activation, len(self.layer_sizes) - 2, "activation",
                                 _HIDDEN, "name", "names")
        with self._net.lock:  # not while this model trains or predicts in another thread
            self._net.act_codes[:-1] = [_codes.ACTIVATIONS[a] for a in hidden]
            self.activations = hidden

    @property
    def grads(self) -> np.ndarray:
        """Gradient buffer, layout of ``params`` (written by ``gradient`` and training)."""
        return self._net.grads

    @property
    def network(self) -> Network:
        """The layout, buffers and workspaces the compiled kernels are given."""
        return self._net

    @property
    def state(self) -> TrainingState:
        """The training state (optimizer state, step count, schedule, shuffling, history)."""
        return self._state

    @property
    def history(self) -> History:
        """The per-epoch training record (``loss``, ``lr``, ``time``, ...) and events."""
        return self._state.history

    @property
    def n_layers(self) -> int:
        """Number of weight layers (``len(layer_sizes) - 1``)."""
        return len(self.layer_sizes) - 1

    @property
    def optimizer(self):
        """The model's current optimizer (a ``fastbp.optim`` object), or ``None``."""
        return self._state.optimizer

    @property
    def schedule(self):
        """The model's current schedule with its progress, or ``None``."""
        return self._state.schedule

    @property
    def optimizer_state(self) -> np.ndarray:
        """(rows, n_params) optimizer state buffer (rows: ``fastbp.kernels._updates``)."""
        return self._state.opt_state

    @property
    def optimizer_steps(self) -> int:
        """Steps taken by the current optimizer (Adam's ``t``); L-BFGS: iterations."""
        return self._state.steps

    # ---------------------------------------------------------------- training
    def fit(self, X, y, epochs: int = D.epochs, batch_size: int | None = D.batch_size,
            learning_rate: float = D.learning_rate, shuffle: bool = D.shuffle, *,
            optimizer=D.optimizer, schedule=D.schedule, l2: float = D.l2,
            clip_norm: float | None = D.clip_norm, validation_data=D.validation_data,
            validation_split: float = D.validation_split, early_stopping=D.early_stopping,
            callbacks=D.callbacks, verbose: bool = D.verbose, sample_weight=D.sample_weight,
            class_weight=D.class_weight, reset: bool = D.reset,
            on_divergence: str = D.on_divergence, n_threads: int | None = D.n_threads,
            ) -> History:
        """Train by minibatch backpropagation (or full-batch L-BFGS).

        The defaults are ``fastbp._training.plan.FIT_DEFAULTS`` (``D`` here), the values
        listed below.

        Training continues from the current weights and optimizer state. Every argument is
        checked before anything changes, and a call that raises leaves the model exactly as
        it was (but for ``KeyboardInterrupt`` and divergence, below).

        Parameters
        ----------
        X : (n, n_in) array_like
            Any real dtype, order or byte order, or a pandas DataFrame of real columns
            (mixed or nullable dtypes included; missing values are refused).
        y : array_like
            Targets; see ``Model`` for the shape each loss expects.
        epochs : int, default 1
            Passes over the data (L-BFGS: iterations).
        batch_size : int or None, default 32
            Rows per update; 1 is online learning, ``None`` the full batch. A batch size
            larger than the data is clamped; the last, partial batch of an epoch is used.
        learning_rate : float, default 0.01
            Base step size, ``>= 0``; the schedule scales it per epoch.
        shuffle : bool, default True
            Reshuffle the rows each epoch (seeded from ``seed``); else keep their order.
        optimizer : str or fastbp.optim.Optimizer, optional
            ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"lbfgs"``
            or an object such as ``fastbp.optim.SGD(momentum=0.9, nesterov=True)``. ``None``
            keeps the current one (plain SGD for a new model). Its state is kept while the
            kind stays the same, and reset when it changes.
        schedule : str or fastbp.schedules.Schedule, optional
            Per-epoch learning-rate schedule; ``None`` keeps the current one (constant for a
            new model). A schedule equal to the current one continues its progress.
        l2 : float, default 0
            L2 penalty ``l2/2 * sum W**2`` on weights (not biases), torch's
            ``weight_decay``. Reported losses are the data loss, without the penalty.
        clip_norm : float, optional
            Clip the global L2 norm of each step's gradient to this value.
        validation_data : (X_val, y_val), optional
        validation_split : float in [0, 1), default 0
            Hold out this fraction of the rows (a seeded random subset) for validation.
        early_stopping : fastbp.EarlyStopping, optional
        callbacks : sequence of callables ``f(epoch, logs) -> bool``
            Called after every epoch; returning ``True`` stops training.
        verbose : bool, default False
            Report progress per epoch (a tqdm bar on a terminal, a line per epoch when
            stderr is a file).
        sample_weight : (n,) array_like, optional
            Non-negative weight of each sample, rescaled to mean 1 over the training rows:
            each batch of ``m`` rows minimises ``sum_i w_i E_i / m``, an unbiased estimate
            of the weighted mean loss (which full-batch training and L-BFGS minimise).
        class_weight : dict or "balanced", optional
            Weight per class (multiplies ``sample_weight``); classification losses only.
        reset : bool, default False
            Re-initialise weights, optimizer, schedule, shuffling and history first.
        on_divergence : {"raise", "warn"}, default "raise"
            When the loss or the parameters become non-finite, training stops at once and
            the model goes back to the end of the last healthy epoch of this call (finite,
            not exploding) or to its state before the call; an event is appended to
            ``history.events`` and ``fastbp.DivergenceError`` is raised (or a
            ``fastbp.DivergenceWarning`` issued).
        n_threads : int, optional
            Numba threads for this call; results do not depend on it.

        Returns
        -------
        History
            ``model.history`` (keys ``loss``, ``lr``, ``time``, and ``accuracy``,
            ``val_loss``, ``val_accuracy`` where they apply).

        Notes
        -----
        Ctrl-C stops training between compiled calls of a fraction of a second: the model
        keeps every completed step, ``history`` gets an ``"interrupted"`` event (and with
        ``EarlyStopping(restore_best=True)`` the best weights), and the interrupt is
        re-raised.
        """
        plan = make_plan(
            self, X, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            shuffle=shuffle, optimizer=optimizer, schedule=schedule, l2=l2,
            clip_norm=clip_norm, validation_data=validation_data,
            validation_split=validation_split, early_stopping=early_stopping,
            callbacks=callbacks, verbose=verbose, sample_weight=sample_weight,
            class_weight=class_weight, reset=reset, on_divergence=on_divergence,
            n_threads=n_threads,
        )
        trainer = Trainer(self._net, self._state, plan)
        history = trainer.run()
        if isinstance(plan.optimizer, LBFGS):
            self.lbfgs_result_ = trainer.lbfgs_result
        return history

    def partial_fit(self, X, y, batch_size: int | None = D.batch_size,
                    learning_rate: float = D.learning_rate, shuffle: bool = D.shuffle, *,
                    optimizer=D.optimizer, schedule=D.schedule, l2: float = D.l2,
                    clip_norm: float | None = D.clip_norm, sample_weight=D.sample_weight,
                    class_weight=D.class_weight, callbacks=D.callbacks,
                    on_divergence: str = D.on_divergence,
                    n_threads: int | None = D.n_threads) -> History:
        """One pass over ``(X, y)``, keeping the weights and optimizer state.

        Same arguments as ``fit`` (``optimizer=None``/``schedule=None`` keep the current
        ones), for online and out-of-core training: successive calls with the same
        optimizer continue its momentum/moment estimates and step count.
        """
        return self.fit(
            X, y, 1, batch_size, learning_rate, shuffle, optimizer=optimizer,
            schedule=schedule, l2=l2, clip_norm=clip_norm, sample_weight=sample_weight,
            class_weight=class_weight, callbacks=callbacks, on_divergence=on_divergence,
            n_threads=n_threads,
        )

    # ---------------------------------------------------------------- inference
    def _inputs(self, X, *y):
        """``X`` (and the targets ``y``, when given) checked and converted."""
        X = check_X(X, self.dtype, int(self.layer_sizes[0]), accept_sparse=True)
        if not y:
            return X, None
        return X, check_targets(y[0], X.shape[0], self.loss, int(self.layer_sizes[-1]),
                                self.dtype)

    def predict(self, X, *, n_threads: int | None = None) -> np.ndarray:
        """Output-layer activations.

        Parameters
        ----------
        X : (n, n_in) array_like
            Any real dtype, order or byte order, or a pandas DataFrame of real columns
            (converted once to the model dtype).
        n_threads : int, optional
            Numba threads for this call; the previous count is restored afterwards.

        Returns
        -------
        (n, n_out) array of the model's dtype
            Class probabilities for cross-entropy, per-label probabilities for binary
            cross-entropy, regression outputs for squared error.
        """
        X, _ = self._inputs(X)
        net = self._net
        with net.lock, kernel_threads(n_threads):
            out = np.empty((X.shape[0], int(self.layer_sizes[-1])), dtype=self.dtype)
            passes.predict_all(net, X, out)
        return out

    def loss_value(self, X, y, *, n_threads: int | None = None) -> float:
        """Mean loss over ``(X, y)`` (float), with the current parameters."""
        X, T = self._inputs(X, y)
        net = self._net
        with net.lock, kernel_threads(n_threads):
            return float(passes.mean_loss(net, X, T))

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
        X, T = self._inputs(X, y)
        SW = (np.zeros(0, self.dtype) if sample_weight is None
              else check_sample_weight(sample_weight, X.shape[0], self.dtype))
        l2 = Real(0.0)(l2, "l2")
        net = self._net
        with net.lock, kernel_threads(n_threads):
            value = self._weighted_loss(X, T, SW, net.grads)
            if l2:
                value += add_l2(net.params, net.grads, l2, net.sizes, net.w_off)
            return float(value), net.grads.copy()

    def _weighted_loss(self, X, T, SW, grads) -> float:
        return passes.loss_and_gradient(self._net, X, T, SW, grads)

    def evaluate(self, X, y, sample_weight=None, *, n_threads: int | None = None) -> dict:
        """Loss (and accuracy for classification losses) of the current weights on ``(X, y)``.

        Returns
        -------
        dict
            ``{"loss": mean loss}`` (weighted mean with ``sample_weight``; no L2 penalty, no
            dropout), plus ``"accuracy"`` (fraction of rows whose argmax / 0.5-thresholded
            labels match) for ``cross_entropy`` and ``binary_cross_entropy``.
        """
        X, T = self._inputs(X, y)
        SW = (None if sample_weight is None
              else check_sample_weight(sample_weight, X.shape[0], self.dtype))
        net = self._net
        with net.lock, kernel_threads(n_threads):
            value, acc = passes.loss_and_accuracy(net, X, T, SW)
        out = {"loss": value}
        if self.loss in ("cross_entropy", "binary_cross_entropy"):
            out["accuracy"] = acc
        return out

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the model to ``path`` (an ``.npz`` file; format in ``fastbp._io``).

        The file holds the flat parameters, the optimizer state, the history (a float64
        array, 8 bytes per value) and a JSON header (architecture, dtype, seed, optimizer
        and schedule with their progress, shuffling state).

        Parameters
        ----------
        path : str, bytes or os.PathLike
            Where to write. It behaves as ``open(path, "w")`` would: a symbolic link is
            followed and its target replaced (the link stays), an existing file that this
            user may not write raises ``PermissionError``, and an existing file keeps its
            permission bits.

        Notes
        -----
        Writing is atomic: the model goes to a temporary file
        ``.NAME.fastbp-tmp-XXXXXXXXXXXX`` in the target's directory, which is fsynced and
        then renamed over the target, so a crash never leaves a partial file and never
        destroys an existing one. Any exception (``KeyboardInterrupt`` included) removes the
        temporary file. One left by a process killed outright (``SIGKILL``, power loss) is
        never read, and the next ``save`` to the same path removes it once it is a minute
        old (on POSIX systems; elsewhere delete it by hand).
        """
        with self._net.lock:
            _io.save_model(self, path)

    @classmethod
    def load(cls, path) -> Model:
        """Read a model written by ``save`` (``allow_pickle=False``: loading runs no code).

        The round trip is bit-exact, and training resumes exactly where it stopped. Files
        of the earlier format version (history inside the JSON header) load too.

        Parameters
        ----------
        path : str, bytes or os.PathLike

        Returns
        -------
        Model

        Raises
        ------
        fastbp.ModelFileError
            The file is not a valid fastbp model file (truncated, corrupted, edited,
            re-packed with compression, of an unsupported version, or something else). It is
            checked before anything sized by it is allocated, so a small file cannot make
            ``load`` allocate much more memory than its own size.
        MemoryError
            Memory ran short while loading a file that passed those checks (the file may be
            intact).
        OSError
            The file is missing or unreadable.
        """
        return _io.load_model(cls, path)

    def __reduce__(self):
        # a snapshot at a step boundary, even while another thread trains this model
        with self._net.boundary:
            header, arrays = _io.model_state(self)
            arrays = {k: v.copy() for k, v in arrays.items()}
        return _io.build_model, (type(self), header, arrays)

    def __repr__(self) -> str:
        return (
            f"Model({list(map(int, self.layer_sizes))}, activation={self.activations}, "
            f"loss={self.loss!r}, output={self.output!r}, dtype={self.dtype.name!r}, "
            f"seed={self.seed}" + (f", dropout={self.dropout}" if any(self.dropout) else "")
            + ")"
        )

    # ---------------------------------------------------------------- interoperability
    def to_torch(self):
        """The model as a ``torch.nn.Sequential`` (``Linear`` and activation modules).

        Its output equals ``predict`` up to floating-point rounding; see
        ``fastbp.interop.to_torch``. Needs PyTorch (not a dependency of fastbp).

        Returns
        -------
        torch.nn.Sequential
            In the model's dtype, in evaluation mode.
        """
        from . import interop

        return interop.to_torch(self)

    @classmethod
    def from_torch(cls, module, loss: str, *, seed: int | None = None) -> Model:
        """A model with the layers and weights of a ``torch.nn.Sequential``.

        See ``fastbp.interop.from_torch`` for the modules accepted.

        Parameters
        ----------
        module : torch.nn.Sequential
            ``Linear`` layers and activation modules, float32 or float64.
        loss : {"squared_error", "cross_entropy", "binary_cross_entropy", "poisson"}
            The loss to train on; a final ``Softmax`` / ``Sigmoid`` must match it.
        seed : int, optional

        Returns
        -------
        Model
            Predicting what ``module`` predicts (softmax / logistic of its logits where the
            loss implies it), ready to train on.
        """
        from . import interop

        return interop.from_torch(module, loss, seed=seed, cls=cls)

    def to_onnx(self, path=None, *, opset: int | None = None, input_name: str = "X",
                output_name: str = "Y"):
        """Export the model as an ONNX graph (``Gemm`` and activation nodes).

        See ``fastbp.interop.to_onnx``. Needs the ``onnx`` package (``fastbp[onnx]``).

        Parameters
        ----------
        path : str, bytes or os.PathLike, optional
            Where to write the ``.onnx`` file, atomically (as ``save``); ``None`` writes
            nothing.
        opset : int, optional
            ONNX opset, default ``fastbp.interop.DEFAULT_OPSET`` (17).
        input_name, output_name : str, default "X", "Y"
            Names of the input ``(batch, n_in)`` and output ``(batch, n_out)``.

        Returns
        -------
        onnx.ModelProto
            Its output under onnxruntime equals ``predict`` up to rounding.
        """
        from . import interop

        return interop.to_onnx(self, path,
                               opset=interop.DEFAULT_OPSET if opset is None else opset,
                               input_name=input_name, output_name=output_name)

    @classmethod
    def from_sklearn(cls, estimator, *, seed: int | None = None) -> Model:
        """A model with the architecture and weights of a fitted scikit-learn MLP.

        See ``fastbp.interop.from_sklearn``.

        Parameters
        ----------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            Fitted.
        seed : int, optional

        Returns
        -------
        Model
            ``predict`` equals the estimator's ``predict_proba`` (multi-class),
            ``predict_proba(X)[:, 1:]`` (binary: one logistic unit, binary cross-entropy)
            or ``predict`` (regression, as an ``(n, n_outputs)`` array).
        """
        from . import interop

        return interop.from_sklearn(estimator, seed=seed, cls=cls)

    # ---------------------------------------------------------------- kernel arguments
    def kernel_args(self):
        """The model's buffers and layout, as the compiled kernels in ``fastbp.kernels`` take them.

        Returns
        -------
        fastbp.kernels.KernelArgs
            Named tuple ``(params, grads, sizes, w_off, b_off, act_codes, loss_code,
            out_code, drop_rates, drop_seed)``. ``params`` and ``grads`` are the model's own
            buffers, not copies: kernels that update ``params`` change this model. The tuple
            can be passed to an ``@njit`` function as it is.
        """
        return self._net.args()

    def allocate_workspace(self, batch_size: int, sparse: bool = False):
        """Fresh activation/delta workspace for batches of up to ``batch_size`` rows.

        ``sparse=True``: for the CSR kernels (``train_steps_csr``, ``predict_csr``, ...),
        without an input block (its size does not depend on the input width).

        Returns
        -------
        fastbp.kernels.WorkspaceArrays
            Named tuple ``(act, delta, a_off, z_out, t_buf, raw, w_buf, capacity)`` in the
            model's dtype, owned by the caller (the model keeps no reference to it).
        """
        from .kernels import WorkspaceArrays

        cap = Int()(batch_size, "batch_size")
        sizes = np.array(self.layer_sizes, dtype=np.int64)
        if Bool()(sparse, "sparse"):
            sizes[0] = 0
        ws = Workspace(sizes, cap, self.dtype)
        return WorkspaceArrays(ws.act, ws.delta, ws.a_off, ws.z_out, ws.t_buf, ws.raw,
                               ws.w_buf, cap)

    def optimizer_args(self, optimizer=None):
        """The model's optimizer as the step kernels in ``fastbp.kernels`` take it.

        Parameters
        ----------
        optimizer : str or fastbp.optim.Optimizer, optional
            Make this the model's optimizer first (as ``fit(optimizer=...)`` would: the
            state is kept when the kind is unchanged, else started afresh). Default: the
            current optimizer, or plain SGD if there is none yet.

        Returns
        -------
        fastbp.kernels.OptimizerArgs
            Named tuple ``(kind, hyper, state, counters)``: the optimizer code, its (4,)
            float64 hyperparameters, the model's own ``(rows, n_params)`` state buffer and
            ``(1,)`` int64 step counter. Kernels that update them advance the model's
            optimizer; after ``fit`` with another kind of optimizer or ``reset=True``, call
            ``optimizer_args`` again.
        """
        from .kernels import OptimizerArgs

        state = self._state
        opt = get_optimizer(optimizer) if optimizer is not None else (
            state.optimizer or SGD())
        if isinstance(opt, LBFGS):
            raise ValueError(
                "L-BFGS has no per-step kernel (it runs through SciPy); use "
                "fastbp.kernels.loss_and_gradient with scipy.optimize.minimize instead, or "
                "choose a step optimizer such as 'sgd' or 'adam'."
            )
        with self._net.lock:
            state.adopt_optimizer(opt)
        return OptimizerArgs(int(opt.kind), state.optimizer.hyper(), state.opt_state,
                             state.counters)
