"""scikit-learn estimators backed by fastbp: ``MLPClassifier`` and ``MLPRegressor``.

They take the parameters of ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` with
the same names, defaults and meaning, so that switching is a change of import::

    from fastbp.sklearn import MLPClassifier   # instead of sklearn.neural_network

and they follow scikit-learn's definitions exactly: the same objective (mean loss plus
``alpha / (2 n_batch) * sum ||W||^2``), the same SGD-with-momentum and Adam update rules,
the same learning-rate schedules, stopping rules, early stopping and L-BFGS call
(``scipy.optimize.minimize``). Given the same ``random_state`` they even draw the same
initial weights, the same minibatch order and the same validation split as scikit-learn,
so the two reach the same weights up to floating-point rounding. The forward and backward
passes run in fastbp's compiled kernels (``fastbp.kernels``).

Differences from scikit-learn are listed in the class docstrings (``Notes``).
scikit-learn is an optional dependency of fastbp: it is imported by this module only.
"""

from __future__ import annotations

import numbers
import warnings

import numba
import numpy as np
import scipy.optimize
import scipy.sparse
import sklearn

if tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit()) < (1, 6):
    raise ImportError(
        f"fastbp.sklearn needs scikit-learn >= 1.6 (for validate_data and estimator tags); "
        f"found {sklearn.__version__}. Upgrade with: pip install -U 'scikit-learn>=1.6'"
    )

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _sk_shuffle
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._errors import DivergenceError
from ._sparse import check_csr
from ._threads import kernel_threads, worker_threads
from ._training.lbfgs import objective as lbfgs_objective
from ._training.loop import Trainer
from ._training.plan import FitPlan
from ._training.sklearn_rule import SklearnRule
from ._validation import (
    Bool,
    Choice,
    Int,
    Real,
    as_finite,
    check_params,
    check_poisson_targets,
)
from .model import Model
from .optim import LBFGS, SklearnAdam, SklearnSGD
from .schedules import Constant

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_SOLVERS = ("sgd", "adam", "lbfgs")
_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: rows per chunk when evaluating the full-batch (L-BFGS) objective
_LBFGS_CHUNK = 1024


# ------------------------------------------------------------------------- validation
#: scikit-learn's constraints on the estimators' hyperparameters, in fastbp's vocabulary
_PARAMS = {
    "activation": Choice(_ACTIVATIONS),
    "solver": Choice(_SOLVERS),
    "alpha": Real(0.0),
    "learning_rate": Choice(_LEARNING_RATES),
    "learning_rate_init": Real(0.0, lo_open=True),
    "power_t": Real(0.0),
    "max_iter": Int(),
    "shuffle": Bool(),
    "tol": Real(0.0),
    "verbose": Bool(ints=True),
    "warm_start": Bool(),
    "momentum": Real(0.0, 1.0),
    "nesterovs_momentum": Bool(),
    "early_stopping": Bool(),
    "validation_fraction": Real(0.0, 1.0, hi_open=True),
    "beta_1": Real(0.0, 1.0, hi_open=True),
    "beta_2": Real(0.0, 1.0, hi_open=True),
    "epsilon": Real(0.0, lo_open=True),
    "n_iter_no_change": Int(inf=True),
    "max_fun": Int(),
    "n_threads": Int(1, None, none=True),
}

#: scipy.optimize.minimize's L-BFGS-B defaults, which scikit-learn keeps
_SCIPY_LBFGS = {"ftol": 2.2204460492503131e-09, "maxcor": 10}


