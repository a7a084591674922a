"""Per-epoch learning-rate schedules.

A schedule maps the base learning rate (``fit``'s ``learning_rate``) to the rate of each
epoch; the rate is constant within an epoch and recorded in ``history["lr"]``. ``e`` below
is the number of epochs already trained under the schedule (0 for the first), which keeps
counting across ``fit``/``partial_fit`` calls as long as an equal schedule is passed (or
``schedule=None``), so an interrupted run resumes on the same curve.

========================  =================================================================
``Constant()``            ``lr``
``InverseScaling(p)``     ``lr / (e + 1) ** p`` (``unit="samples"``: ``e`` counts samples
                          seen before the epoch, as scikit-learn's ``invscaling``)
``Adaptive(d, m)``        ``lr / d ** k``, ``k`` the calls of ``reduce()`` that found the
                          rate above ``m`` (scikit-learn's ``adaptive``)
``StepDecay(s, g)``       ``lr * g ** (e // s)``  (``torch.optim.lr_scheduler.StepLR``)
``ExponentialDecay(g)``   ``lr * g ** e``  (``ExponentialLR``)
``CosineAnnealing(T, m)`` ``m + (lr - m) * (1 + cos(pi * e / T)) / 2`` (``CosineAnnealingLR``'s
                          closed form; ``e`` is capped at ``T``, after which the rate stays m)
``ReduceOnPlateau(...)``  ``lr * factor ** k`` (at least ``min_lr``), ``k`` the number of
                          reductions so far, a reduction by ``eps`` or less skipped
                          (``ReduceLROnPlateau``, mode "min")
========================  =================================================================
"""

from __future__ import annotations

import math

from ._validation.params import Choice, Int, Real, check_params
from .optim import _Configured

__all__ = [
    "Schedule",
    "Constant",
    "InverseScaling",
    "Adaptive",
    "StepDecay",
    "ExponentialDecay",
    "CosineAnnealing",
    "ReduceOnPlateau",
    "get_schedule",
]


