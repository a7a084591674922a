"""Ctrl-C during training: deferred to the next safe point.

While ``fit`` runs in the main thread with Python's default SIGINT handler installed, a
first SIGINT only sets a flag; the training loop checks it between its compiled calls
(each bounded to a fraction of a second) and at the end of each epoch, and raises
``KeyboardInterrupt`` there, with the model at the last completed step and its history
consistent. A second SIGINT raises at once. Any other handler (or a thread other than the
main thread) is left alone; a ``KeyboardInterrupt`` raised another way (for example by a
callback) is handled by the same bookkeeping.
"""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    """Context manager; ``pending`` is True once SIGINT arrived during the block."""

    def __init__(self):
        self.pending = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def __enter__(self) -> DeferredInterrupt:
        self.pending = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.pending and exc_type is None:
            # arrived after the last safe point: training is complete and consistent
            raise KeyboardInterrupt