def _rejects_atomically(method):
    """A call that raises ``ValueError``/``TypeError`` (bad input or parameters, or a
    divergence) puts every attribute of the estimator back, the stopping rule's state
    included, so a rejected call leaves a fitted estimator usable and unchanged. The training
    engine restores the model's own state on any error, and after a divergence goes back to
    the start of the call (the plans say ``divergence_restore="start"``)."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        rule = saved.get("_rule")
        checkpoint = rule.checkpoint() if rule is not None else None
        try:
            return method(self, *args, **kwargs)
        except (ValueError, TypeError):
            self.__dict__.clear()
            self.__dict__.update(saved)
            if rule is not None:
                rule.rollback(checkpoint)
            raise

    return wrapper


_LAYER_NAMES = ("coefs_", "intercepts_")


def _layer_arrays(value, name: str, ndim: int) -> list:
    """``value`` as a list of finite float arrays of ``ndim`` dimensions (checked)."""
    if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
        raise TypeError(
            f"{name} must be a list of arrays, one per layer; got {type(value).__name__}.")
    shape = "(fan_in, fan_out)" if ndim == 2 else "(fan_out,)"
    if len(value) == 0:
        raise ValueError(f"{name} must hold one array per layer; got an empty list.")
    out = []
    for i, a in enumerate(value):
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged nested lists and the like
            raise ValueError(f"{name}[{i}] could not be converted to an array: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{i}] must hold real numbers; got dtype {arr.dtype}.")
        if arr.ndim != ndim:
            raise ValueError(f"{name}[{i}] must be a {ndim}-D array of shape {shape}; got "
                             f"shape {arr.shape}.")
        if arr.size == 0:
            raise ValueError(f"{name}[{i}] is empty (shape {arr.shape}); every layer needs "
                             "at least one unit.")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}[{i}] contains NaN or infinity.")
        out.append(np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64))
    return out


def _check_layer_shapes(layers, layer_units=None) -> None:
    """``(coefs, intercepts)`` (either may be ``None``) describe one chain of layers: each
    ``coefs[i]`` maps the previous layer's units, each ``intercepts[i]`` matches it, and,
    given ``layer_units``, the units are those."""
    coefs, intercepts = layers
    if coefs is not None:
        for i in range(1, len(coefs)):
            if coefs[i].shape[0] != coefs[i - 1].shape[1]:
                raise ValueError(
                    f"coefs_[{i}] has shape {coefs[i].shape}, but coefs_[{i - 1}] has "
                    f"{coefs[i - 1].shape[1]} outputs, so coefs_[{i}] must have "
                    f"{coefs[i - 1].shape[1]} rows (coefs_[i] is (fan_in, fan_out)).")
    if coefs is not None and intercepts is not None:
        if len(intercepts) != len(coefs):
            raise ValueError(f"intercepts_ has {len(intercepts)} arrays but coefs_ has "
                             f"{len(coefs)}; give one of each per layer.")
        for i, (c, b) in enumerate(zip(coefs, intercepts, strict=True)):
            if b.shape != (c.shape[1],):
                raise ValueError(f"intercepts_[{i}] has shape {b.shape}; coefs_[{i}] has "
                                 f"{c.shape[1]} outputs, so it must have shape "
                                 f"({c.shape[1]},).")
    if layer_units is not None and coefs is not None:
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if units != list(layer_units):
            raise ValueError(
                f"the assigned coefs_ and intercepts_ have layer sizes {units}, but the data "
                f"and hidden_layer_sizes give {list(layer_units)}; set "
                f"hidden_layer_sizes={tuple(units[1:-1])} (and pass data with {units[0]} "
                "features and matching targets), or assign weights of those shapes.")


class _LayerList(list):
    """``coefs_`` / ``intercepts_``: a list of arrays whose item assignment goes through the
    estimator's checked setter (so it reaches the model); its length is fixed."""

    def __init__(self, arrays, owner, name):
        super().__init__(arrays)
        self._owner, self._name = owner, name

    def __setitem__(self, index, value):
        new = list(self)
        new[index] = value
        setattr(self._owner, self._name, new)
        super().__setitem__(index, getattr(self._owner, self._name)[index])

    def _fixed(self, *args, **kwargs):
        raise TypeError(f"{self._name} has one array per layer; assign arrays of the same "
                        f"shapes (est.{self._name}[i] = ...) or a whole new list "
                        f"(est.{self._name} = [...]).")

    __delitem__ = __iadd__ = __imul__ = _fixed
    append = extend = insert = pop = remove = clear = sort = reverse = _fixed

    def __reduce__(self):
        return (list, (list(self),))


