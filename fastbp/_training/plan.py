"""``FitPlan``: the arguments of one training call, checked and converted, changing nothing.

``make_plan`` checks what ``Model.fit`` was given (every argument, before anything
changes) and prepares the arrays; the scikit-learn estimators and ``fastbp.distributed``
build their plans from the same pieces. The plan is frozen: the training engine
(``fastbp._training.loop``) only reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._sparse import CSRRows
from .._validation import (
    Bool,
    Choice,
    Int,
    Real,
    check_class_weight,
    check_params,
    check_sample_weight,
    check_targets,
    check_X,
    kernel_array,
    rescale_sample_weight,
)
from ..callbacks import EarlyStopping
from ..optim import LBFGS, SGD, Optimizer, get_optimizer
from ..schedules import Constant, Schedule, get_schedule
from .state import SEED_VALIDATION_SPLIT, seed_stream

#: ``Model.fit``'s scalar arguments
FIT_PARAMS = {
    "epochs": Int(),
    "batch_size": Int(none=True),
    "learning_rate": Real(0.0),
    "shuffle": Bool(),
    "l2": Real(0.0),
    "clip_norm": Real(0.0, lo_open=True, none=True),
    "validation_split": Real(0.0, 1.0, hi_open=True),
    "verbose": Bool(ints=True),
    "reset": Bool(),
    "on_divergence": Choice(("raise", "warn")),
}


@dataclass(frozen=True, eq=False)
class FitPlan:
    """One training call, checked.

    Attributes
    ----------
    X : (n, n_in) array or fastbp._sparse.CSRRows, T : (n, n_out) array
        Training rows (dense, or CSR arrays) and targets in the model's dtype, C-contiguous.
    SW : (n,) array
        Per-row weights (empty: unit weights); with ``weight_norm="rows"`` of mean 1.
    epochs, batch_size : int
    lr : float
        Base learning rate (the schedule scales it per epoch).
    shuffle : bool
    optimizer : fastbp.optim.Optimizer
    schedule : fastbp.schedules.Schedule
    l2 : float
        Coupled L2 coefficient on weights (``weight_norm="weights"``: divided per batch by
        the batch's weight sum, scikit-learn's ``alpha / n_batch``).
    clip_norm : float
        Largest global gradient norm per step (0: no clipping).
    Xv, Tv : arrays or None
        Validation data.
    stopping : object or None
        Stopping rule: ``begin(state)``, ``update(epoch, logs) -> (improved, stop)`` and
        ``restore_best`` (``fastbp.EarlyStopping``, or the estimators' rule).
    callbacks : tuple of callables ``f(epoch, logs) -> bool``
    verbose : bool
    reset : bool
        Start from the initial weights with a fresh training state.
    reset_optimizer : bool
        Start the optimizer afresh (zero state, step 0) even if its kind is unchanged.
    on_divergence : {"raise", "warn"}
    divergence_restore : {"healthy", "start", "best"}
        The state a divergence goes back to: the end of the last healthy epoch of the call
        if there was one, else the start of the call (``Model``); or always the start of
        the call (the estimators, whose own attributes a failed call rolls back); or, with
        ``"best"`` (the estimators with early stopping, as scikit-learn), the parameters of
        the best validation epoch so far, ending training without an error, and the start of
        the call when there is none yet.
    n_threads : int or None
    weight_norm : {"rows", "weights"}
        What a batch's loss is averaged over: its rows (``Model``: ``sum w_i E_i / m``) or
        its weight sum (scikit-learn: ``sum w_i E_i / sum w_i``, and the L2 term scaled
        alike).
    order : callable or None
        ``order(epoch) -> (n,) int64`` row order of an epoch; default: the model's
        shuffling generator (or the identity without shuffling).
    validate : callable or None
        ``validate() -> dict`` of validation metrics at the end of an epoch; default:
        ``val_loss`` and ``val_accuracy`` on ``Xv, Tv``.
    n_rows : int or None
        Training rows over all processes (``fastbp.distributed``); default ``len(X)``.
    lbfgs_chunk : int or None
        Rows per chunk of the L-BFGS objective (default: the network's chunk size).
    lbfgs_accuracy : bool
        Record the training accuracy of each L-BFGS iteration (one more pass over X).
    lbfgs_options : dict
        Extra options for ``scipy.optimize.minimize`` (estimators: scikit-learn's).
    check_progress : bool
        Warn once (``fastbp.ConvergenceWarning``) when classification training makes no
        progress (``fastbp._training.stall``); ``Model`` sets it, the estimators do not
        (scikit-learn has no such warning).
    """

    X: np.ndarray
    T: np.ndarray
    SW: np.ndarray
    epochs: int
    batch_size: int
    lr: float
    shuffle: bool
    optimizer: Optimizer
    schedule: Schedule
    l2: float = 0.0
    clip_norm: float = 0.0
    Xv: np.ndarray | None = None
    Tv: np.ndarray | None = None
    stopping: object | None = None
    callbacks: tuple = ()
    verbose: bool = False
    reset: bool = False
    reset_optimizer: bool = False
    on_divergence: str = "raise"
    divergence_restore: str = "healthy"
    n_threads: int | None = None
    weight_norm: str = "rows"
    order: Callable | None = None
    validate: Callable | None = None
    n_rows: int | None = None
    lbfgs_chunk: int | None = None
    lbfgs_accuracy: bool = True
    lbfgs_options: dict = field(default_factory=dict)
    check_progress: bool = False

    def __post_init__(self):
        # whoever built the plan, its dense arrays reach the kernels in the form they are
        # compiled for (read-only arrays as writable aliases, see ``kernel_array``)
        for name in ("X", "T", "SW", "Xv", "Tv"):
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, name, kernel_array(value))


def check_callbacks(callbacks) -> tuple:
    """``None``, one callable or an iterable of callables ``f(epoch, logs)``."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a list of callables; got {callbacks!r}.")
    callbacks = tuple(callbacks)
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] must be callable f(epoch, logs); got {cb!r}.")
    return callbacks


def make_plan(model, X, y, *, epochs=1, batch_size=32, learning_rate=0.01, shuffle=True,
              optimizer=None, schedule=None, l2=0.0, clip_norm=None, validation_data=None,
              validation_split=0.0, early_stopping=None, callbacks=(), verbose=False,
              sample_weight=None, class_weight=None, reset=False, on_divergence="raise",
              n_threads=None) -> FitPlan:
    """Check ``Model.fit``'s arguments against ``model`` and prepare the arrays.

    Changes nothing: the model, its state and the inputs are only read."""
    from .._validation import check_n_threads

    args = check_params(
        {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
         "shuffle": shuffle, "l2": l2, "clip_norm": clip_norm,
         "validation_split": validation_split, "verbose": verbose, "reset": reset,
         "on_divergence": on_divergence},
        FIT_PARAMS,
    )
    reset = args["reset"]
    if not (reset or np.isfinite(model.params).all()):
        raise ValueError(
            "the model's parameters contain NaN or infinity (set through model.params or "
            "model.weights); assign finite values, or pass reset=True to start over."
        )
    n_in, n_out = int(model.layer_sizes[0]), int(model.layer_sizes[-1])
    X = check_X(X, model.dtype, n_in, accept_sparse=True)
    T = check_targets(y, X.shape[0], model.loss, n_out, model.dtype)
    state = model.state
    opt = get_optimizer(optimizer) if optimizer is not None else (
        SGD() if reset or state.optimizer is None else state.optimizer)
    sched = get_schedule(schedule) if schedule is not None else (
        Constant() if reset or state.schedule is None else state.schedule)
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            "early_stopping must be None or a fastbp.EarlyStopping(patience=..., ...); got "
            f"{type(early_stopping).__name__} {early_stopping!r}."
        )
    callbacks = check_callbacks(callbacks)
    n_threads = check_n_threads(n_threads)
    classification = model.loss in ("cross_entropy", "binary_cross_entropy")

    n = X.shape[0]
    sw = None
    if sample_weight is not None:
        sw = check_sample_weight(sample_weight, n, np.float64)
    if class_weight is not None:
        cw = check_class_weight(class_weight, T, model.loss)
        sw = cw if sw is None else sw * cw
    if sw is not None and not (sw > 0).any():
        raise ValueError("sample_weight * class_weight is zero for every sample.")

    validation_split = args["validation_split"]
    Xv = Tv = None
    if validation_data is not None:
        if validation_split > 0:
            raise ValueError("pass validation_data or validation_split, not both.")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError(
                "validation_data must be a pair (X_val, y_val); got "
                f"{type(validation_data).__name__}."
            )
        Xv = check_X(validation_data[0], model.dtype, n_in, "validation_data[0]",
                     accept_sparse=True)
        Tv = check_targets(validation_data[1], Xv.shape[0], model.loss, n_out, model.dtype,
                           "validation_data[1]")
    elif validation_split > 0:
        n_val = int(round(validation_split * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"validation_split={validation_split} of {n} samples leaves "
                f"{n_val} for validation and {n - n_val} for training; both need >= 1."
            )
        perm = np.random.Generator(
            np.random.PCG64(seed_stream(model.seed, SEED_VALIDATION_SPLIT))).permutation(n)
        val_rows = np.sort(perm[:n_val])
        keep = np.ones(n, dtype=bool)
        keep[val_rows] = False
        if isinstance(X, CSRRows):
            Xv, X = X.take(val_rows), X.take(np.flatnonzero(keep))
        else:
            Xv, X = X[val_rows], np.ascontiguousarray(X[keep])
        Tv, T = T[val_rows], np.ascontiguousarray(T[keep])
        if sw is not None:
            sw = sw[keep]
            if not (sw > 0).any():
                raise ValueError("every training sample left after validation_split has "
                                 "weight 0.")
        n = X.shape[0]
    if early_stopping is not None:
        if early_stopping.monitor.startswith("val_") and Xv is None:
            raise ValueError(
                f"early_stopping monitors {early_stopping.monitor!r} but there is no "
                "validation data; pass validation_data or validation_split, or use "
                "EarlyStopping(monitor='loss')."
            )
        if early_stopping.monitor.endswith("accuracy") and not classification:
            raise ValueError(
                f"early_stopping monitors {early_stopping.monitor!r} but loss="
                f"{model.loss!r} is not a classification loss; monitor a loss instead."
            )
    bs = args["batch_size"]
    batch_size = n if bs is None else min(bs, n)
    if isinstance(opt, LBFGS):
        check_lbfgs(model.dropout, args["clip_norm"], sched)
    if sw is not None:  # mean 1 over the training rows: batches estimate the weighted mean
        sw = rescale_sample_weight(sw, model.dtype)
    return FitPlan(
        X=X, T=T, SW=np.zeros(0, model.dtype) if sw is None else sw.astype(model.dtype),
        Xv=Xv, Tv=Tv, epochs=args["epochs"], batch_size=batch_size,
        lr=args["learning_rate"], shuffle=args["shuffle"], optimizer=opt, schedule=sched,
        l2=args["l2"], clip_norm=args["clip_norm"] or 0.0, stopping=early_stopping,
        callbacks=callbacks, verbose=args["verbose"], reset=reset,
        on_divergence=args["on_divergence"], n_threads=n_threads, check_progress=True,
    )


def check_lbfgs(dropout, clip_norm, schedule) -> None:
    """What L-BFGS (a deterministic full-batch method, through SciPy) cannot take."""
    if any(dropout):
        raise ValueError("optimizer='lbfgs' needs a deterministic objective; build "
                         "the model with dropout=0 or use a stochastic optimizer.")
    if clip_norm is not None:
        raise ValueError("clip_norm is not supported with optimizer='lbfgs'.")
    if not isinstance(schedule, Constant):
        raise ValueError(
            f"optimizer='lbfgs' has no learning rate to schedule; got schedule={schedule!r}."
        )
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        raise ImportError("optimizer='lbfgs' needs SciPy: pip install scipy") from None
