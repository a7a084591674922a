"""Optimizer descriptions: a name, hyperparameters, and how their state is laid out.

These objects hold no buffers and run nothing per step: ``Model.fit`` turns one into an
integer code plus a small float64 hyperparameter array for the compiled step kernel
(``fastbp.kernels._updates.optimizer_step``, whose docstring lists every update formula; they are
those of ``torch.optim``). The state (momentum buffers, moment estimates) lives in the
model, shaped ``(rows, n_params)`` with the layout of ``params``, and is kept between
``fit`` calls while the optimizer kind stays the same.

The learning rate is not part of an optimizer: it is ``fit``'s ``learning_rate`` (times
the schedule). The L2 penalty on weights is ``fit``'s ``l2`` and corresponds to
``torch.optim``'s ``weight_decay`` restricted to weights (for AdamW, ``weight_decay`` is the
decoupled decay, as in torch).
"""

from __future__ import annotations

import numpy as np

from ._validation.params import Bool, Choice, Int, Real, check_params
from .kernels import _codes
from .kernels._layout import aligned_zeros

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LBFGS", "SklearnSGD", "SklearnAdam",
           "Optimizer", "get_optimizer"]


class _Configured:
    """Equality, hashing and repr from the hyperparameters in ``self._config``."""

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self._config.items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"


class Optimizer(_Configured):
    """Base class. Subclasses set ``name`` and ``kind`` and implement ``hyper``."""

    name = ""
    kind: int | None = None

    def get_config(self) -> dict:
        """Hyperparameters as a JSON-serialisable dict (the constructor's arguments)."""
        return dict(self._config)

    def hyper(self) -> np.ndarray:
        """(4,) float64 hyperparameter array for the step kernel."""
        raise NotImplementedError

    @property
    def state_rows(self) -> int:
        """Rows of the state buffer (each shaped like ``params``)."""
        return _codes.OPT_STATE_ROWS[self.kind] if self.kind is not None else 0

    def init_state(self, n_params: int, dtype) -> np.ndarray:
        """Fresh state buffer, ``(state_rows, n_params)``, zeros, starting on a cache line."""
        return aligned_zeros(self.state_rows * n_params, dtype).reshape(self.state_rows, n_params)



