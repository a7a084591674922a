"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier on fastbp."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.base import ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _COMMON_NOTES, _arguments, _BaseMLP, _column_to_1d, _rejects_atomically


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier backed by fastbp (drop-in for scikit-learn's).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers. Keras's and PyTorch's names are accepted too, in
        any case (``'ReLU'``, ``'sigmoid'``, ``'Tanh'``, ``'linear'``); the parameter keeps
        the name given, the fitted model scikit-learn's (``model_.activations``).
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
        ``predict``, ``partial_fit`` and ``fit`` with ``warm_start=True`` use. On a fitted
        estimator shapes are checked at assignment; before fitting what is assigned is kept
        as given (scikit-learn's ``coefs_ = [0] * 2`` then item by item works) and checked
        when used (an unfitted classifier also needs ``classes_``).
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
        super().__init__(**_arguments(locals()), loss="log_loss")

    def _output_and_loss(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "cross_entropy"
        return "logistic", "binary_cross_entropy"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        y = _column_to_1d(y)
        if not hasattr(self, "_label_binarizer") or (not self.warm_start and not incremental):
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
        if hasattr(self, "_label_binarizer"):
            return
        if not hasattr(self, "classes_"):
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
        first_call = not hasattr(self, "_label_binarizer")
        if first_call and classes is None and hasattr(self, "classes_"):
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
