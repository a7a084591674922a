"""Data-parallel training over MPI (mpi4py).

Every rank holds a shard of the data and a replica of the model. Each step, every rank
computes the gradient of its rows, the flat ``grads`` buffer is summed across ranks with
**one** ``Allreduce`` (the flat layout makes the whole gradient one contiguous message),
and every rank applies the same optimizer update to the same parameters, so the replicas
stay bit-identical (an MPI sum gives the same bits on every rank).

Data-order rule
---------------
Rank ``r`` holds ``n_r`` rows (its shard; ``shard`` splits an array into contiguous blocks
of ``n // P`` or ``n // P + 1`` rows, in rank order). In epoch ``e`` (counted over the
model's whole history) rank ``r`` visits its shard in the order ``shard_order(seed, e, r,
n_r)``: a permutation drawn from ``SeedSequence(seed, spawn_key=(4, e, r))``, or
``arange(n_r)`` without shuffling. Step ``k`` of the epoch takes rows ``k*b .. k*b + b - 1``
of that order on every rank (``b`` = ``batch_size``, the per-rank batch; a rank whose
shard is used up contributes no rows), so the *global* batch of step ``k`` is the
concatenation, in rank order, of the ranks' local batches ``k``, and the epoch has
``max_r ceil(n_r / b)`` steps on every rank.

Each rank scales its output delta by ``1 / M_k``, with ``M_k`` the rows of global batch
``k`` (all ranks; every rank knows every ``n_r``), so the summed gradient is exactly the
mean-loss gradient of the global batch. Hence training on ``P`` ranks with batch ``b``
equals single-process training with batch ``P*b`` on the rows in the order
``equivalent_order(...)`` (to floating-point tolerance: the sum over the batch is split
into per-rank partial sums) whenever every shard has the same number of batches
``ceil(n_r / b)`` -- e.g. equal shards, or shards of ``n // P`` and ``n // P + 1`` rows
with ``b`` not dividing ``n // P``; otherwise every step still averages over
exactly the rows taken in that step, with variable global batch sizes at the end of the
epoch. Dropout masks use a per-rank seed (independent masks on every rank), so with
dropout the equivalence holds in distribution, not value by value.

Local SGD (``average_every=k > 1``): ranks take ``k`` optimizer steps on their own local
batches (mean over ``b`` rows) without communicating, then average the parameters with one
``Allreduce``; the end of every epoch is also a synchronisation point. Communication drops
by a factor ``k``, at the price of (i) updates computed from stale, rank-local parameters
(convergence per step is slower and may need a smaller learning rate for large ``k``),
(ii) no equivalence with single-process training, and (iii) optimizer state
(momentum/Adam moments) that stays rank-local and differs between ranks (rank 0's is the
one that is saved). Use it only when the network, not the compute, limits the step rate.

Roles and failures
------------------
Rank 0 owns validation, early stopping, callbacks, the progress bar and saving
(``save``). At the end of every epoch rank 0 broadcasts the epoch's metrics and its
stop decision, so all ranks record the same history, step the same learning-rate
schedule and stop together. A Python exception during argument checking or rank 0's
end-of-epoch bookkeeping is re-raised on the failing rank and raised as
``DistributedError`` on the others. An exception inside the step loop (where the other
ranks are blocked in ``Allreduce`` and cannot be told) prints the rank's traceback and
calls ``MPI_Abort``, which terminates every rank instead of letting them hang; a
watchdog thread also aborts a rank that has made no progress for ``timeout`` seconds
(default 600; a lost or stuck peer, or a rank that failed before calling ``fit``).
"""

from __future__ import annotations

import math
import numbers
import sys
import threading
import time
import traceback

import numpy as np

from ._training.loop import Trainer, _Diverged
from ._training.passes import is_csr
from ._training.plan import FIT_DEFAULTS as D
from ._training.plan import check_fit, size_plan
from ._training.state import SEED_SHARD_ORDER, History, seed_stream
from ._validation.params import Int, Real, check_params
from .kernels._drivers import all_finite, apply_step, local_step_gradient
from .model import Model
from .optim import LBFGS