class _BaseMLP(BaseEstimator):
    """Shared implementation of ``MLPClassifier`` and ``MLPRegressor``."""

    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        n_threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads

    # ------------------------------------------------------------------ parameters
    def _validate_hyperparameters(self) -> list[int]:
        owner = type(self).__name__
        try:
            check_params({name: getattr(self, name) for name in _PARAMS}, _PARAMS,
                         prefix=f"{owner} ")
            losses = ("log_loss",) if is_classifier(self) else ("squared_error", "poisson")
            check_params({"loss": self.loss}, {"loss": Choice(losses)}, prefix=f"{owner} ")
            hls = self.hidden_layer_sizes
            hls = [hls] if isinstance(hls, numbers.Integral) else hls
            if isinstance(hls, (str, bytes)) or not hasattr(hls, "__iter__"):
                raise ValueError(
                    f"{owner} hidden_layer_sizes must be an int or a sequence of ints, such "
                    f"as (100,) or (64, 32); got {self.hidden_layer_sizes!r}.")
            hls = list(hls)
            if not all(isinstance(h, numbers.Integral) and not isinstance(h, (bool, np.bool_))
                       for h in hls):
                raise ValueError(f"hidden_layer_sizes must contain integers; got "
                                 f"{self.hidden_layer_sizes!r}.")
            if any(h <= 0 for h in hls):  # scikit-learn's own message
                raise ValueError(f"hidden_layer_sizes must be > 0, got {hls}.")
            hls = [int(h) for h in hls]
            bs = self.batch_size
            if not (isinstance(bs, str) and bs == "auto"):
                Int()(bs, f"{owner} batch_size (an int >= 1 or 'auto')")
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(str(exc)) from None
        return hls

    def _threads(self) -> int | None:
        """Numba threads for this estimator's compiled calls: ``n_threads`` (at most Numba's
        thread count), or inside a joblib/Dask worker that worker's share of the cores."""
        if self.n_threads is None:
            return worker_threads()
        return min(int(self.n_threads), int(numba.config.NUMBA_NUM_THREADS))

    # ------------------------------------------------------------------ model setup
    def _output_and_loss(self) -> tuple[str, str]:
        raise NotImplementedError

    def _initialize(self, n_outputs, layer_units, dtype, rng, layers=None):
        """Fresh fitted state: the fastbp ``Model`` and scikit-learn's bookkeeping.

        ``layers``: ``(coefs, intercepts)`` set by the user on the unfitted estimator, used
        instead of scikit-learn's random initialisation (their shapes checked here)."""
        if layers is not None:
            _check_layer_shapes(layers, layer_units)
            layers = tuple([as_finite(a, dtype, f"{name}[{i}]") for i, a in enumerate(arrays)]
                           for name, arrays in zip(_LAYER_NAMES, layers, strict=True))
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(layer_units)
        out, loss = self._output_and_loss()
        self.out_activation_ = out
        self.model_ = Model(
            layer_units, activation=self.activation, loss=loss, output=out,
            dtype=np.dtype(dtype).name, seed=0, init="glorot_uniform",
        )
        # scikit-learn's initialisation, drawn from the same random state in the same order:
        # U(-b, b) for weights *and* biases, b = sqrt(factor / (fan_in + fan_out))
        factor = 2.0 if self.activation == "logistic" else 6.0
        for i, (W, b) in enumerate(zip(self.model_.weights, self.model_.biases, strict=True)):
            if layers is not None:
                W[...] = layers[0][i].T
                b[...] = layers[1][i]
                continue
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, (fan_in, fan_out)).T
            b[...] = rng.uniform(-bound, bound, fan_out)
        self.__dict__.pop("_user_layers", None)
        self._best_params = self.model_.params.copy()
        self._stochastic = False
        self._rule = SklearnRule()
        self._rule.reset(early_stopping=bool(self.early_stopping))
        if self.solver in _STOCHASTIC_SOLVERS:
            self._publish(self._rule)

    def _sync_activation(self) -> None:
        """scikit-learn reads ``activation`` at every call: a new one applies to the fitted
        weights (a warm start, ``partial_fit``, ``predict``), as it does there."""
        hidden = [self.activation] * (len(self.model_.layer_sizes) - 2)
        if list(self.model_.activations) != hidden:
            check_params({"activation": self.activation},
                         {"activation": _PARAMS["activation"]},
                         prefix=f"{type(self).__name__} ", error=InvalidParameterError)
            self.model_.set_activation(self.activation)

    # ------------------------------------------------------------------ coefs_, intercepts_
    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` of shape ``(fan_in, fan_out)`` as in scikit-learn.

        On a fitted estimator, views into the fastbp model's flat buffer (the transpose of
        fastbp's row-major ``(n_out, n_in)`` matrices): writing into them, assigning an item
        (``est.coefs_[i] = W``) or assigning a new list (``est.coefs_ = [...]``) changes the
        weights that ``predict`` and ``partial_fit`` use. Shapes are checked."""
        return self._layer_list(0)

    @coefs_.setter
    def coefs_(self, value):
        self._set_layers(0, value)

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` of shape ``(fan_out,)``; see ``coefs_``."""
        return self._layer_list(1)

    @intercepts_.setter
    def intercepts_(self, value):
        self._set_layers(1, value)

    def _layer_list(self, which: int) -> _LayerList:
        name = _LAYER_NAMES[which]
        if "model_" in self.__dict__:
            m = self.model_
            arrays = [W.T for W in m.weights] if which == 0 else list(m.biases)
        else:
            arrays = self.__dict__.get("_user_layers", (None, None))[which]
            if arrays is None:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r} (it is "
                    f"not fitted; fit it, or assign {name} and "
                    f"{_LAYER_NAMES[1 - which]})")
        return _LayerList(arrays, self, name)

    def _set_layers(self, which: int, value) -> None:
        """Assign ``coefs_`` (``which=0``) or ``intercepts_`` (1): into the model's buffer
        when fitted (the shapes must be the model's), else kept for ``predict`` and the first
        ``partial_fit`` (or ``fit`` with ``warm_start=True``)."""
        name = _LAYER_NAMES[which]
        arrays = _layer_arrays(value, name, ndim=2 - which)
        if "model_" in self.__dict__:
            current = self._layer_list(which)
            if len(arrays) != len(current):
                raise ValueError(
                    f"{name} must hold {len(current)} arrays, one per layer of this fitted "
                    f"estimator; got {len(arrays)}. To change the architecture, set "
                    "hidden_layer_sizes and fit again, or assign coefs_ and intercepts_ on an "
                    "unfitted estimator (sklearn.base.clone(est)).")
            for i, (a, view) in enumerate(zip(arrays, current, strict=True)):
                if a.shape != view.shape:
                    raise ValueError(
                        f"{name}[{i}] must have shape {view.shape}, the shape of this fitted "
                        f"estimator's layer {i}; got {a.shape}. To change the architecture, "
                        "set hidden_layer_sizes and fit again, or assign coefs_ and "
                        "intercepts_ on an unfitted estimator (sklearn.base.clone(est)).")
            # in the model's dtype, checked after the cast: 1e39 overflows float32 to inf
            arrays = [as_finite(a, view.dtype, f"{name}[{i}]")
                      for i, (a, view) in enumerate(zip(arrays, current, strict=True))]
            with self.model_.network.boundary:
                for a, view in zip(arrays, current, strict=True):
                    view[...] = a
            return
        layers = list(self.__dict__.get("_user_layers", (None, None)))
        layers[which] = arrays
        _check_layer_shapes(layers)
        self._user_layers = tuple(layers)

    def _has_user_layers(self) -> bool:
        layers = self.__dict__.get("_user_layers", (None, None))
        return layers[0] is not None and layers[1] is not None

    def __sklearn_is_fitted__(self) -> bool:
        # assigned weights count, so that predict can say what else it needs
        return "model_" in self.__dict__ or "_user_layers" in self.__dict__

    def _model_from_user_layers(self) -> None:
        """An unfitted estimator given ``coefs_`` and ``intercepts_``: the fitted state
        that ``predict`` (and later ``partial_fit``) needs, built from them."""
        coefs, intercepts = self.__dict__.get("_user_layers", (None, None))
        if coefs is None or intercepts is None:
            missing = "coefs_" if coefs is None else "intercepts_"
            raise NotFittedError(
                f"this {type(self).__name__} has {_LAYER_NAMES[missing == 'coefs_']} but no "
                f"{missing}; assign {missing} too (or fit the estimator) before predicting.")
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        self._prepare_outputs(units[-1])
        dtype = (np.float32 if all(a.dtype == np.float32 for a in coefs + intercepts)
                 else np.float64)
        self._initialize(units[-1], units, dtype, None, layers=(coefs, intercepts))
        self.n_features_in_ = units[0]

    def _prepare_outputs(self, n_outputs: int) -> None:
        """What the output layer means, before predicting from user-given weights."""

    def _publish(self, rule: SklearnRule) -> None:
        """scikit-learn's per-epoch attributes, from the training loop's rule."""
        self.n_iter_ = rule.n_iter
        self.t_ = rule.t
        if rule.loss is not None:
            self.loss_ = float(rule.loss)
        self.loss_curve_ = rule.loss_curve
        self.best_loss_ = rule.best_loss
        self.validation_scores_ = rule.validation_scores
        self.best_validation_score_ = rule.best_validation_score
        self._no_improvement_count = rule.no_improvement_count

    # ------------------------------------------------------------------ fitting
    def _validate_input(self, X, y, incremental, reset):
        raise NotImplementedError

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self._validate_hyperparameters()
        first_pass = "model_" not in self.__dict__ or (not self.warm_start and not incremental)
        layers = None
        if first_pass and (incremental or self.warm_start) and self._has_user_layers():
            layers = self._user_layers  # partial_fit / warm start from assigned weights
        X, T = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        layer_units = [X.shape[1]] + hidden + [T.shape[1]]
        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(T.shape[1], layer_units, X.dtype, rng, layers)
        else:
            have = [int(s) for s in self.model_.layer_sizes]
            if have != layer_units:
                raise ValueError(
                    f"The network's layer sizes {have} do not match the data and "
                    f"hidden_layer_sizes {layer_units}; refit with warm_start=False."
                )
            loss = self._output_and_loss()[1]
            if self.model_.loss != loss:
                raise ValueError(
                    f"loss={self.loss!r} differs from the loss the network was built for "
                    f"({self.model_.loss!r}, output {self.out_activation_!r}); refit with "
                    f"warm_start=False (or set loss back).")
            self._sync_activation()
        dtype = self.model_.dtype
        if scipy.sparse.issparse(X):  # kept sparse (CSR of the model's dtype), never densified
            X = X.tocsr().astype(dtype, copy=False)
        else:
            X = np.ascontiguousarray(X, dtype=dtype)
        T = np.ascontiguousarray(T, dtype=dtype)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, T, sample_weight, incremental, rng)
            else:
                self._fit_lbfgs(X, T, sample_weight)
        except DivergenceError:  # the engine put the model back as it was before the call
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            ) from None
        return self

    def _loss_scale(self) -> float:
        """Factor from fastbp's data loss to the value scikit-learn reports."""
        return 1.0 / self.n_outputs_ if self.model_.loss == "squared_error" else 1.0

    def _plan(self, X, T, sample_weight, **kw) -> FitPlan:
        """The training loop's plan with scikit-learn's conventions: a batch's loss is its
        weighted mean, and the L2 term ``alpha / (2 sum w) * sum W**2`` is part of it."""
        sw = sample_weight if sample_weight is not None else np.zeros(0, X.dtype)
        if scipy.sparse.issparse(X):
            X = check_csr(X, X.dtype, X.shape[1])
        return FitPlan(X=X, T=T, SW=sw, l2=float(self.alpha), schedule=Constant(),
                       weight_norm="weights",
                       divergence_restore="best" if self.early_stopping else "start",
                       n_threads=self._threads(), **kw)

    def _fit_lbfgs(self, X, T, sample_weight):
        options = dict(_SCIPY_LBFGS, maxfun=self.max_fun, maxiter=self.max_iter, gtol=self.tol)
        scale = self._loss_scale()
        callbacks = ()
        if self.verbose:
            def show(epoch, logs, it=[0]):  # noqa: B006 - the iteration counter
                it[0] += 1
                print(f"Iteration {it[0]}, loss = {logs['loss'] * scale + logs['penalty']:.8f}")
            callbacks = (show,)
        plan = self._plan(
            X, T, sample_weight, epochs=self.max_iter, batch_size=X.shape[0], lr=0.0,
            shuffle=False, optimizer=LBFGS(), callbacks=callbacks, reset_optimizer=True,
            lbfgs_chunk=_LBFGS_CHUNK, lbfgs_accuracy=False, lbfgs_options=options,
        )
        trainer = Trainer(self.model_.network, self.model_.state, plan)
        epochs = self.model_.history.epochs
        try:
            trainer.run()
        except KeyboardInterrupt:
            # raised on, as scikit-learn's; the model holds the last accepted iterate, and
            # the estimator says how many iterations it took and its loss
            self.n_iter_ = self.model_.history.epochs - epochs
            trainer.interrupt = None  # the objective below must not see the interrupt again
            self.loss_ = self._lbfgs_loss(trainer, scale)
            raise
        res = trainer.lbfgs_result
        if res.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {res.nit} iteration(s) (status={res.status}): "
                f"{res.message}. Increase the number of iterations (max_iter) or scale the "
                "data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = self._lbfgs_loss(trainer, scale)

    def _lbfgs_loss(self, trainer, scale) -> float:
        """The objective at the current parameters, reported as scikit-learn does (a
        compiled call: under the model's lock and the kernels' process-wide turn, like every
        other)."""
        f = lbfgs_objective(trainer)
        with self.model_.network.lock, kernel_threads(self._threads()):
            f(self.model_.params)
        return float(f.data * scale + f.penalty)

    def _fit_stochastic(self, X, T, sample_weight, incremental, rng):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        model = self.model_
        fresh = not incremental or not getattr(self, "_stochastic", False)
        early_stopping = self.early_stopping
        if early_stopping:
            # stratified as scikit-learn does, on the binarized column as booleans: the same
            # split, and the same error for a class too small to split ("Classes with too
            # few members are: ['True']"; a float column would name it '1.0')
            stratify = (T.astype(bool) if is_classifier(self) and self.n_outputs_ == 1
                        else None)
            arrays = (X, T) if sample_weight is None else (X, T, sample_weight)
            split = train_test_split(
                *arrays, random_state=rng, test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, T_train, T_val = split[:4]
            sw_train, sw_val = (split[4], split[5]) if sample_weight is not None else (None,
                                                                                       None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the "
                    "size of your dataset."
                )
            y_val = self._targets_to_y(T_val)
            if not scipy.sparse.issparse(X_train):
                X_train = np.ascontiguousarray(X_train)
            T_train = np.ascontiguousarray(T_train)
        else:
            X_train, T_train, sw_train = X, T, sample_weight

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=4,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        rule = self._rule
        rule.configure(
            solver=self.solver, learning_rate=self.learning_rate,
            lr_init=self.learning_rate_init, power_t=self.power_t, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, early_stopping=early_stopping,
            n_samples=n_samples, loss_scale=self._loss_scale(), verbose=self.verbose,
        )
        if fresh:
            rule.lr = float(self.learning_rate_init)
        sample_idx = np.arange(n_samples, dtype=np.int64)

        def order(epoch):  # scikit-learn reshuffles the previous epoch's order
            nonlocal sample_idx
            sample_idx = _sk_shuffle(sample_idx, random_state=rng)
            return sample_idx

        def validate():
            return {"val_score": self._score(X_val, y_val, sw_val)}

        if self.solver == "sgd":
            opt = SklearnSGD(momentum=float(self.momentum),
                             nesterov=bool(self.nesterovs_momentum))
        else:
            opt = SklearnAdam(float(self.beta_1), float(self.beta_2), float(self.epsilon))
        plan = self._plan(
            X_train, T_train, sw_train, epochs=1 if incremental else self.max_iter,
            batch_size=batch_size, lr=float(self.learning_rate_init), shuffle=self.shuffle,
            optimizer=opt, stopping=rule, reset_optimizer=fresh,
            order=order if self.shuffle else None,
            validate=validate if early_stopping else None,
        )
        interrupted = False
        try:
            Trainer(model.network, model.state, plan).run()
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
            interrupted = True
        self._stochastic = True
        self._publish(rule)
        if not (incremental or interrupted or rule.stopped) and rule.n_iter == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if early_stopping:
            # the best epoch's parameters, possibly from an earlier (warm-started) fit
            if rule.improved:
                self._best_params[:] = model.params
            else:
                model.params[:] = self._best_params

    # ------------------------------------------------------------------ prediction
    def _forward(self, X, check_input=True) -> np.ndarray:
        """Output-layer activations, ``(n_samples, n_outputs_)``."""
        if "model_" not in self.__dict__:  # unfitted, with assigned coefs_ and intercepts_
            self._model_from_user_layers()
        self._sync_activation()
        if check_input:
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32),
                reset=False,
            )
        # sparse X: the model's CSR kernels, never densified
        return self.model_.predict(X, n_threads=self._threads())

    def _score_with(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    @_rejects_atomically
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse input is densified).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # ------------------------------------------------------------------ pickling
    def __setstate__(self, state):
        # coefs_/intercepts_ are views made from model_ on access (pickles of an earlier
        # fastbp held none either)
        state = dict(state)
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_COMMON_NOTES = """
    Notes
    -----
    Same objective, update rules, schedules, stopping rules and initialisation as
    scikit-learn; with the same ``random_state`` the two draw the same initial weights,
    minibatch order and early-stopping split. Differences:

    - The forward and backward passes are fastbp's compiled kernels; parameters live in one
      flat buffer (``coefs_[i]`` and ``intercepts_[i]`` are views into it, so assigning into
      them changes the model).
    - Computation is in float32 when ``X`` is float32 and in float64 otherwise (as
      scikit-learn). Results equal scikit-learn's up to floating-point rounding: the kernels
      may reorder sums, and the cross-entropy is computed from the output logits without
      scikit-learn's clipping of probabilities to ``[eps, 1 - eps]``.
    - ``solver='lbfgs'`` minimises the objective with a gradient that is exactly consistent
      with it; for multi-output regression scikit-learn hands L-BFGS a loss divided by
      ``n_outputs`` with an undivided gradient. ``loss_`` is reported as scikit-learn does.
    - Sparse ``X`` (CSR, CSC) is kept sparse: the first layer runs fastbp's CSR kernels and
      the data are never densified.
    - Only scikit-learn's parameters are offered; ``fastbp.Model`` has more activations,
      losses and optimizers.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier backed by fastbp (drop-in for scikit-learn's).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'sgd': minibatch SGD with (Nesterov) momentum; 'adam': Adam; 'lbfgs': SciPy's
        L-BFGS-B on the full-batch objective.
    alpha : float, default=0.0001
        L2 penalty: ``alpha / (2 n) * sum_l ||W_l||^2`` is added to the mean loss of each
        batch of ``n`` samples (of total sample weight ``n``); biases are not penalised.
    batch_size : int or 'auto', default='auto'
        Minibatch size for the stochastic solvers; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of the step size, for ``solver='sgd'`` only: 'invscaling' sets it to
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch (``t`` = samples seen);
        'adaptive' divides it by 5 each time the stopping criterion is met, until it is
        below 1e-6.
    learning_rate_init : float, default=0.001
        Initial step size (sgd, adam).
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs (sgd, adam) or of L-BFGS iterations.
    shuffle : bool, default=True
        Shuffle the samples each epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Initial weights, shuffling and the early-stopping split.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch counts as no
        improvement; for L-BFGS the projected-gradient tolerance ``gtol``.
    verbose : bool, default=False
        Print progress.
    warm_start : bool, default=False
        Continue from the previous solution on the next ``fit``.
    momentum : float, default=0.9
        Momentum of sgd.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for sgd (when momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for binary
        problems) and stop when its accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored (sgd, adam).
    validation_fraction : float, default=0.1
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping (sgd, adam).
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    n_threads : int or None, default=None
        Numba threads for training and prediction (results do not depend on it; values
        above Numba's thread count are clamped). ``None``: Numba's thread count, except
        inside a joblib or Dask worker, where the worker's share of the cores is used so
        that parallel model searches do not oversubscribe them (``OMP_NUM_THREADS`` set
        by joblib's process workers and Dask's worker processes, ``LOKY_MAX_CPU_COUNT``,
        the cores divided by a Dask worker's threads, 1 in a joblib thread worker).
        Not a scikit-learn parameter.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels (any type: integers, strings, ...).
    loss_ : float
        The current loss (mean loss of the last epoch, including the L2 term).
    best_loss_ : float or None
        Minimum of ``loss_curve_`` (None with early stopping).
    loss_curve_ : list of float
        Loss of each epoch, each batch's loss measured before its update (sgd, adam).
    validation_scores_ : list of float or None
        Validation accuracy of each epoch (early stopping only).
    best_validation_score_ : float or None
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Weight matrices, views into the fastbp model's flat parameter buffer. Assignable
        (the whole list, or one item), also before fitting: what is assigned is what
        ``predict`` and ``partial_fit`` use (shapes checked; an unfitted classifier also
        needs ``classes_``).
    intercepts_ : list of ndarray of shape (fan_out,)
        Bias vectors, assignable as ``coefs_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has string column names.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        'softmax' for multi-class problems; 'logistic' for binary problems (a single
        logistic output unit, as scikit-learn) and multi-label problems (one logistic unit
        per label, trained with the binary cross-entropy).
    model_ : fastbp.Model
        The trained network (``coefs_`` and ``intercepts_`` are views into its
        parameters). ``model_.predict(X)`` gives the output units: ``predict_proba``'s
        columns for multi-class and multi-label problems, the probability of
        ``classes_[1]`` (one column) for binary ones. Export it with ``model_.to_onnx`` or
        ``model_.to_torch``; it is the estimator's own, so changing it changes the
        estimator (``fastbp.Model.from_sklearn(estimator)`` makes a separate copy).
    """

    __doc__ += _COMMON_NOTES

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_threads=n_threads,
        )

    def _output_and_loss(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "cross_entropy"
        return "logistic", "binary_cross_entropy"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if "_label_binarizer" not in self.__dict__ or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        T = self._label_binarizer.transform(y)
        if scipy.sparse.issparse(T):
            T = T.toarray()
        return X, np.asarray(T, dtype=X.dtype)

    def _targets_to_y(self, T):
        return self._label_binarizer.inverse_transform(T)

    def _prepare_outputs(self, n_outputs):
        if "_label_binarizer" in self.__dict__:
            return
        if "classes_" not in self.__dict__:
            raise NotFittedError(
                "this MLPClassifier was given coefs_ and intercepts_ but not classes_, the "
                "labels its outputs stand for; assign classes_ too (e.g. "
                "est.classes_ = np.array([0, 1, 2])), or call partial_fit(X, y, "
                "classes=...) to train from the assigned weights.")
        binarizer = LabelBinarizer().fit(self.classes_)
        want = 1 if binarizer.y_type_ == "binary" else len(binarizer.classes_)
        if n_outputs != want:
            raise ValueError(
                f"the assigned coefs_ have {n_outputs} outputs, but classes_ "
                f"{list(binarizer.classes_)} need {want} (one logistic output for two "
                "classes, one softmax output per class for more).")
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, accuracy_score)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (a 0/1 indicator matrix for multi-label problems).
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    @available_if(lambda est: est._check_solver())
    @_rejects_atomically
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit (e.g. ``np.unique(y_all)``). Required
            on the first call, may be omitted afterwards.

        Returns
        -------
        self : object
        """
        first_call = "_label_binarizer" not in self.__dict__
        if first_call and classes is None and "classes_" in self.__dict__:
            classes = self.classes_  # assigned with coefs_ and intercepts_
        if first_call:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        elif classes is not None and not np.array_equal(
            self.classes_, unique_labels(classes)
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the first call to partial_fit; "
                f"it was {self.classes_!r}."
            )
        if first_call:
            self.classes_ = self._label_binarizer.classes_
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Log of the probability estimates, ``log(predict_proba(X))``.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_`` (for binary problems
            ``[1 - p, p]``; for multi-label problems the probability of each label).
        """
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor backed by fastbp (drop-in for scikit-learn's).

    Squared error with an identity output, or Poisson deviance with an exp output;
    single- and multi-output targets.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        ``'squared_error'``: half squared error, identity output. ``'poisson'``: half
        Poisson deviance with an exponential output (log link); targets must be ``>= 0``.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, \
n_iter_no_change, max_fun, n_threads
        As ``MLPClassifier`` (early stopping scores the validation set with R^2).

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, \
coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_, \
out_activation_
        As ``MLPClassifier``; the squared-error loss is reported as scikit-learn does,
        ``1/2`` of the mean over samples *and outputs* of the squared residual.
    model_ : fastbp.Model
        The trained network (squared error with identity output, or Poisson with exp
        output); ``model_.predict(X)`` is
        ``predict(X)`` as an ``(n_samples, n_outputs_)`` array. As ``MLPClassifier``.
    """

    __doc__ += _COMMON_NOTES

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_threads=n_threads,
        )

    def _output_and_loss(self):
        if self.loss == "poisson":  # log link, half Poisson deviance (as scikit-learn)
            return "exp", "poisson"
        return "identity", "squared_error"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        if scipy.sparse.issparse(y):
            raise TypeError("y is a sparse matrix; MLPRegressor takes dense targets (only X "
                            "may be sparse). Pass y.toarray().")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        T = y.reshape(-1, 1) if y.ndim == 1 else y
        T = np.asarray(T, dtype=X.dtype)
        if self.loss == "poisson":
            check_poisson_targets(T, "y")
        return X, T

    def _targets_to_y(self, T):
        return T

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, r2_score)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    @available_if(lambda est: est._check_solver())
    @_rejects_atomically
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