class Schedule(_Configured):
    """Base class: ``lr(base_lr)`` gives the current epoch's rate, ``step(metric, n)`` ends
    an epoch. ``state``/``set_state`` hold the JSON-serialisable progress."""

    name = ""
    uses_metric = False

    def __init__(self):
        self._config: dict = {}
        self.reset()

    def reset(self) -> None:
        self.epoch = 0
        self.samples_seen = 0

    def get_config(self) -> dict:
        return dict(self._config)

    def get_state(self) -> dict:
        return {"epoch": self.epoch, "samples_seen": self.samples_seen}

    def set_state(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.samples_seen = int(state["samples_seen"])

    def lr(self, base_lr: float) -> float:
        raise NotImplementedError

    def step(self, metric: float | None, n_samples: int) -> None:
        """Record the end of an epoch of ``n_samples`` samples with monitored ``metric``."""
        self.epoch += 1
        self.samples_seen += int(n_samples)



class Constant(Schedule):
    """The same rate every epoch."""

    name = "constant"

    def lr(self, base_lr):
        return base_lr


class InverseScaling(Schedule):
    """``lr / (e + 1) ** power_t``.

    Parameters
    ----------
    power_t : float >= 0, default 0.5
    unit : {"epoch", "samples"}, default "epoch"
        What ``e`` counts: epochs trained so far, or training samples seen before this epoch
        (scikit-learn's ``learning_rate="invscaling"``, updated once per epoch). With
        ``"samples"`` the first epoch under the schedule runs at ``lr``, whatever count its
        progress starts from: scikit-learn starts every new optimizer at
        ``learning_rate_init`` and counts the samples of earlier fits after that
        (``warm_start``; ``fastbp.sklearn`` gives the schedule its ``t_``).
    """

    name = "inverse_scaling"

    def __init__(self, power_t: float = 0.5, unit: str = "epoch"):
        super().__init__()
        self._config = check_params(
            {"power_t": power_t, "unit": unit},
            {"power_t": Real(0.0), "unit": Choice(("epoch", "samples"))},
            prefix="InverseScaling ",
        )

    def lr(self, base_lr):
        if self._config["unit"] == "epoch":
            e = self.epoch
        else:
            e = self.samples_seen if self.epoch else 0
        return base_lr / (e + 1) ** self._config["power_t"]


class Adaptive(Schedule):
    """``lr / divisor ** k``: the rate is divided by ``divisor`` at each call of ``reduce()``
    that finds it above ``min_lr``.

    scikit-learn's ``learning_rate="adaptive"``: the ``fastbp.sklearn`` estimators' stopping
    rule calls ``reduce()`` where it would otherwise stop (the loss or validation score has
    not improved by ``tol`` for ``n_iter_no_change`` epochs), and stops once it returns
    False. With ``Model.fit`` the rate stays ``lr`` unless a callback calls
    ``model.schedule.reduce()``. The rate is computed by ``k`` successive divisions, as
    scikit-learn's ``learning_rate /= 5`` is.

    Parameters
    ----------
    divisor : float > 1, default 5
    min_lr : float >= 0, default 1e-6
    """

    name = "adaptive"

    def __init__(self, divisor: float = 5.0, min_lr: float = 1e-6):
        super().__init__()
        self._config = check_params(
            {"divisor": divisor, "min_lr": min_lr},
            {"divisor": Real(1.0, lo_open=True), "min_lr": Real(0.0)}, prefix="Adaptive ")

    def reset(self):
        super().reset()
        self.n_reductions = 0
        self.base_lr = None  # the base rate of the last lr() call: what reduce() judges

    def get_state(self):
        return dict(super().get_state(), n_reductions=self.n_reductions)

    def set_state(self, state):
        super().set_state(state)
        self.n_reductions = int(state["n_reductions"])

    def lr(self, base_lr):
        self.base_lr = base_lr
        rate = base_lr
        for _ in range(self.n_reductions):
            rate /= self._config["divisor"]
        return rate

    def reduce(self) -> bool:
        """Divide the rate by ``divisor``, unless it is ``min_lr`` or less already (then
        nothing changes); whether it was divided."""
        if self.base_lr is not None and self.lr(self.base_lr) <= self._config["min_lr"]:
            return False
        self.n_reductions += 1
        return True


class StepDecay(Schedule):
    """``lr * gamma ** (e // step_size)``.

    Parameters
    ----------
    step_size : int >= 1, default 10
    gamma : float in (0, 1], default 0.1
    """

    name = "step_decay"

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        super().__init__()
        self._config = check_params(
            {"step_size": step_size, "gamma": gamma},
            {"step_size": Int(), "gamma": Real(0.0, 1.0, lo_open=True)},
            prefix="StepDecay ",
        )

    def lr(self, base_lr):
        c = self._config
        return base_lr * c["gamma"] ** (self.epoch // c["step_size"])


class ExponentialDecay(Schedule):
    """``lr * gamma ** e``.

    Parameters
    ----------
    gamma : float in (0, 1], default 0.95
    """

    name = "exponential_decay"

    def __init__(self, gamma: float = 0.95):
        super().__init__()
        self._config = {"gamma": Real(0.0, 1.0, lo_open=True)(gamma, "ExponentialDecay gamma")}

    def lr(self, base_lr):
        return base_lr * self._config["gamma"] ** self.epoch


class CosineAnnealing(Schedule):
    """``eta_min + (lr - eta_min) * (1 + cos(pi * min(e, T_max) / T_max)) / 2``.

    Parameters
    ----------
    T_max : int >= 1, default 100, epochs from ``lr`` down to ``eta_min``
    eta_min : float >= 0, default 0
    """

    name = "cosine_annealing"

    def __init__(self, T_max: int = 100, eta_min: float = 0.0):
        super().__init__()
        self._config = check_params(
            {"T_max": T_max, "eta_min": eta_min}, {"T_max": Int(), "eta_min": Real(0.0)},
            prefix="CosineAnnealing ",
        )

    def lr(self, base_lr):
        c = self._config
        e = min(self.epoch, c["T_max"])
        cos = math.cos(math.pi * e / c["T_max"])
        return c["eta_min"] + (base_lr - c["eta_min"]) * (1 + cos) / 2


class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the monitored loss stops improving.

    The monitored value is the epoch's validation loss when ``fit`` has validation data,
    else its training loss. An epoch improves when ``metric < best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``metric < best - threshold`` (``"abs"``); after more
    than ``patience`` epochs without improvement the rate is reduced (never below
    ``min_lr``) and ``cooldown`` epochs pass before counting again. A reduction that would
    change the rate by ``eps`` or less is skipped (the rate stays; the counters restart as
    after a reduction). Same rules as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min")``; scikit-learn's
    ``learning_rate="adaptive"`` is close to ``ReduceOnPlateau(factor=0.2,
    patience=n_iter_no_change, threshold=tol, threshold_mode="abs")`` on the training loss.

    Parameters
    ----------
    factor : float in (0, 1), default 0.1
    patience : int >= 0, default 10
    threshold : float >= 0, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0
    eps : float >= 0, default 1e-8
        Smallest change of the rate worth making (torch's ``eps``).
    """

    name = "reduce_on_plateau"
    uses_metric = True

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8):
        super().__init__()
        self._config = check_params(
            {"factor": factor, "patience": patience, "threshold": threshold,
             "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lr": min_lr,
             "eps": eps},
            {"factor": Real(0.0, 1.0, lo_open=True, hi_open=True), "patience": Int(0),
             "threshold": Real(0.0), "threshold_mode": Choice(("rel", "abs")),
             "cooldown": Int(0), "min_lr": Real(0.0), "eps": Real(0.0)},
            prefix="ReduceOnPlateau ",
        )

    def reset(self):
        super().reset()
        self.best = math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.n_reductions = 0
        self.base_lr = None  # the base rate of the last lr() call: what eps is judged on

    def get_state(self):
        s = super().get_state()
        s.update(best=self.best if math.isfinite(self.best) else None,
                 num_bad_epochs=self.num_bad_epochs, cooldown_counter=self.cooldown_counter,
                 n_reductions=self.n_reductions)
        return s

    def set_state(self, state):
        super().set_state(state)
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.n_reductions = int(state["n_reductions"])

    def _rate(self, base_lr, k):
        c = self._config
        if k == 0:
            return base_lr
        return max(base_lr * c["factor"] ** k, c["min_lr"])

    def lr(self, base_lr):
        self.base_lr = base_lr
        return self._rate(base_lr, self.n_reductions)

    def step(self, metric, n_samples):
        super().step(metric, n_samples)
        c = self._config
        if c["threshold_mode"] == "rel":
            better = metric < self.best * (1 - c["threshold"])
        else:
            better = metric < self.best - c["threshold"]
        if better:
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > c["patience"]:
            base = self.base_lr
            if base is None or (self._rate(base, self.n_reductions)
                                - self._rate(base, self.n_reductions + 1) > c["eps"]):
                self.n_reductions += 1
            self.cooldown_counter = c["cooldown"]
            self.num_bad_epochs = 0


SCHEDULES = {
    cls.name: cls
    for cls in (Constant, InverseScaling, Adaptive, StepDecay, ExponentialDecay,
                CosineAnnealing, ReduceOnPlateau)
}


def get_schedule(value) -> Schedule:
    """A ``Schedule`` from a name (default parameters) or a ``Schedule`` instance."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return SCHEDULES[Choice(SCHEDULES)(value, "schedule")]()
    raise TypeError(
        f"schedule must be a name in {sorted(SCHEDULES)} or an object from fastbp.schedules "
        f"(e.g. fastbp.schedules.StepDecay(step_size=10, gamma=0.5)); got "
        f"{type(value).__name__} {value!r}."
    )


def from_config(name: str, config: dict, state: dict) -> Schedule:
    """Rebuild a schedule with its progress (used when loading)."""
    s = SCHEDULES[name](**config)
    s.set_state(state)
    return s
