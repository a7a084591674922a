"""Training-loop callbacks: early stopping, checkpoints.

Any callable ``callback(epoch, logs)`` can be passed to ``fit(callbacks=[...])``: it is
called after every epoch with the epoch number (0-based, counting all epochs the model
has trained) and that epoch's metrics (``logs["loss"]``, ``logs["lr"]``, ``logs["time"]``,
``logs["val_loss"]``, ...); returning ``True`` stops training after that epoch.
"""

from __future__ import annotations

import math
import os
import string
import weakref

from ._validation.params import Bool, Choice, Int, Real, check_params, check_path

__all__ = ["EarlyStopping", "ModelCheckpoint", "StoppingRule"]

#: metrics that can be monitored, and whether larger is better
MONITORS = {"loss": False, "val_loss": False, "accuracy": True, "val_accuracy": True}


class StoppingRule:
    """What the training loop asks a stopping rule (``fit(early_stopping=...)``).

    ``begin(state)`` at the start of each ``fit`` call; ``update(epoch, logs)`` after each
    epoch, returning ``(improved, stop)``: whether this epoch is the best so far (its
    parameters are kept when ``restore_best``) and whether to stop. The learning rate is
    the schedule's (``state.schedule``), which a rule may act on.
    """

    restore_best = False

    def begin(self, state) -> None:
        pass

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        raise NotImplementedError


class _BestValue:
    """The best value so far of a monitored metric (``self.monitor``, ``self.min_delta``):
    what ``EarlyStopping`` and ``ModelCheckpoint`` both track."""

    @property
    def higher_is_better(self) -> bool:
        return MONITORS[self.monitor]

    def forget_best(self) -> None:
        self.best = -math.inf if self.higher_is_better else math.inf
        self.best_epoch = None

    def record_best(self, epoch: int, value: float) -> bool:
        """Whether ``value`` improves on the best by more than ``min_delta`` (the first
        finite value always does; NaN never); if it does, it becomes the best."""
        if self.higher_is_better:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved or self.best_epoch is None and math.isfinite(value):
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class EarlyStopping(_BestValue, StoppingRule):
    """Stop when a monitored metric stops improving, and optionally restore the best weights.

    An epoch improves on the best so far when ``metric < best - min_delta`` (losses) or
    ``metric > best + min_delta`` (accuracies). Training stops once ``patience`` epochs in
    a row have not improved. With ``restore_best``, the parameters of the best epoch are
    put back when ``fit`` returns (whether or not it stopped early); the optimizer state is
    not rewound. State is reset at the start of every ``fit`` call.

    Parameters
    ----------
    patience : int >= 1, default 10
    min_delta : float >= 0, default 0
    restore_best : bool, default True
    monitor : {"val_loss", "loss", "val_accuracy", "accuracy"}, default "val_loss"
        ``val_*`` needs ``validation_data`` or ``validation_split``; accuracies need a
        classification loss.

    Attributes
    ----------
    best : float, the best monitored value (after ``fit``)
    best_epoch : int, the (model-wide) epoch at which it was reached
    stopped_epoch : int or None, the epoch after which training stopped early
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, restore_best: bool = True,
                 monitor: str = "val_loss"):
        checked = check_params(
            {"patience": patience, "min_delta": min_delta, "restore_best": restore_best,
             "monitor": monitor},
            {"patience": Int(), "min_delta": Real(0.0), "restore_best": Bool(),
             "monitor": Choice(MONITORS)},
            prefix="EarlyStopping ",
        )
        self.__dict__.update(checked)
        self.reset()

    def reset(self) -> None:
        self.forget_best()
        self.stopped_epoch = None
        self.wait = 0

    def begin(self, state) -> None:
        """Called by the training loop at the start of every ``fit`` call: forget the
        previous call's best value and patience count."""
        self.reset()

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        """Record one epoch; returns ``(improved, stop)``."""
        if self.record_best(epoch, logs[self.monitor]):
            self.wait = 0
            return True, False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return False, True
        return False, False

    def get_config(self) -> dict:
        return {"patience": self.patience, "min_delta": self.min_delta,
                "restore_best": self.restore_best, "monitor": self.monitor}


