"""``FitPlan``: the arguments of one training call, checked and converted, changing nothing.

``FIT_OPTIONS`` is the one table of ``fit``'s options: each name with its default and its
check. ``Model.fit`` and ``fastbp.distributed.fit`` take their defaults from it
(``FIT_DEFAULTS``) and build their plans through it: ``check_fit`` checks every option and
array before anything changes, ``size_plan`` clamps the batch size to the rows and rescales
the sample weights (over every process's rows for ``fastbp.distributed``), and
``make_plan`` is the two for one process. The scikit-learn estimators have scikit-learn's
options and build their ``FitPlan`` themselves. The plan is frozen: the training engine
(``fastbp._training.loop``) only reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from .._validation.arrays import (
    check_class_weight,
    check_sample_weight,
    check_targets,
    check_X,
    kernel_array,
    rescale_sample_weight,
)
from .._validation.params import Bool, Choice, Int, Real, check_n_threads
from ..callbacks import EarlyStopping, ModelCheckpoint
from ..kernels._layout import CSRRows
from ..optim import LBFGS, SGD, Optimizer, get_optimizer
from ..schedules import Constant, Schedule, get_schedule
from .state import SEED_VALIDATION_SPLIT, seed_stream


def check_callbacks(callbacks, name: str = "callbacks") -> tuple:
    """``None``, one callable or an iterable of callables ``f(epoch, logs)``."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"{name} must be a list of callables; got {callbacks!r}.")
    callbacks = tuple(callbacks)
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"{name}[{i}] must be callable f(epoch, logs); got {cb!r}.")
    return callbacks


def _check_early_stopping(value, name: str):
    if value is not None and not isinstance(value, EarlyStopping):
        raise TypeError(
            f"{name} must be None or a fastbp.EarlyStopping(patience=..., ...); got "
            f"{type(value).__name__} {value!r}."
        )
    return value


class Option(NamedTuple):
    """One of ``fit``'s options: its default and its check ``check(value, name) ->
    converted value`` (``None``: checked against the model and the data by ``check_fit``)."""

    default: object
    check: Callable | None


#: ``fit``'s options (``Model.fit``, ``Model.partial_fit``, ``fastbp.distributed.fit``)
FIT_OPTIONS = {
    "epochs": Option(1, Int()),
    "batch_size": Option(32, Int(none=True)),
    "learning_rate": Option(0.01, Real(0.0)),
    "shuffle": Option(True, Bool()),
    "optimizer": Option(None, lambda v, name: None if v is None else get_optimizer(v)),
    "schedule": Option(None, lambda v, name: None if v is None else get_schedule(v)),
    "l2": Option(0.0, Real(0.0)),
    "clip_norm": Option(None, Real(0.0, lo_open=True, none=True)),
    "validation_data": Option(None, None),
    "validation_split": Option(0.0, Real(0.0, 1.0, hi_open=True)),
    "early_stopping": Option(None, _check_early_stopping),
    "callbacks": Option((), check_callbacks),
    "verbose": Option(False, Bool(ints=True)),
    "sample_weight": Option(None, None),
    "class_weight": Option(None, None),
    "reset": Option(False, Bool()),
    "on_divergence": Option("raise", Choice(("raise", "warn"))),
    "n_threads": Option(None, lambda v, name: check_n_threads(v)),
}

#: the defaults of ``FIT_OPTIONS`` as attributes, for the front-ends' signatures
FIT_DEFAULTS = SimpleNamespace(**{name: opt.default for name, opt in FIT_OPTIONS.items()})


