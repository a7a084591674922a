"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor on fastbp."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation.arrays import check_poisson_targets
from ._base import _COMMON_NOTES, _arguments, _BaseMLP, _column_to_1d, _rejects_atomically


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
        super().__init__(**_arguments(locals()))

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
        y = _column_to_1d(y)
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
