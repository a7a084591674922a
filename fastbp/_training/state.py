"""The training state of a model: what training adds to its network and keeps between calls.

``TrainingState`` holds the optimizer (a ``fastbp.optim`` description) with its state rows
and step counter, the learning-rate schedule with its progress, the shuffling generator and
the ``History``. The training engine (``fastbp._training.loop``) reads and writes it; the
facade exposes it as ``Model.state``; ``fastbp._io`` saves and restores it.
"""

from __future__ import annotations

import copy

import numpy as np

from ..optim import LBFGS

#: ``SeedSequence(seed, spawn_key=(k, ...))`` streams drawn from a model's seed
SEED_INIT = 0  # initial weights
SEED_SHUFFLE = 1  # the shuffling generator
SEED_DROPOUT = 2  # the dropout masks' seed
SEED_VALIDATION_SPLIT = 3  # the rows ``validation_split`` holds out
SEED_SHARD_ORDER = 4  # ``fastbp.distributed``: (4, epoch, rank), a rank's row order


def seed_stream(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of stream ``key`` of ``seed`` (see the ``SEED_*`` table)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


class History:
    """Per-epoch training record.

    ``history["loss"][e]`` is the mean training loss of epoch ``e``, measured on each
    minibatch before its update (as Keras and PyTorch loops usually report it);
    ``history["time"][e]`` its wall-clock seconds, ``history["lr"][e]`` its learning rate;
    ``accuracy`` (classification), ``val_loss`` and ``val_accuracy`` (with validation data)
    where they apply. ``history.epochs`` counts the epochs.
    """

    def __init__(self):
        self.metrics: dict[str, list] = {"loss": [], "time": []}
        #: interruptions and divergences, each a dict with ``event`` ("interrupted" or
        #: "diverged"), ``epoch`` (index of the epoch it happened in), ``batch`` (batches of
        #: that epoch whose updates were kept), ``n_batches``, ``step`` (optimizer steps
        #: kept) and for divergence ``reason``, ``bad_batch`` and ``restored``
        self.events: list[dict] = []

    def append(self, **values) -> None:
        """Add one epoch; metrics absent from this epoch (or from earlier ones) read NaN,
        so every list has one entry per epoch."""
        n = self.epochs
        for key, value in values.items():
            self.metrics.setdefault(key, [float("nan")] * n).append(value)
        for key, seq in self.metrics.items():
            if key not in values:
                seq.append(float("nan"))

    def truncate(self, epochs: int, events: int) -> None:
        """Forget everything after the first ``epochs`` epochs and ``events`` events."""
        for seq in self.metrics.values():
            del seq[epochs:]
        del self.events[events:]

    def __getitem__(self, key: str) -> list:
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def keys(self):
        return self.metrics.keys()

    @property
    def epochs(self) -> int:
        return len(self.metrics["loss"])

    def __repr__(self) -> str:
        last = self.metrics["loss"][-1] if self.epochs else None
        extra = f", events={len(self.events)}" if self.events else ""
        return f"History(epochs={self.epochs}, last_loss={last}{extra})"


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
        self.history = History()
        self.optimizer = None
        self.opt_state = np.zeros((0, self.n_params), dtype=self.dtype)
        self.counters = np.zeros(1, dtype=np.int64)
        self.schedule = None
        self.seconds_per_batch: dict[int, float] = {}

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

    def adopt_schedule(self, sched) -> None:
        """Make ``sched`` the current schedule; an equal schedule keeps its progress."""
        if sched is not self.schedule and (self.schedule is None or self.schedule != sched):
            self.schedule = copy.deepcopy(sched)
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
            "rng": copy.deepcopy(self.shuffle_rng.bit_generator.state),
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
        self.history.truncate(snap["epochs"], snap["events"])
        for key in list(self.history.metrics):
            if key not in snap["history_keys"]:
                del self.history.metrics[key]