class ModelCheckpoint(_BestValue):
    """Save the model while it trains: after every epoch, or when the monitored metric
    improves (Keras's ``ModelCheckpoint``).

    Pass it in ``callbacks`` to ``Model.fit`` or ``partial_fit`` (or rank 0's
    ``fastbp.distributed.fit``). Each save is ``model.save(path)``: atomic (a temporary
    file in the target's directory, fsynced, then renamed over the target), so a crash or
    Ctrl-C while saving leaves the previous checkpoint intact, never a partial file; a
    symbolic link is followed, an existing file keeps its permission bits, and a file this
    user may not write is refused (``fastbp._io`` has the details). The file is a complete
    model, optimizer state, schedule, shuffling state and history included, so
    ``Model.load(path)`` resumes training exactly where the checkpoint was taken: the
    rest of the run is bit for bit the same as if it had not stopped.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save. It may hold ``str.format`` fields: ``{epoch}``, the number of epochs
        the model has trained (1 after its first, as Keras's file names count), and the
        epoch's metrics (``{loss}``, ``{val_loss}``, ``{accuracy}``, ``{val_accuracy}``,
        ``{lr}``, ``{time}``), e.g. ``"ckpt-{epoch:03d}-{val_loss:.4f}.npz"``. Its folder
        must exist and be writable, and its fields must be metrics the ``fit`` call records:
        both are checked before training starts.
    monitor : {"val_loss", "loss", "val_accuracy", "accuracy"}, default "val_loss"
        The metric that decides what "best" is (lower losses, higher accuracies).
    save_best_only : bool, default False
        False: save after every epoch. True: save only after an epoch whose monitored value
        improves on the best so far (``val_*`` monitors need validation data; accuracies a
        classification loss; checked before training starts).
    min_delta : float >= 0, default 0
        An improvement must exceed this (as ``EarlyStopping``'s).

    Attributes
    ----------
    best : float
        The best monitored value seen so far; kept across ``fit``/``partial_fit`` calls on
        the same model (so checkpoints of an out-of-core loop of ``partial_fit`` calls keep
        the best over all of them), forgotten when the callback is used with another model
        or by ``reset()``. NaN values are never best.
    best_epoch : int or None
        The (0-based, model-wide) epoch of ``best``.
    last_saved : str or None
        The file written last.

    Notes
    -----
    A save that fails (disk full, a folder removed meanwhile) raises from ``fit`` like
    any callback's error, and the model goes back to where the call started: the files
    already written are kept.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False,
                 min_delta: float = 0.0):
        checked = check_params(
            {"monitor": monitor, "save_best_only": save_best_only, "min_delta": min_delta},
            {"monitor": Choice(MONITORS), "save_best_only": Bool(), "min_delta": Real(0.0)},
            prefix="ModelCheckpoint ",
        )
        self.path = os.fsdecode(check_path(path, "ModelCheckpoint path"))
        self.__dict__.update(checked)
        self._model = None
        self.last_saved = None
        self.reset()

    def reset(self) -> None:
        """Forget the best value (the next epoch with a finite value is the best)."""
        self.forget_best()

    def fields(self) -> set:
        """The names of the format fields in ``path``."""
        try:
            names = {f[1] for f in string.Formatter().parse(self.path) if f[1] is not None}
        except ValueError as exc:  # an unmatched "{" or "}"
            raise ValueError(f"ModelCheckpoint path {self.path!r} is not a valid format "
                             f"string ({exc}); write braces as '{{{{' and '}}}}'.") from None
        return {n.split(".")[0].split("[")[0] for n in names}

    def check(self, metrics) -> None:
        """Before training: the fields are among ``metrics`` (the names the call records),
        the folder exists and can be written."""
        unknown = self.fields() - set(metrics) - {"epoch"}
        if unknown:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} has the field(s) {sorted(unknown)}, "
                f"which this fit call does not record; it records {sorted(metrics)} (and "
                "{epoch})."
            )
        folder = os.path.dirname(self.path) or "."
        if "{" not in folder:
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"ModelCheckpoint folder {folder!r} does not exist; "
                                        "create it first (os.makedirs).")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(f"ModelCheckpoint folder {folder!r} is not writable.")
        if "{" not in self.path and os.path.exists(self.path) and not os.access(
                self.path, os.W_OK):
            raise PermissionError(
                f"ModelCheckpoint path {self.path!r} is an existing file that is not writable "
                "(Model.save does not replace what open(path, 'w') could not write); make "
                "it writable or choose another path.")

    def bound(self, model) -> _BoundCheckpoint:
        """The callback ``fit`` runs: this checkpoint, saving ``model``."""
        return _BoundCheckpoint(self, model)

    def save(self, model, epoch: int, logs: dict) -> bool:
        """Record the epoch and save ``model`` if it is due; True if it saved."""
        owner = None if self._model is None else self._model()
        if owner is not model:
            self._model = weakref.ref(model)
            self.reset()
        improved = self.record_best(epoch, logs.get(self.monitor, math.nan))
        if self.save_best_only and not improved:
            return False
        path = self.path.format(epoch=epoch + 1, **logs)
        model.save(path)
        self.last_saved = path
        return True

    def __call__(self, epoch, logs):
        raise TypeError("a ModelCheckpoint saves the model it is trained with: pass it to "
                        "model.fit(..., callbacks=[checkpoint]) rather than calling it.")

    def get_config(self) -> dict:
        return {"path": self.path, "monitor": self.monitor,
                "save_best_only": self.save_best_only, "min_delta": self.min_delta}


class _BoundCheckpoint:
    """A ``ModelCheckpoint`` with the model it saves (what ``fit``'s plan holds)."""

    def __init__(self, checkpoint: ModelCheckpoint, model):
        self.checkpoint, self.model = checkpoint, model

    def __call__(self, epoch: int, logs: dict) -> bool:
        self.checkpoint.save(self.model, epoch, logs)
        return False
