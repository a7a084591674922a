"""scikit-learn's MLP epoch bookkeeping, as a stopping rule of the training loop, and its
learning-rate rules as schedules.

``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` end every epoch the same way:
record the loss (with its L2 term), count epochs without an improvement of more than
``tol`` (of the training loss, or of the validation score with ``early_stopping``), and
after more than ``n_iter_no_change`` such epochs either stop or, with
``learning_rate="adaptive"``, divide the rate by 5 (stopping once it is 1e-6 or less).
``SklearnRule`` does exactly that for the training loop; it also holds what the estimators
report (``loss_curve_``, ``t_``, ``n_iter_``, ...).

The rate itself has one owner, the model's schedule (``schedule_for``): ``invscaling`` is
``fastbp.schedules.InverseScaling(power_t, unit="samples")``, ``adaptive`` is
``fastbp.schedules.Adaptive()`` (which the rule reduces), ``constant`` and Adam's rate are
``Constant()``; the base rate is ``learning_rate_init`` as it was when scikit-learn's
optimizer was made (at a fit that starts afresh).
"""

from __future__ import annotations

import math

from ..callbacks import StoppingRule
from ..schedules import Adaptive, Constant, InverseScaling, Schedule


def schedule_for(solver: str, learning_rate: str, power_t: float,
                 samples_seen: int) -> Schedule:
    """scikit-learn's rate rule as a schedule of ``learning_rate_init``, for a fresh
    optimizer of an estimator that has seen ``samples_seen`` samples (its ``t_``, which
    ``invscaling`` counts on from)."""
    if solver == "sgd" and learning_rate == "invscaling":
        schedule = InverseScaling(power_t, unit="samples")
    elif solver == "sgd" and learning_rate == "adaptive":
        schedule = Adaptive(divisor=5.0, min_lr=1e-6)
    else:
        schedule = Constant()
    schedule.samples_seen = int(samples_seen)
    return schedule


class SklearnRule(StoppingRule):
    """The state that scikit-learn's estimators keep between epochs and fits.

    ``reset()`` starts a fresh fit; ``configure(...)`` takes the estimator's current
    hyperparameters at the start of each call (scikit-learn reads them live).

    Attributes
    ----------
    base_lr : float
        ``learning_rate_init`` when the current optimizer was made (scikit-learn's optimizer
        keeps it; ``partial_fit`` continues with it).
    """

    def __init__(self):
        self.base_lr = None
        self.schedule = None
        self.configure()
        self.reset(early_stopping=False)

    def reset(self, early_stopping: bool) -> None:
        self.t = 0
        self.n_iter = 0
        self.loss = None
        self.loss_curve: list[float] = []
        self.no_improvement_count = 0
        if early_stopping:
            self.validation_scores: list[float] | None = []
            self.best_validation_score = -math.inf
            self.best_loss = None
        else:
            self.validation_scores = None
            self.best_validation_score = None
            self.best_loss = math.inf
        self.stopped = False
        self.improved = False

    def configure(self, *, tol=1e-4, n_iter_no_change=10, early_stopping=False, n_samples=0,
                  loss_scale=1.0, verbose=False) -> None:
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.early_stopping, self.n_samples = early_stopping, n_samples
        self.loss_scale, self.verbose = loss_scale, verbose
        self.restore_best = bool(early_stopping)

    # ------------------------------------------------------------------ failed calls
    def checkpoint(self) -> tuple[dict, dict]:
        """What ``rollback`` needs to undo everything from now on (cheap: the lists are only
        ever appended to, so their lengths are kept, not copies)."""
        state = dict(self.__dict__)
        return state, {k: len(v) for k, v in state.items() if isinstance(v, list)}

    def rollback(self, checkpoint: tuple[dict, dict]) -> None:
        """Back to the state of ``checkpoint()``, in place (the estimators' ``loss_curve_``
        and ``validation_scores_`` are these lists)."""
        state, lengths = checkpoint
        self.__dict__.clear()
        self.__dict__.update(state)
        for key, n in lengths.items():
            del state[key][n:]

    # ------------------------------------------------------------------ the loop's calls
    def begin(self, state) -> None:
        self.schedule = state.schedule  # the model's: the rate's one owner
        self.n_iter = 0
        self.stopped = False
        self.improved = False
        if self.early_stopping and self.validation_scores is None:  # switched on: warm start
            self.validation_scores, self.best_validation_score = [], -math.inf
        if not self.early_stopping and self.best_loss is None:
            self.best_loss = math.inf

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        self.n_iter += 1
        self.loss = logs["loss"] * self.loss_scale + logs.get("penalty", 0.0)
        self.t += self.n_samples
        self.loss_curve.append(self.loss)
        if self.verbose:
            print(f"Iteration {self.n_iter}, loss = {self.loss:.8f}")
        improved = self._count_no_improvement(logs)
        self.improved |= improved
        stop = False
        if self.no_improvement_count > self.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
            if self._trigger_stopping(msg):
                stop = self.stopped = True
            else:
                self.no_improvement_count = 0
        return improved, stop

    def diverged(self) -> None:
        """The epoch diverged and early stopping ended training at its best epoch: record
        it as scikit-learn does (a NaN loss and validation score for the epoch)."""
        self.n_iter += 1
        self.t += self.n_samples
        self.loss = math.nan
        self.loss_curve.append(math.nan)
        if self.early_stopping:
            self.validation_scores.append(math.nan)
        self.stopped = True

    # ------------------------------------------------------------------ scikit-learn's rules
    def _count_no_improvement(self, logs: dict) -> bool:
        """scikit-learn's ``_update_no_improvement_count``; True when the validation score
        is the best so far (whose parameters early stopping restores)."""
        if self.early_stopping:
            score = logs["val_score"]
            self.validation_scores.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score + self.tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            if score > self.best_validation_score:
                self.best_validation_score = score
                return True
            return False
        if self.loss_curve[-1] > self.best_loss - self.tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        if self.loss_curve[-1] < self.best_loss:
            self.best_loss = self.loss_curve[-1]
        return False

    def _trigger_stopping(self, msg: str) -> bool:
        """scikit-learn's ``trigger_stopping``: with the adaptive rate, reduce it instead of
        stopping while it is above 1e-6."""
        schedule = self.schedule
        if isinstance(schedule, Adaptive):
            if not schedule.reduce():
                if self.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            if self.verbose:
                print(f"{msg} Setting learning rate to {schedule.lr(schedule.base_lr):f}")
            return False
        if self.verbose:
            print(msg + " Stopping.")
        return True
