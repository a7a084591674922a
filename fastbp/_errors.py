"""Exceptions and warnings raised by fastbp beyond ``TypeError``/``ValueError``."""


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    Raised by ``Model.fit``/``partial_fit`` (with ``on_divergence="raise"``, the default)
    after the parameters and optimizer state were restored to the last finite state.
    ``event`` is the record appended to ``model.history.events``.
    """

    def __init__(self, message: str, event: dict | None = None):
        super().__init__(message)
        self.event = event


class DivergenceWarning(RuntimeWarning):
    """Training diverged and stopped (``on_divergence="warn"``); see ``DivergenceError``."""


class ModelFileError(ValueError):
    """A file given to ``Model.load`` is not a valid fastbp model file (truncated, corrupted,
    tampered with, of an unsupported version, or not a fastbp file at all)."""


class ConvergenceWarning(UserWarning):
    """Training is making no progress (``Model.fit``/``partial_fit``, classification).

    Issued once per model (until ``reset=True``) when the loss stays at that of predicting
    the class frequencies and the accuracy at that of the most frequent class, typically
    because the inputs are not scaled or the learning rate is far too high; the message
    names the likely cause. The same idea as scikit-learn's
    ``sklearn.exceptions.ConvergenceWarning`` (both are ``UserWarning`` subclasses).
    Silence it with ``warnings.filterwarnings("ignore", category=fastbp.ConvergenceWarning)``.
    """


def warn_from_caller(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside the fastbp package (the
    user's call, or the library that called fastbp, such as scikit-learn's
    ``GridSearchCV``), however deep inside fastbp it is issued and whatever wraps the
    public method. Every warning fastbp issues goes through here, so its file and line are
    the caller's (and ``-W error`` / ``filterwarnings`` by module work on the user's code).
    """
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 1, sys._getframe(0)  # stacklevel 1 is this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
