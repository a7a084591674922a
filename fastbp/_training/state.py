"""The training state of a model: what training adds to its network and keeps between calls.

``TrainingState`` holds the optimizer (a ``fastbp.optim`` description) with its state rows
and step counter, the learning-rate schedule with its progress, the shuffling generator and
the ``History``. The training engine (``fastbp._training.loop``) reads and writes it; the
facade exposes it as ``Model.state``; ``fastbp._io`` saves and restores it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import ItemsView, ValuesView
from types import MappingProxyType

import numpy as np

from ..kernels._layout import OptimizerArgs
from ..optim import LBFGS
from .stall import StallCheck

#: ``SeedSequence(seed, spawn_key=(k, ...))`` streams drawn from a model's seed
SEED_INIT = 0  # initial weights
SEED_SHUFFLE = 1  # the shuffling generator
SEED_DROPOUT = 2  # the dropout masks' seed
SEED_VALIDATION_SPLIT = 3  # the rows ``validation_split`` holds out
SEED_SHARD_ORDER = 4  # ``fastbp.distributed``: (4, epoch, rank), a rank's row order


def seed_stream(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of stream ``key`` of ``seed`` (see the ``SEED_*`` table)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def _read_only(self, *args, **kwargs):
    raise TypeError(
        "a History is read-only (training records it); copy it first, e.g. "
        "d = dict(history), and change the copy."
    )


class History(dict):
    """Per-epoch training record: a read-only mapping of metric name -> per-epoch list.

    ``history["loss"][i]`` is the mean training loss of the ``i``-th kept epoch, measured
    on each minibatch before its update (as Keras and PyTorch loops usually report it);
    ``history["time"]`` holds each epoch's wall-clock seconds, ``history["lr"]`` its
    learning rate; ``accuracy`` (classification), ``val_loss`` and ``val_accuracy`` (with
    validation data) where they apply. Every list has one entry per kept epoch, ``NaN``
    where a metric was not recorded, so ``dict(history)`` and
    ``pandas.DataFrame(history)`` (a row per epoch, a column per metric) work as they are.

    It is a ``collections.abc.Mapping`` (a ``dict`` subclass, which is what
    ``pandas.DataFrame`` takes as columns) that refuses changes: item assignment,
    ``update``, ``pop`` and the like raise ``TypeError``, and indexing, ``values()``,
    ``items()`` and ``dict(history)`` hand out copies of the lists.

    Attributes
    ----------
    epochs : int
        Epochs trained (over all calls since the model was built or reset), dropped ones
        included.
    first_epoch : int
        The model-wide index of the first kept epoch (0 unless old epochs were dropped):
        ``history["loss"][i]`` belongs to epoch ``first_epoch + i``.
    max_epochs : int or None, default ``History.MAX_EPOCHS`` (10000)
        How many epochs the history keeps. At the end of every successful training call
        the oldest epochs are dropped until at most ``max(max_epochs, epochs of that
        call)`` remain, so a model trained online with one ``fit``/``partial_fit`` call per
        sample keeps a bounded window of its latest calls, while one long ``fit`` still
        returns all of its epochs. ``None`` keeps everything.
    metrics : mapping of str to list
        A read-only view of the live lists (no copies: ``history.metrics["loss"][-1]``
        costs the same however long the history is; do not modify the lists). Assigning
        a dict of equal-length lists to ``metrics`` replaces the record.
    events : list of dict
        Interruptions and divergences (the latest ``MAX_EVENTS``), each a dict with
        ``event`` ("interrupted" or "diverged"), ``epoch`` (index of the epoch it happened
        in), ``batch`` (batches of that epoch whose updates were kept), ``n_batches``,
        ``step`` (optimizer steps kept) and for divergence ``reason``, ``bad_batch`` and
        ``restored``.
    """

    #: default ``max_epochs``
    MAX_EPOCHS = 10_000
    #: most events kept (the latest)
    MAX_EVENTS = 1_000

    def __init__(self):
        super().__init__()
        self._live: dict[str, list] = {"loss": [], "time": []}  # the lists, by name
        self._sync()
        self.events: list[dict] = []
        self.first_epoch = 0
        self.max_epochs: int | None = self.MAX_EPOCHS

    # ------------------------------------------------------------------ the mapping
    def __getitem__(self, key: str) -> list:
        try:
            return list(self._live[key])
        except KeyError:
            raise KeyError(f"{key!r} is not in the history; it has {list(self)}.") from None

    def __iter__(self):  # defined here, so dict(history) copies through __getitem__
        return dict.__iter__(self)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        return ItemsView(self)

    def values(self):
        return ValuesView(self)

    def copy(self) -> dict:
        """A plain ``dict`` of copies of the lists."""
        return dict(self)

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self):
        return (_rebuild_history, (self._live, self.events, self.first_epoch,
                                   self.max_epochs))

    def _sync(self) -> None:
        """The dict's own entries: the same list objects as ``_live`` (read by C code
        such as ``json``; Python code reads ``_live``)."""
        dict.clear(self)
        dict.update(self, self._live)

    @property
    def metrics(self) -> MappingProxyType:
        return MappingProxyType(self._live)

    @metrics.setter
    def metrics(self, value: dict) -> None:
        value = {str(k): list(v) for k, v in dict(value).items()}
        value.setdefault("loss", [])
        value.setdefault("time", [])
        if len({len(v) for v in value.values()}) > 1:
            raise ValueError("history metrics must be lists of equal length (one value per "
                             f"epoch); got lengths {[len(v) for v in value.values()]}.")
        self._live = value
        self._sync()

    # ------------------------------------------------------------------ recording
    def append(self, **values) -> None:
        """Add one epoch; metrics absent from this epoch (or from earlier ones) read NaN,
        so every list has one entry per kept epoch."""
        live = self._live
        n = len(live["loss"])
        new = False
        for key, value in values.items():
            if key not in live:
                live[key] = [float("nan")] * n
                new = True
            live[key].append(value)
        for key, seq in live.items():
            if key not in values:
                seq.append(float("nan"))
        if new:
            self._sync()

    def truncate(self, epochs: int, events: int, keys=None) -> None:
        """Forget everything after the first ``epochs`` epochs and ``events`` events, and
        the metrics not in ``keys`` (when given)."""
        keep = max(0, epochs - self.first_epoch)
        for seq in self._live.values():
            del seq[keep:]
        del self.events[events:]
        if keys is not None and any(k not in keys for k in self._live):
            self._live = {k: v for k, v in self._live.items() if k in keys}
            self._sync()

    def trim(self, keep: int | None = None) -> None:
        """Drop the oldest epochs until at most ``max(keep, max_epochs)`` remain, and the
        oldest events beyond ``MAX_EVENTS`` (the training loop calls this after each
        successful call, with ``keep`` the epochs that call recorded)."""
        if self.max_epochs is None:
            return
        limit = max(int(self.max_epochs), keep or 0)
        drop = len(self._live["loss"]) - limit
        if drop > 0:
            for seq in self._live.values():
                del seq[:drop]
            self.first_epoch += drop
        if len(self.events) > self.MAX_EVENTS:
            del self.events[:len(self.events) - self.MAX_EVENTS]

    @property
    def epochs(self) -> int:
        return self.first_epoch + len(self._live["loss"])

    # ------------------------------------------------------------------ plotting
    def plot(self, ax=None, metrics=None):
        """Draw the training curves with matplotlib.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; default: a new figure's axes.
        metrics : str or sequence of str, optional
            The metrics to draw; default ``loss`` and, when recorded, ``val_loss``.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on: one line per metric against the epoch number.
        """
        try:
            import matplotlib  # noqa: F401 - imported here only: an optional dependency
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, which is not installed; install it with "
                "pip install matplotlib (or read the values with dict(history))."
            ) from None
        if metrics is None:
            metrics = [k for k in ("loss", "val_loss") if k in self.metrics
                       and not all(math.isnan(v) for v in self.metrics[k])] or ["loss"]
        elif isinstance(metrics, str):
            metrics = [metrics]
        metrics = list(metrics)
        unknown = [k for k in metrics if k not in self.metrics]
        if unknown:
            raise ValueError(
                f"metrics={unknown!r} are not in the history; it records "
                f"{list(self.metrics)}."
            )
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots()
        x = range(self.first_epoch, self.epochs)
        for key in metrics:
            ax.plot(x, self.metrics[key], label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(", ".join(metrics))
        ax.legend()
        return ax

    def __repr__(self) -> str:
        last = self.metrics["loss"][-1] if self.metrics["loss"] else None
        extra = f", events={len(self.events)}" if self.events else ""
        if self.first_epoch:
            extra += f", first_epoch={self.first_epoch}"
        return f"History(epochs={self.epochs}, last_loss={last}{extra})"


def _rebuild_history(metrics, events, first_epoch, max_epochs) -> History:
    h = History()
    h.metrics = metrics
    h.events = list(events)
    h.first_epoch = first_epoch
    h.max_epochs = max_epochs
    return h


class TrainingState:
    """Optimizer, optimizer state and step counter, schedule, shuffling generator, history.

    Attributes
    ----------
    optimizer : fastbp.optim.Optimizer or None
        The model's own copy of the current optimizer (``None`` before the first fit).
    opt_state : (rows, n_params) float array
        The optimizer's state (momentum buffers, moment estimates; rows in
        ``fastbp.kernels._updates``), kept while the optimizer kind is unchanged.
    counters : (1,) int64 array
        ``[t]``, optimizer steps taken with this state (L-BFGS: iterations).
    schedule : fastbp.schedules.Schedule or None
        The current schedule with its progress.
    shuffle_rng : numpy.random.Generator
        Draws each epoch's row order.
    history : History
    seconds_per_batch : dict
        Measured duration of one batch per batch size (sizes the engine's compiled calls;
        not saved).
    stall : fastbp._training.stall.StallCheck
        The no-progress check's figures (kept across calls; not saved).
    """

    def __init__(self, seed: int, n_params: int, dtype):
        self.seed = int(seed)
        self.n_params = int(n_params)
        self.dtype = np.dtype(dtype)
        self.reset()

    def reset(self) -> None:
        """No optimizer or schedule, step 0, a fresh shuffling generator, empty history."""
        self.shuffle_rng = np.random.Generator(
            np.random.PCG64(seed_stream(self.seed, SEED_SHUFFLE)))
        old = getattr(self, "history", None)
        self.history = History()
        if old is not None:  # a setting of the user's, not training state
            self.history.max_epochs = old.max_epochs
        self.optimizer = None
        self.opt_state = np.zeros((0, self.n_params), dtype=self.dtype)
        self.counters = np.zeros(1, dtype=np.int64)
        self.schedule = None
        self.seconds_per_batch: dict[int, float] = {}
        self.stall = StallCheck()

    @property
    def steps(self) -> int:
        return int(self.counters[0])

    def adopt_optimizer(self, opt) -> None:
        """Make ``opt`` the current optimizer; its state is kept when the kind is unchanged
        and started afresh (zeros, step 0) when it changes."""
        cur = self.optimizer
        if cur is None or type(cur).kind != type(opt).kind or (
            isinstance(cur, LBFGS) != isinstance(opt, LBFGS)
        ):
            self.opt_state = opt.init_state(self.n_params, self.dtype)
            self.counters[0] = 0
        if opt is not cur:
            self.optimizer = copy.deepcopy(opt)

    def optimizer_args(self) -> OptimizerArgs:
        """The current (step) optimizer as the kernels take it: its code and
        hyperparameters, and this state's own ``opt_state`` and ``counters`` (not copies)."""
        opt = self.optimizer
        return OptimizerArgs(int(opt.kind), opt.hyper(), self.opt_state, self.counters)

    def adopt_schedule(self, sched, as_given: bool = False) -> None:
        """Make ``sched`` the current schedule; an equal schedule keeps its progress, another
        starts afresh, or (``as_given``) from the progress ``sched`` holds."""
        if sched is self.schedule:
            return
        if as_given or self.schedule is None or self.schedule != sched:
            self.schedule = copy.deepcopy(sched)
            if not as_given:
                self.schedule.reset()

    # ------------------------------------------------------------------ transactions
    def snapshot(self, params: np.ndarray, into: dict | None = None) -> dict:
        """Everything a training call can change, so that ``restore`` can undo the call.

        ``into``: an earlier snapshot whose array copies are reused when their shapes
        still fit (no allocation)."""
        def keep(old, new):
            if old is not None and old.shape == new.shape and old.dtype == new.dtype:
                np.copyto(old, new)
                return old
            return new.copy()

        return {
            "params": keep(into and into["params"], params),
            "optimizer": self.optimizer,
            "opt_state_obj": self.opt_state,
            "opt_state": keep(into and into["opt_state"], self.opt_state),
            "step": int(self.counters[0]),
            "schedule_obj": self.schedule,
            "schedule": copy.deepcopy(self.schedule),
            "rng": self.shuffle_rng.bit_generator.state,  # a new dict at every read
            "history": self.history,
            "epochs": self.history.epochs,
            "events": len(self.history.events),
            "history_keys": list(self.history.metrics),
        }

    def restore(self, snap: dict, params: np.ndarray) -> None:
        """Put back the state of ``snapshot`` (buffers are restored in place, so views and
        kernel arguments handed out before stay valid)."""
        params[...] = snap["params"]
        self.optimizer = snap["optimizer"]
        self.opt_state = snap["opt_state_obj"]
        self.opt_state[...] = snap["opt_state"]
        self.counters[0] = snap["step"]
        if snap["schedule_obj"] is not None:
            snap["schedule_obj"].__dict__.update(snap["schedule"].__dict__)
        self.schedule = snap["schedule_obj"]
        self.shuffle_rng.bit_generator.state = snap["rng"]
        self.history = snap["history"]
        self.history.truncate(snap["epochs"], snap["events"], snap["history_keys"])