__all__ = [
    "DistributedError",
    "equivalent_order",
    "fit",
    "numba_compile_stats",
    "save",
    "shard",
    "shard_bounds",
    "shard_order",
    "world",
]


class DistributedError(RuntimeError):
    """Raised on every rank when another rank failed in a collective phase of training."""


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "fastbp.distributed needs mpi4py and an MPI library; install them with "
            "pip install 'fastbp[mpi]' (mpi4py and the mpich wheel, which provides mpiexec)."
        ) from None
    return MPI


def world():
    """``MPI.COMM_WORLD`` (imports mpi4py, with a helpful error when it is missing)."""
    return _mpi().COMM_WORLD


# ---------------------------------------------------------------------- data-order rule
def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank`` when ``n`` rows are split over ``size`` ranks in
    contiguous blocks (``np.array_split`` sizes: the first ``n % size`` ranks get one more)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def shard(*arrays, comm=None):
    """This rank's contiguous block of rows of each array (``shard_bounds``).

    ``X_local, y_local = shard(X, y)``; with one array, returns that array's block.
    """
    comm = world() if comm is None else comm
    out = []
    for a in arrays:
        lo, hi = shard_bounds(len(a), comm.Get_rank(), comm.Get_size())
        out.append(a[lo:hi])
    return out[0] if len(out) == 1 else tuple(out)


def shard_order(seed: int, epoch: int, rank: int, n_local: int, shuffle: bool = True):
    """Row order of rank ``rank``'s shard in epoch ``epoch`` (int64 array of ``n_local``).

    A permutation from ``SeedSequence(seed, spawn_key=(4, epoch, rank))``, or the identity
    without shuffling. ``epoch`` counts the model's epochs over all ``fit`` calls, so
    continued or resumed training keeps drawing new orders.
    """
    if not shuffle:
        return np.arange(n_local, dtype=np.int64)
    ss = seed_stream(seed, SEED_SHARD_ORDER, epoch, rank)
    return np.random.Generator(np.random.PCG64(ss)).permutation(n_local).astype(np.int64)


