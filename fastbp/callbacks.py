"""Training-loop callbacks: early stopping.

Any callable ``callback(epoch, logs)`` can be passed to ``fit(callbacks=[...])``: it is
called after every epoch with the epoch number (0-based, counting all epochs the model
has trained) and that epoch's metrics (``logs["loss"]``, ``logs["lr"]``, ``logs["time"]``,
``logs["val_loss"]``, ...); returning ``True`` stops training after that epoch.
"""

from __future__ import annotations

import math

from ._validation.params import Bool, Choice, Int, Real, check_params

__all__ = ["EarlyStopping", "StoppingRule"]

#: metrics that can be monitored, and whether larger is better
MONITORS = {"loss": False, "val_loss": False, "accuracy": True, "val_accuracy": True}


class StoppingRule:
    """What the training loop asks a stopping rule (``fit(early_stopping=...)``).

    ``begin(state)`` at the start of each ``fit`` call; ``learning_rate(lr)`` before each
    epoch (the schedule's rate; a rule may change it); ``update(epoch, logs)`` after each
    epoch, returning ``(improved, stop)``: whether this epoch is the best so far (its
    parameters are kept when ``restore_best``) and whether to stop.
    """

    restore_best = False

    def begin(self, state) -> None:
        pass

    def learning_rate(self, lr: float) -> float:
        return lr

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        raise NotImplementedError


class EarlyStopping(StoppingRule):
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

    @property
    def higher_is_better(self) -> bool:
        return MONITORS[self.monitor]

    def reset(self) -> None:
        self.best = -math.inf if self.higher_is_better else math.inf
        self.best_epoch = None
        self.stopped_epoch = None
        self.wait = 0

    def begin(self, state) -> None:
        """Called by the training loop at the start of every ``fit`` call: forget the
        previous call's best value and patience count."""
        self.reset()

    def update(self, epoch: int, logs: dict) -> tuple[bool, bool]:
        """Record one epoch; returns ``(improved, stop)``."""
        value = logs[self.monitor]
        if self.higher_is_better:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved or self.best_epoch is None and math.isfinite(value):
            self.best = value
            self.best_epoch = epoch
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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"EarlyStopping({args})"
