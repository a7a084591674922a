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
