"""scikit-learn's MLP epoch bookkeeping, as a stopping rule of the training loop.

``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` end every epoch the same way:
record the loss (with its L2 term), count epochs without an improvement of more than
``tol`` (of the training loss, or of the validation score with ``early_stopping``), update
the ``invscaling`` rate, and after more than ``n_iter_no_change`` such epochs either stop
or, with ``learning_rate="adaptive"``, divide the rate by 5 (stopping once it is below
1e-6). ``SklearnRule`` does exactly that for the training loop (the ``fastbp.sklearn``
estimators configure it); it also holds the rate of the next epoch and what the estimators
report (``loss_curve_``, ``t_``, ``n_iter_``, ...).
"""

from __future__ import annotations

import math

from ..callbacks import StoppingRule


class SklearnRule(StoppingRule):
    """The state that scikit-learn's estimators keep between epochs and fits.

    ``reset()`` starts a fresh fit; ``configure(...)`` takes the estimator's current
    hyperparameters at the start of each call (scikit-learn reads them live).
    """

    def __init__(self):
        self.configure()
        self.reset(early_stopping=False)

    def reset(self, early_stopping: bool) -> None:
        self.t = 0
        self.n_iter = 0
        self.loss = None
        self.loss_curve: list[float] = []
        self.no_improvement_count = 0
        self.lr = self.lr_init
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

    def configure(self, *, solver="adam", learning_rate="constant", lr_init=1e-3, power_t=0.5,
                  tol=1e-4, n_iter_no_change=10, early_stopping=False, n_samples=0,
                  loss_scale=1.0, verbose=False) -> None:
        self.solver, self.schedule, self.lr_init = solver, learning_rate, float(lr_init)
        self.power_t, self.tol, self.n_iter_no_change = power_t, tol, n_iter_no_change
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
        self.n_iter = 0
        self.stopped = False
        self.improved = False
        if self.early_stopping and self.validation_scores is None:  # switched on: warm start
            self.validation_scores, self.best_validation_score = [], -math.inf
        if not self.early_stopping and self.best_loss is None:
            self.best_loss = math.inf

    def learning_rate(self, lr: float) -> float:
        return self.lr if self.solver == "sgd" else self.lr_init

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        self.n_iter += 1
        self.loss = logs["loss"] * self.loss_scale + logs.get("penalty", 0.0)
        self.t += self.n_samples
        self.loss_curve.append(self.loss)
        if self.verbose:
            print(f"Iteration {self.n_iter}, loss = {self.loss:.8f}")
        improved = self._count_no_improvement(logs)
        self.improved |= improved
        if self.solver == "sgd" and self.schedule == "invscaling":
            self.lr = self.lr_init / (self.t + 1) ** self.power_t
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
        if self.solver == "sgd" and self.schedule == "adaptive":
            if self.lr <= 1e-6:
                if self.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            self.lr /= 5.0
            if self.verbose:
                print(f"{msg} Setting learning rate to {self.lr:f}")
            return False
        if self.verbose:
            print(msg + " Stopping.")
        return True