class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum (``torch.optim.SGD``).

    Parameters
    ----------
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False (needs momentum > 0 and dampening 0, as in torch)
    """

    name = "sgd"
    kind = _codes.OPT_SGD

    def __init__(self, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False):
        momentum = Real(0.0, 1.0, hi_open=True)(momentum, "SGD momentum")
        dampening = Real(0.0, 1.0)(dampening, "SGD dampening")
        nesterov = Bool()(nesterov, "SGD nesterov")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "SGD nesterov=True needs momentum > 0 and dampening = 0; got "
                f"momentum={momentum}, dampening={dampening}."
            )
        self._config = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["momentum"], c["dampening"], float(c["nesterov"]), 0.0])


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``, ``amsgrad=False``); ``fit``'s ``l2`` is its coupled
    ``weight_decay`` (weights only).

    Parameters
    ----------
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    """

    name = "adam"
    kind = _codes.OPT_ADAM

    def __init__(self, betas=(0.9, 0.999), eps: float = 1e-8):
        self._config = self._check(betas, eps)

    @staticmethod
    def _check(betas, eps) -> dict:
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2); got {betas!r}.")
        beta = Real(0.0, 1.0, hi_open=True)
        return {"betas": [beta(betas[0], "betas[0]"), beta(betas[1], "betas[1]")],
                "eps": Real(0.0, lo_open=True)(eps, "eps")}

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["betas"][0], c["betas"][1], c["eps"], c.get("weight_decay", 0.0)])


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay`` before each update, applied to weights only.

    Parameters
    ----------
    betas, eps : as ``Adam``
    weight_decay : float >= 0, default 0.01
    """

    name = "adamw"

    def __init__(self, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        self._config = self._check(betas, eps)
        self._config["weight_decay"] = Real(0.0)(weight_decay, "AdamW weight_decay")


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    Parameters
    ----------
    alpha : float in [0, 1), default 0.99, smoothing of the squared-gradient average
    eps : float > 0, default 1e-8
    momentum : float in [0, 1), default 0
    centered : bool, default False, normalise by the gradient's estimated variance
    """

    name = "rmsprop"
    kind = _codes.OPT_RMSPROP

    def __init__(self, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False):
        self._config = check_params(
            {"alpha": alpha, "eps": eps, "momentum": momentum, "centered": centered},
            {"alpha": Real(0.0, 1.0, hi_open=True), "eps": Real(0.0, lo_open=True),
             "momentum": Real(0.0, 1.0, hi_open=True), "centered": Bool()},
            prefix="RMSprop ",
        )

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["alpha"], c["eps"], c["momentum"], float(c["centered"])])


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``).

    Parameters
    ----------
    lr_decay : float >= 0, default 0
    eps : float > 0, default 1e-10
    initial_accumulator_value : float >= 0, default 0
    """

    name = "adagrad"
    kind = _codes.OPT_ADAGRAD

    def __init__(self, lr_decay: float = 0.0, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0):
        self._config = check_params(
            {"lr_decay": lr_decay, "eps": eps,
             "initial_accumulator_value": initial_accumulator_value},
            {"lr_decay": Real(0.0), "eps": Real(0.0, lo_open=True),
             "initial_accumulator_value": Real(0.0)},
            prefix="Adagrad ",
        )

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["lr_decay"], c["eps"], 0.0, 0.0])

    def init_state(self, n_params: int, dtype) -> np.ndarray:
        return np.full((1, n_params), self._config["initial_accumulator_value"], dtype=dtype)


class LBFGS(Optimizer):
    """Full-batch L-BFGS through ``scipy.optimize.minimize(method="L-BFGS-B")``.

    SciPy iterates directly on the flat parameter vector, with the loss (plus the L2
    penalty) and its gradient from the compiled kernels. One L-BFGS iteration is one
    "epoch" of ``fit``: ``epochs`` is the iteration limit. ``batch_size``, ``shuffle``,
    ``learning_rate`` and the schedule are not used; dropout and clipping are refused.
    SciPy does not expose its curvature memory, so each ``fit`` call starts a new one.

    Parameters
    ----------
    m : int >= 1, default 10, number of correction pairs kept (SciPy's ``maxcor``)
    tol : float > 0, default 1e-5, projected-gradient tolerance (SciPy's ``gtol``)
    ftol : float > 0, default 2.2e-9, relative objective-decrease tolerance
    max_fun : int >= 1, default 15000, limit on loss/gradient evaluations per ``fit``
    """

    name = "lbfgs"
    kind = None

    def __init__(self, m: int = 10, tol: float = 1e-5, ftol: float = 2.2e-9,
                 max_fun: int = 15000):
        self._config = check_params(
            {"m": m, "tol": tol, "ftol": ftol, "max_fun": max_fun},
            {"m": Int(), "tol": Real(0.0, lo_open=True), "ftol": Real(0.0, lo_open=True),
             "max_fun": Int()},
            prefix="LBFGS ",
        )

    def hyper(self) -> np.ndarray:
        return np.zeros(_codes.N_HYPER)


class SklearnSGD(Optimizer):
    """scikit-learn's SGD with (Nesterov) momentum (``MLPClassifier(solver="sgd")``).

    The velocity form ``v = momentum * v - lr * g``; ``p += v``, or with Nesterov
    ``p += momentum * v - lr * g``. With a constant rate this is ``SGD(momentum)`` with the
    rate folded into the velocity; the ``fastbp.sklearn`` estimators use it to reach
    scikit-learn's weights to rounding.

    Parameters
    ----------
    momentum : float in [0, 1], default 0.9
    nesterov : bool, default True
    """

    name = "sklearn_sgd"
    kind = _codes.OPT_SKLEARN_SGD

    def __init__(self, momentum: float = 0.9, nesterov: bool = True):
        self._config = check_params(
            {"momentum": momentum, "nesterov": nesterov},
            {"momentum": Real(0.0, 1.0), "nesterov": Bool()}, prefix="SklearnSGD ")

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["momentum"], float(c["nesterov"]), 0.0, 0.0])


class SklearnAdam(Optimizer):
    """scikit-learn's Adam (``MLPClassifier(solver="adam")``): the bias correction folded
    into the step size, ``p -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(u) +
    eps)`` (``Adam`` divides the corrected moments instead; the two differ in where
    ``eps`` enters).

    Parameters
    ----------
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float > 0, default 1e-8
    """

    name = "sklearn_adam"
    kind = _codes.OPT_SKLEARN_ADAM

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8):
        beta = Real(0.0, 1.0, hi_open=True)
        self._config = check_params(
            {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon},
            {"beta_1": beta, "beta_2": beta, "epsilon": Real(0.0, lo_open=True)},
            prefix="SklearnAdam ")

    def hyper(self) -> np.ndarray:
        c = self._config
        return np.array([c["beta_1"], c["beta_2"], c["epsilon"], 0.0])


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, LBFGS, SklearnSGD,
                                        SklearnAdam)}


def get_optimizer(value) -> Optimizer:
    """An ``Optimizer`` from a name (default hyperparameters) or an ``Optimizer`` instance."""
    if isinstance(value, Optimizer):
        return value
    if isinstance(value, str):
        return OPTIMIZERS[Choice(OPTIMIZERS)(value, "optimizer")]()
    raise TypeError(
        f"optimizer must be a name in {sorted(OPTIMIZERS)} or an object from fastbp.optim "
        f"(e.g. fastbp.optim.Adam(betas=(0.9, 0.99))); got {type(value).__name__} {value!r}."
    )


def from_config(name: str, config: dict) -> Optimizer:
    """Rebuild an optimizer from ``name`` and ``get_config()`` (used when loading)."""
    cls = OPTIMIZERS[name]
    if cls is Adam or cls is AdamW:
        config = dict(config)
        config["betas"] = tuple(config["betas"])
    return cls(**config)