def _rows_per_step(shard_sizes, batch_size: int) -> np.ndarray:
    """``(P, S)`` int64 array: rows each rank contributes to each step of an epoch."""
    sizes = np.asarray(shard_sizes, dtype=np.int64)
    steps = int(max(-(-int(s) // batch_size) for s in sizes))
    starts = np.arange(steps, dtype=np.int64) * batch_size
    return np.clip(sizes[:, None] - starts[None, :], 0, batch_size)


def equivalent_order(shard_sizes, batch_size: int, seed: int, epoch: int,
                     shuffle: bool = True) -> np.ndarray:
    """Row order of a single-process epoch equal to the distributed one.

    Indices refer to the concatenation of the shards in rank order (for ``shard``, the
    original array). Training one process with ``batch_size * P`` on ``X[order]`` without
    shuffling gives the parameters ``P`` ranks reach with ``batch_size`` (see the module
    docstring for when the batch boundaries coincide).
    """
    sizes = [int(s) for s in shard_sizes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    orders = [shard_order(seed, epoch, r, n, shuffle) for r, n in enumerate(sizes)]
    rows = _rows_per_step(sizes, batch_size)
    parts = []
    for k in range(rows.shape[1]):
        for r in range(len(sizes)):
            parts.append(offsets[r] + orders[r][k * batch_size : k * batch_size + rows[r, k]])
    return np.concatenate(parts).astype(np.int64)


# ---------------------------------------------------------------------- failure handling
def _collective(comm, fn):
    """Run ``fn()`` on every rank; if it raised anywhere, raise on every rank."""
    err = None
    result = None
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
        err = exc
    msgs = comm.allgather(None if err is None else f"{type(err).__name__}: {err}")
    failed = [(r, msg) for r, msg in enumerate(msgs) if msg is not None]
    if failed:
        if err is not None:
            raise err
        r, msg = failed[0]
        raise DistributedError(f"rank {r} of {comm.Get_size()} failed: {msg}")
    return result


def _abort(comm, exc: BaseException | None, why: str) -> None:
    """Print why, then ``MPI_Abort``: the other ranks are blocked in a collective call."""
    rank, size = comm.Get_rank(), comm.Get_size()
    text = "".join(traceback.format_exception(exc)) if exc is not None else ""
    sys.stderr.write(
        f"fastbp.distributed: rank {rank} of {size}: {why}; calling MPI_Abort so that no "
        f"rank hangs.\n{text}"
    )
    sys.stderr.flush()
    comm.Abort(1)


class _Watchdog(threading.Thread):
    """Aborts the job when the main thread reports no progress for ``timeout`` seconds."""

    def __init__(self, comm, timeout: float):
        super().__init__(daemon=True, name="fastbp-mpi-watchdog")
        self.comm = comm
        self.timeout = timeout
        self.last = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        poll = min(1.0, self.timeout / 4)
        while not self.done.wait(poll):
            idle = time.monotonic() - self.last
            if idle > self.timeout:
                _abort(self.comm, None, f"no training progress for {idle:.1f} s (timeout="
                       f"{self.timeout} s): a peer rank is probably stuck or gone")
                return


# ---------------------------------------------------------------------- training
#: ``fit``'s default ``timeout``: seconds without progress before every rank is aborted
DEFAULT_TIMEOUT = 600.0

#: the options ``fit`` adds to ``Model.fit``'s (``FIT_OPTIONS``, whose defaults it takes)
_MPI_OPTIONS = {"average_every": Int(), "timeout": Real(0.0, lo_open=True, none=True)}


def fit(
    model: Model,
    X,
    y,
    *,
    comm=None,
    epochs: int = D.epochs,
    batch_size: int | None = D.batch_size,
    learning_rate: float = D.learning_rate,
    shuffle: bool = D.shuffle,
    optimizer=D.optimizer,
    schedule=D.schedule,
    l2: float = D.l2,
    clip_norm: float | None = D.clip_norm,
    validation_data=D.validation_data,
    early_stopping=D.early_stopping,
    callbacks=D.callbacks,
    verbose: bool = D.verbose,
    sample_weight=D.sample_weight,
    reset: bool = D.reset,
    average_every: int = 1,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_divergence: str = D.on_divergence,
) -> History:
    """Data-parallel ``Model.fit``: call it on every rank with that rank's shard.

    Parameters
    ----------
    model : fastbp.Model
        The replica on this rank. Rank 0's parameters, optimizer state and step count are
        broadcast to every rank first, so the replicas start (and stay) identical.
    X, y : this rank's rows (e.g. ``shard(X, y)``); shards may differ in size.
    comm : mpi4py communicator, default ``MPI.COMM_WORLD``
    batch_size : int or None
        Rows per rank per step (``b``); the global batch is ``P * b``. ``None``: the
        largest shard (full-batch gradient descent).
    average_every : int, default 1
        1: average gradients every step (synchronous data parallelism, equal to
        single-process training with batch ``P*b``). ``k > 1``: local SGD, average the
        parameters every ``k`` steps and at the end of each epoch (module docstring).
    timeout : float or None, default 600
        Abort every rank (``MPI_Abort``) when this rank has made no progress for that many
        seconds (from the call on, so a rank that failed or never calls ``fit`` is caught
        too, instead of leaving the others blocked forever). Must exceed the longest step,
        rank 0's end-of-epoch work (validation, callbacks) and, with a cold Numba cache,
        the first step's compilation: raise it for very slow epochs. ``None`` disables
        the watchdog (a lost peer then blocks the other ranks indefinitely).
    validation_data, early_stopping, callbacks, verbose
        Used on rank 0 only (other ranks may pass them or not); its decisions are
        broadcast.
    epochs, learning_rate, shuffle, optimizer, schedule, l2, clip_norm, reset, on_divergence
        As ``Model.fit``; they must be the same on every rank (checked). ``clip_norm``
        clips the averaged gradient. A non-finite loss on any rank, a non-finite summed
        gradient, or non-finite parameters or optimizer state stop every rank at the same
        step, with the same rollback and ``DivergenceError``. L-BFGS,
        ``validation_split`` and ``class_weight`` are not supported here.
    sample_weight : (n_local,) array_like, optional
        Weights of this rank's rows, rescaled to mean 1 over all ranks' rows.

    Returns
    -------
    History
        ``model.history``, identical on every rank (loss and accuracy are over all ranks'
        rows; validation metrics are rank 0's).
    """
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    root = rank == 0

    def plan_local():
        if not isinstance(model, Model):
            raise TypeError(f"model must be a fastbp.Model; got {type(model).__name__}.")
        plan = check_fit(
            model, X, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            shuffle=shuffle, optimizer=optimizer, schedule=schedule, l2=l2,
            clip_norm=clip_norm, validation_data=validation_data if root else None,
            early_stopping=early_stopping if root else None,
            callbacks=callbacks if root else (), verbose=verbose if root else False,
            sample_weight=sample_weight, reset=reset, on_divergence=on_divergence,
        )
        if is_csr(plan.X) or (plan.Xv is not None and is_csr(plan.Xv)):
            raise TypeError("fastbp.distributed.fit takes dense shards; pass X.toarray() "
                            "(Model.fit takes sparse X as it is).")
        if isinstance(plan.optimizer, LBFGS):
            raise ValueError("fastbp.distributed.fit supports the step-based optimizers (sgd, "
                             "adam, adamw, rmsprop, adagrad), not L-BFGS.")
        every = check_params({"average_every": average_every, "timeout": timeout},
                             _MPI_OPTIONS)["average_every"]
        # everything that must agree across ranks, or the collective calls would not match
        signature = (
            plan.epochs, plan.batch_size, plan.lr, plan.shuffle,
            type(plan.optimizer).__name__, plan.l2, plan.clip_norm, every, plan.SW.size > 0,
            plan.reset, plan.on_divergence, model.dtype.name,
            tuple(int(s) for s in model.layer_sizes), model.loss,
        )
        return plan, every, signature

    # the watchdog covers the setup collectives too (a rank that never calls fit)
    dog = None
    if (size > 1 and isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
            and timeout > 0):
        dog = _Watchdog(comm, float(timeout))
        dog.start()
    try:
        plan, every, signature = _collective(comm, plan_local)
        gathered = comm.allgather((plan.X.shape[0], signature))
        shard_sizes = [g[0] for g in gathered]

        def sized_plan():
            for r, (_, sig) in enumerate(gathered):
                if sig != gathered[0][1]:
                    raise ValueError(
                        f"fastbp.distributed.fit was called with different arguments or "
                        f"models on rank 0 and rank {r} (epochs, batch_size, learning_rate, "
                        f"shuffle, optimizer, l2, clip_norm, average_every, sample_weight "
                        f"given, reset, on_divergence, dtype, layer_sizes, loss): "
                        f"{gathered[0][1]} != {sig}."
                    )
            ops = {"sum": MPI.SUM, "max": MPI.MAX}
            return size_plan(plan, lambda value, op: comm.allreduce(value, op=ops[op]))

        plan = _collective(comm, sized_plan)
        trainer = _MPITrainer(model.network, model.state, plan, comm=comm, MPI=MPI,
                              shard_sizes=shard_sizes, every=every, dog=dog)
        return trainer.run()
    finally:
        if dog is not None:
            dog.done.set()


class _MPITrainer(Trainer):
    """The training loop with what MPI adds: the shard's row order, one ``Allreduce`` of
    the gradient per step (or of the parameters every ``average_every`` steps), and rank 0
    deciding the end of every epoch for all ranks."""

    def __init__(self, network, state, plan, *, comm, MPI, shard_sizes, every, dog):
        super().__init__(network, state, plan)
        self.comm, self.MPI, self.every, self.dog = comm, MPI, every, dog
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        rows = _rows_per_step(shard_sizes, plan.batch_size)  # (P, S)
        self.local_rows = np.ascontiguousarray(rows[self.rank])
        self.inv_global = 1.0 / rows.sum(axis=0)  # 1 / M_k per step
        self.n_steps = self.local_rows.shape[0]

    def _alive(self) -> None:
        if self.dog is not None:
            self.dog.last = time.monotonic()

    def prepare(self) -> None:
        super().prepare()
        net, state, comm = self.net, self.state, self.comm
        # identical starting state everywhere: rank 0's
        comm.Bcast(net.params, root=0)
        comm.Bcast(state.opt_state, root=0)
        comm.Bcast(state.counters, root=0)
        self.seed0, drop0, self.epoch0 = comm.bcast(
            (state.seed, net.drop_seed, state.history.epochs), root=0)
        self.drop_seed = drop0 if self.rank == 0 else int(
            np.random.SeedSequence([drop0, self.rank]).generate_state(1, np.uint64)[0] >> 1)
        self.local0 = state.history.epochs
        self._alive()

    def epoch_order(self, order, epoch):
        e = self.epoch0 + self.state.history.epochs - self.local0
        return shard_order(self.seed0, e, self.rank, self.plan.X.shape[0], self.plan.shuffle)

    def run_epoch(self, order, lr, n_batches):
        plan, net, state, comm = self.plan, self.net, self.state, self.comm
        X, T, SW, b = plan.X, plan.T, plan.SW, plan.batch_size
        ws = net.workspace(b).arrays(net.dropout)
        net_k = net.args()._replace(drop_seed=self.drop_seed)
        opt = state.optimizer_args()
        totals = np.zeros(3)
        in_place, SUM = self.MPI.IN_PLACE, self.MPI.SUM
        inv_p = net.dtype.type(1.0 / self.size)
        every = self.every
        t0 = time.perf_counter()
        bad, reason = -1, "the loss or the summed gradient became non-finite"
        # A rank whose loss becomes non-finite poisons what it sends next (a NaN in its
        # gradient, or in local SGD its parameters), so that every rank finds the same
        # non-finite sum at the same step without another collective call.
        poisoned = False
        try:
            for k in range(self.n_steps):
                m = int(self.local_rows[k])
                with net.boundary:
                    if every == 1:
                        local_step_gradient(X, T, SW, order, k * b, m, self.inv_global[k],
                                            net_k, ws, state.counters[0] + 1, totals)
                        if not math.isfinite(totals[0]):  # this rank's loss
                            poisoned = True
                            net.grads[0] = np.nan
                        comm.Allreduce(in_place, net.grads, op=SUM)
                        # the summed gradient is the same on every rank: so is this check
                        if not apply_step(net_k, opt, lr, plan.l2, plan.clip_norm):
                            bad = k
                    else:
                        if m > 0 and not poisoned:
                            local_step_gradient(X, T, SW, order, k * b, m, 1.0 / m, net_k,
                                                ws, state.counters[0] + 1, totals)
                            if not (math.isfinite(totals[0]) and apply_step(
                                    net_k, opt, lr, plan.l2, plan.clip_norm)):
                                poisoned = True  # until the average, which spreads it
                                net.params[0] = np.nan
                        if (k + 1) % every == 0 or k == self.n_steps - 1:
                            comm.Allreduce(in_place, net.params, op=SUM)
                            np.multiply(net.params, inv_p, out=net.params)
                            if not all_finite(net.params):  # identical on every rank
                                bad, reason = k, ("the loss, the gradient or the parameters "
                                                  "became non-finite")
                self._alive()
                if bad >= 0:
                    break
        except BaseException as exc:
            if self.size == 1:
                raise
            _abort(comm, exc, "an exception was raised inside the training step loop")
        if every > 1 and bad < 0:
            # replicas must be bit-identical, whatever rounding the average left
            comm.Bcast(net.params, root=0)
        if bad < 0:
            # the epoch's sums, and whether any rank's parameters or optimizer state became
            # non-finite in the last steps (an update that overflowed), in one message
            sums = np.array([*totals, 0.0 if (all_finite(net.params) and
                                              all_finite(state.opt_state)) else 1.0])
            comm.Allreduce(in_place, sums, op=SUM)
            totals = sums[:3]
            if sums[3] > 0:
                bad = self.n_steps - 1
                reason = "the parameters or optimizer state became non-finite"
        if bad >= 0:
            raise _Diverged({"event": "diverged", "epoch": state.history.epochs,
                             "reason": f"{reason} (on at least one rank)",
                             "bad_batch": bad, "n_batches": self.n_steps})
        logs = {"loss": float(totals[0] / totals[1]) if totals[1] > 0 else 0.0, "lr": lr,
                "time": time.perf_counter() - t0}
        if self.classification:
            logs["accuracy"] = float(totals[2] / plan.n_rows)
        self._ref_loss = min(self._ref_loss, logs["loss"])
        return logs

    def end_epoch(self, logs):
        """Rank 0 decides (validation, stopping rule, callbacks); every rank follows."""
        comm, size = self.comm, self.size
        decision = err = None
        if self.rank == 0:
            try:
                if self.plan.Xv is not None:
                    logs.update(self.validation_metrics())
                improved, stop = self.record_epoch(logs)
                keep = bool(improved and self.plan.stopping.restore_best)
                if self.progress is not None:
                    self.progress.update(logs)
                for cb in self.plan.callbacks:
                    if cb(self.state.history.epochs - 1, dict(logs)):
                        stop = True
                decision = ("ok", logs, bool(stop), keep)
            except Exception as exc:  # noqa: BLE001 - reported to every rank, re-raised
                err = exc
                decision = ("error", f"{type(exc).__name__}: {exc}")
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: no time to talk
                if size == 1:
                    raise
                _abort(comm, exc, "interrupted at the end of an epoch")
        decision = comm.bcast(decision, root=0)
        if err is not None:
            raise err
        if decision[0] == "error":
            raise DistributedError(f"rank 0 of {size} failed at the end of epoch "
                                   f"{self.state.history.epochs}: {decision[1]}")
        _, logs, stop, keep = decision
        if self.rank != 0:
            self.record_epoch(logs, rule=False)
        if keep:
            self._best = self.net.params.copy()
        self.remember_if_healthy(logs["loss"])
        self._alive()
        return stop


def save(model: Model, path, comm=None) -> None:
    """Save the model on rank 0 only (``Model.save``); every rank returns when the file is
    written, and every rank raises if writing failed."""
    comm = world() if comm is None else comm
    err = None
    if comm.Get_rank() == 0:
        try:
            model.save(path)
        except Exception as exc:  # noqa: BLE001 - re-raised below
            err = exc
    msg = comm.bcast(None if err is None else f"{type(err).__name__}: {err}", root=0)
    if err is not None:
        raise err
    if msg is not None:
        raise DistributedError(f"rank 0 failed to save {path!r}: {msg}")


# ---------------------------------------------------------------------- Dask / workers
def numba_compile_stats() -> dict:
    """Compiled Numba code of fastbp in *this* process (e.g. a Dask worker).

    Returns ``{"signatures": n, "compiled": c, "cache_loaded": h}``: the number of compiled
    signatures over all fastbp kernels, how many of them this process compiled itself and
    how many it loaded from Numba's on-disk cache. Kernels are module-level functions, so a
    process compiles (or loads) each signature once, however many models it unpickles:
    ``signatures`` stops growing after the first task of a kind.
    """
    from numba.core.registry import CPUDispatcher

    seen = set()
    out = {"signatures": 0, "compiled": 0, "cache_loaded": 0}
    for name, mod in list(sys.modules.items()):
        if not (name == "fastbp" or name.startswith("fastbp.")) or mod is None:
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, CPUDispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                out["signatures"] += len(obj.signatures)
                stats = obj.stats
                out["compiled"] += sum(stats.cache_misses.values())
                out["cache_loaded"] += sum(stats.cache_hits.values())
    return out
