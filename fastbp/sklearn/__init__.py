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
scikit-learn is an optional dependency of fastbp: it is imported by this package only.

The package: ``_base`` (parameters, the fit recipe, rollback of a rejected call),
``_classifier``, ``_regressor``, ``_layers`` (the assignable ``coefs_`` and
``intercepts_``) and ``_rule`` (scikit-learn's epoch bookkeeping as the training loop's
stopping rule, and its learning-rate rules as schedules).
"""

import sklearn

if tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit()) < (1, 6):
    raise ImportError(
        f"fastbp.sklearn needs scikit-learn >= 1.6 (for validate_data and estimator tags); "
        f"found {sklearn.__version__}. Upgrade with: pip install -U 'scikit-learn>=1.6'"
    )

from ._classifier import MLPClassifier  # noqa: E402
from ._regressor import MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor"]