@dataclass(frozen=True, eq=False)
class FitPlan:
    """One training call, checked.

    Attributes
    ----------
    X : (n, n_in) array or fastbp.kernels._layout.CSRRows, T : (n, n_out) array
        Training rows (dense, or CSR arrays) and targets in the model's dtype, C-contiguous.
    SW : (n,) array
        Per-row weights (empty: unit weights); with ``weight_norm="rows"`` of mean 1 over
        the training rows (of every process).
    epochs, batch_size : int
        (A plan from ``check_fit``, not yet sized, has the requested ``batch_size``, ``None``
        for all rows, and ``SW`` as checked: float64, not rescaled.)
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
        Start the optimizer afresh (zero state, step 0) even if its kind is unchanged, with
        the plan's schedule at the progress it holds (the estimators: a new scikit-learn
        optimizer, whose learning rate starts anew).
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
        Training rows over all processes (``size_plan``); default ``len(X)``.
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


def check_fit(model, X, y, **options) -> FitPlan:
    """Check ``fit``'s options (``FIT_OPTIONS``; the others take their defaults) and arrays
    against ``model``, and prepare the arrays (the validation split included).

    Returns a plan not yet sized (``size_plan``). Changes nothing: the model, its state and
    the inputs are only read."""
    unknown = sorted(set(options) - set(FIT_OPTIONS))
    if unknown:
        raise TypeError(f"unknown fit options {unknown}; fit takes {list(FIT_OPTIONS)}.")
    args = {}
    for name, opt in FIT_OPTIONS.items():
        value = options.get(name, opt.default)
        args[name] = value if opt.check is None else opt.check(value, name)
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
    opt, sched = args["optimizer"], args["schedule"]
    if opt is None:  # keep the current one
        opt = SGD() if reset or state.optimizer is None else state.optimizer
    if sched is None:
        sched = Constant() if reset or state.schedule is None else state.schedule
    early_stopping = args["early_stopping"]

    n = X.shape[0]
    sw = None
    if args["sample_weight"] is not None:
        sw = check_sample_weight(args["sample_weight"], n, np.float64)
    if args["class_weight"] is not None:
        cw = check_class_weight(args["class_weight"], T, model.loss)
        sw = cw if sw is None else sw * cw
    if sw is not None and not (sw > 0).any():
        raise ValueError("sample_weight * class_weight is zero for every sample.")

    validation_data, validation_split = args["validation_data"], args["validation_split"]
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
    if early_stopping is not None:
        check_monitor("early_stopping", early_stopping.monitor, Xv is not None, model.loss,
                      "EarlyStopping(monitor='loss')")
    callbacks = bind_checkpoints(model, args["callbacks"], Xv is not None)
    if isinstance(opt, LBFGS):
        check_lbfgs(model.dropout, args["clip_norm"], sched)
    return FitPlan(
        X=X, T=T, SW=np.zeros(0) if sw is None else sw, Xv=Xv, Tv=Tv,
        epochs=args["epochs"], batch_size=args["batch_size"], lr=args["learning_rate"],
        shuffle=args["shuffle"], optimizer=opt, schedule=sched, l2=args["l2"],
        clip_norm=args["clip_norm"] or 0.0, stopping=early_stopping,
        callbacks=callbacks, verbose=args["verbose"], reset=reset,
        on_divergence=args["on_divergence"], n_threads=args["n_threads"],
        check_progress=True,
    )


def check_monitor(what: str, monitor: str, validation: bool, loss: str, instead: str) -> None:
    """A monitored metric (``EarlyStopping``, ``ModelCheckpoint``) the call will record."""
    if monitor.startswith("val_") and not validation:
        raise ValueError(
            f"{what} monitors {monitor!r} but there is no validation data; pass "
            f"validation_data or validation_split, or use {instead}."
        )
    if monitor.endswith("accuracy") and loss not in ("cross_entropy", "binary_cross_entropy"):
        raise ValueError(
            f"{what} monitors {monitor!r} but loss={loss!r} is not a classification loss; "
            "monitor a loss instead."
        )


def bind_checkpoints(model, callbacks: tuple, validation: bool) -> tuple:
    """``callbacks`` with each ``ModelCheckpoint`` checked (its monitor, file-name fields
    and folder) and bound to ``model`` (the checkpoint itself is not changed)."""
    if not any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        return callbacks
    metrics = {"loss", "lr", "time"}
    if model.loss != "squared_error":
        metrics.add("accuracy")
    if validation:
        metrics.add("val_loss")
        if model.loss in ("cross_entropy", "binary_cross_entropy"):
            metrics.add("val_accuracy")
    out = []
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint):
            if cb.save_best_only:
                check_monitor("ModelCheckpoint(save_best_only=True)", cb.monitor, validation,
                              model.loss, "ModelCheckpoint(..., monitor='loss')")
            cb.check(metrics)
            cb = cb.bound(model)
        out.append(cb)
    return tuple(out)


def _this_process(value, op):
    return value


def size_plan(plan: FitPlan, across: Callable = _this_process) -> FitPlan:
    """The plan ``check_fit`` made, sized: the batch size clamped to the training rows
    (``None``: all of them) and the sample weights rescaled to mean 1 over them, in the
    model's dtype (``rescale_sample_weight``).

    ``across(value, op)`` combines a number over every process that trains together
    (``op``: ``"sum"`` or ``"max"``; ``fastbp.distributed``: an ``allreduce``): the rows are
    then those of every process, and the batch is clamped to the largest shard. Every
    process must call it, with weights on every process or on none."""
    n = plan.X.shape[0]
    n_rows, largest = int(across(n, "sum")), int(across(n, "max"))
    dtype = plan.T.dtype
    SW = (rescale_sample_weight(plan.SW, dtype, across) if plan.SW.size
          else np.zeros(0, dtype))
    bs = plan.batch_size
    return dataclasses.replace(plan, SW=SW, n_rows=n_rows,
                               batch_size=largest if bs is None else min(bs, largest))


def make_plan(model, X, y, **options) -> FitPlan:
    """``Model.fit``'s plan: ``check_fit`` then ``size_plan`` over this process's rows.

    Changes nothing: the model, its state and the inputs are only read."""
    return size_plan(check_fit(model, X, y, **options))


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
