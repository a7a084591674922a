"""What ``MLPClassifier`` and ``MLPRegressor`` share: scikit-learn's parameters, checked
(``_PARAMS``), and its fit recipe -- the stochastic solvers' epochs with their stopping rule
(``_rule``), or L-BFGS -- run by fastbp's one training loop on the estimator's ``model_``;
and the rollback of a rejected call.
"""

from __future__ import annotations

import functools
import numbers

import numba
import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _sk_shuffle
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import _check_sample_weight, validate_data

from .._errors import DivergenceError, warn_from_caller
from .._threads import kernel_threads, worker_threads
from .._training.lbfgs import objective as lbfgs_objective
from .._training.loop import Trainer
from .._training.plan import FitPlan
from .._validation.arrays import check_csr
from .._validation.params import Bool, Choice, Int, Real, check_params
from ..model import ACTIVATION_ALIASES, UNSUPPORTED_ACTIVATIONS, Model
from ..optim import LBFGS, SklearnAdam, SklearnSGD
from ..schedules import Constant
from ._layers import Layers
from ._rule import SklearnRule, schedule_for

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_SOLVERS = ("sgd", "adam", "lbfgs")
_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: rows per chunk when evaluating the full-batch (L-BFGS) objective
_LBFGS_CHUNK = 1024


# ------------------------------------------------------------------------- validation
#: scikit-learn's constraints on the estimators' hyperparameters, in fastbp's vocabulary
_PARAMS = {
    # Keras's and PyTorch's names too, in any case ("ReLU", "sigmoid"), as fastbp.Model
    "activation": Choice(_ACTIVATIONS, aliases=ACTIVATION_ALIASES,
                         unsupported=UNSUPPORTED_ACTIVATIONS),
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


def _arguments(local_names: dict) -> dict:
    """An estimator's ``__init__`` arguments, from its ``locals()``."""
    return {k: v for k, v in local_names.items() if k not in ("self", "__class__")}


def _column_to_1d(y):
    """A ``(n, 1)`` target as ``(n,)``, with scikit-learn's ``DataConversionWarning``
    (issued at the user's line, not inside fastbp, as ``column_or_1d`` would)."""
    if y.ndim == 2 and y.shape[1] == 1:
        warn_from_caller(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().", DataConversionWarning)
        return y.ravel()
    return y


class _BaseMLP(BaseEstimator):
    """Shared implementation of ``MLPClassifier`` and ``MLPRegressor``."""

    coefs_ = Layers(0)
    intercepts_ = Layers(1)

    def __init__(self, *, loss, **params):
        # scikit-learn's parameters, set as given (the subclasses' signatures list them;
        # ``loss`` is the classifier's too, fixed, as in scikit-learn)
        self.loss = loss
        for name, value in params.items():
            setattr(self, name, value)

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

    def _initialize(self, n_outputs, layer_units, dtype, rng, assigned=False):
        """Fresh fitted state: the fastbp ``Model`` and scikit-learn's bookkeeping.

        ``assigned``: start from the ``coefs_`` and ``intercepts_`` assigned to the unfitted
        estimator (checked here against ``layer_units``) instead of scikit-learn's random
        initialisation."""
        layers = Layers.take(self, layer_units, dtype) if assigned else None
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
        factor = 2.0 if _PARAMS["activation"](self.activation, "") == "logistic" else 6.0
        for i, (W, b) in enumerate(zip(self.model_.weights, self.model_.biases, strict=True)):
            if layers is not None:
                W[...] = layers[0][i].T
                b[...] = layers[1][i]
                continue
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, (fan_in, fan_out)).T
            b[...] = rng.uniform(-bound, bound, fan_out)
        if hasattr(self, "_assigned"):  # now the model's
            del self._assigned
        self._best_params = self.model_.params.copy()
        self._stochastic = False
        self._rule = SklearnRule()
        self._rule.reset(early_stopping=bool(self.early_stopping))
        if self.solver in _STOCHASTIC_SOLVERS:
            self._publish(self._rule)

    def _sync_activation(self) -> None:
        """scikit-learn reads ``activation`` at every call: a new one applies to the fitted
        weights (a warm start, ``partial_fit``, ``predict``), as it does there."""
        name = check_params({"activation": self.activation}, {"activation": _PARAMS["activation"]},
                            prefix=f"{type(self).__name__} ",
                            error=InvalidParameterError)["activation"]
        if any(a != name for a in self.model_.activations):
            self.model_.set_activation(name)

    # ------------------------------------------------------------------ assigned layers
    def __sklearn_is_fitted__(self) -> bool:
        # assigned weights count, so that predict can say what else it needs
        return hasattr(self, "model_") or Layers.assigned(self)

    def _model_from_assigned_layers(self) -> None:
        """An unfitted estimator given ``coefs_`` and ``intercepts_``: the fitted state
        that ``predict`` (and later ``partial_fit``) needs, built from them."""
        coefs, intercepts = Layers.take(self)
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        self._prepare_outputs(units[-1])
        dtype = (np.float32 if all(a.dtype == np.float32 for a in coefs + intercepts)
                 else np.float64)
        self._initialize(units[-1], units, dtype, None, assigned=True)
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
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        # partial_fit and a warm start train from assigned weights
        assigned = first_pass and (incremental or self.warm_start) and Layers.assigned(self)
        X, T = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        layer_units = [X.shape[1]] + hidden + [T.shape[1]]
        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(T.shape[1], layer_units, X.dtype, rng, assigned)
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
        kw.setdefault("schedule", Constant())
        return FitPlan(X=X, T=T, SW=sw, l2=float(self.alpha), weight_norm="weights",
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
            warn_from_caller(
                f"lbfgs failed to converge after {res.nit} iteration(s) (status={res.status}): "
                f"{res.message}. Increase the number of iterations (max_iter) or scale the "
                "data.",
                ConvergenceWarning,
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
                warn_from_caller(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    UserWarning,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        rule = self._rule
        rule.configure(
            tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            early_stopping=early_stopping, n_samples=n_samples, loss_scale=self._loss_scale(),
            verbose=self.verbose,
        )
        if fresh:  # scikit-learn makes a new optimizer, with its learning rate
            rule.base_lr = float(self.learning_rate_init)
            schedule = schedule_for(self.solver, self.learning_rate, self.power_t, rule.t)
        else:  # partial_fit continues it
            schedule = model.schedule
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
            batch_size=batch_size, lr=rule.base_lr, shuffle=self.shuffle, optimizer=opt,
            schedule=schedule, stopping=rule, reset_optimizer=fresh,
            order=order if self.shuffle else None,
            validate=validate if early_stopping else None,
        )
        interrupted = False
        try:
            Trainer(model.network, model.state, plan).run()
        except KeyboardInterrupt:
            warn_from_caller("Training interrupted by user.", UserWarning)
            interrupted = True
        self._stochastic = True
        self._publish(rule)
        if not (incremental or interrupted or rule.stopped) and rule.n_iter == self.max_iter:
            warn_from_caller(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
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
        if not hasattr(self, "model_"):  # unfitted, with assigned coefs_ and intercepts_
            self._model_from_assigned_layers()
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
            The input data (sparse input stays sparse: the first layer runs fastbp's CSR
            kernels).
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
