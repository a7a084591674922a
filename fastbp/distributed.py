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
calls ``MPI_Abort``, which terminates every rank instead of letting them hang; with
``timeout=s`` a watchdog thread also aborts a rank that has made no progress for ``s``
seconds (a lost or stuck peer).
"""

from __future__ import annotations

import numbers
import sys
import threading
import time
import traceback

import numpy as np

from ._dist_train import apply_step, local_step_gradient
from ._validation import check_int, check_positive_float, check_sample_weight
from .model import History, Model
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
    ss = np.random.SeedSequence(seed, spawn_key=(4, epoch, rank))
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
def fit(
    model: Model,
    X,
    y,
    *,
    comm=None,
    epochs: int = 1,
    batch_size: int | None = 32,
    learning_rate: float = 0.01,
    shuffle: bool = True,
    optimizer=None,
    schedule=None,
    l2: float = 0.0,
    clip_norm: float | None = None,
    validation_data=None,
    early_stopping=None,
    callbacks=(),
    verbose: bool = False,
    sample_weight=None,
    reset: bool = False,
    average_every: int = 1,
    timeout: float | None = None,
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
    timeout : float, optional
        Abort every rank (``MPI_Abort``) when this rank has made no progress for that many
        seconds (from the call on, so a rank that never calls ``fit`` is caught too).
        Must exceed the longest step, rank 0's end-of-epoch work and, with a cold Numba
        cache, the first step's compilation (tens of seconds).
    validation_data, early_stopping, callbacks, verbose
        Used on rank 0 only (other ranks may pass them or not); its decisions are
        broadcast.
    epochs, learning_rate, shuffle, optimizer, schedule, l2, clip_norm, reset
        As ``Model.fit``; they must be the same on every rank (checked). ``clip_norm``
        clips the averaged gradient. L-BFGS, ``validation_split`` and ``class_weight`` are
        not supported here.
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
        plan = model._plan(
            X, y, epochs, None, learning_rate, shuffle, optimizer, schedule, l2, clip_norm,
            validation_data if root else None, 0.0, early_stopping if root else None,
            callbacks if root else (), verbose if root else False, None, None, reset,
        )
        if isinstance(plan["opt"], LBFGS):
            raise ValueError("fastbp.distributed.fit supports the step-based optimizers (sgd, "
                             "adam, adamw, rmsprop, adagrad), not L-BFGS.")
        bs = None if batch_size is None else check_int(batch_size, "batch_size")
        every = check_int(average_every, "average_every")
        if timeout is not None:
            check_positive_float(timeout, "timeout")
        sw = None
        if sample_weight is not None:
            sw = check_sample_weight(sample_weight, plan["X"].shape[0], np.float64)
        # everything that must agree across ranks, or the collective calls would not match
        signature = (
            plan["epochs"], bs, plan["lr"], plan["shuffle"], type(plan["opt"]).__name__,
            plan["l2"], plan["clip_norm"], every, sw is not None, reset,
            model.dtype.name, tuple(int(s) for s in model.layer_sizes), model.loss,
        )
        return plan, bs, every, sw, signature

    # the watchdog covers the setup collectives too (a rank that never calls fit)
    dog = None
    if (size > 1 and isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
            and timeout > 0):
        dog = _Watchdog(comm, float(timeout))
        dog.start()
    try:
        return _setup_and_train(model, plan_local, comm, MPI, rank, size, dog)
    finally:
        if dog is not None:
            dog.done.set()


def _setup_and_train(model, plan_local, comm, MPI, rank, size, dog):
    plan, bs, every, sw, signature = _collective(comm, plan_local)
    gathered = comm.allgather((plan["X"].shape[0], signature))
    shard_sizes = [g[0] for g in gathered]

    def check_agreement():
        for r, (_, sig) in enumerate(gathered):
            if sig != gathered[0][1]:
                raise ValueError(
                    f"fastbp.distributed.fit was called with different arguments or models "
                    f"on rank 0 and rank {r} (epochs, batch_size, learning_rate, shuffle, "
                    f"optimizer, l2, clip_norm, average_every, sample_weight given, reset, "
                    f"dtype, layer_sizes, loss): {gathered[0][1]} != {sig}."
                )
        if sw is not None:
            total = comm.allreduce(float(sw.sum()), op=MPI.SUM)
            if not total > 0:
                raise ValueError("sample_weight is zero for every sample on every rank.")
            return (sw * (sum(shard_sizes) / total)).astype(model.dtype)
        return np.zeros(0, model.dtype)

    plan["SW"] = _collective(comm, check_agreement)
    n_total = int(sum(shard_sizes))
    b = max(shard_sizes) if bs is None else min(bs, max(shard_sizes))
    rows = _rows_per_step(shard_sizes, b)  # (P, S)
    local_rows = np.ascontiguousarray(rows[rank])
    inv_global = 1.0 / rows.sum(axis=0)  # 1 / M_k per step

    # identical starting state everywhere: rank 0's
    if plan["reset"]:
        model._reset_training_state()
    model._adopt_optimizer(plan["opt"])
    model._adopt_schedule(plan["sched"])
    comm.Bcast(model._params, root=0)
    comm.Bcast(model._opt_state, root=0)
    comm.Bcast(model._opt_counters, root=0)
    seed0, drop0, epoch0 = comm.bcast(
        (model.seed, model._drop_seed, model.history.epochs), root=0)
    drop_seed = drop0 if rank == 0 else int(
        np.random.SeedSequence([drop0, rank]).generate_state(1, np.uint64)[0] >> 1)

    if dog is not None:
        dog.last = time.monotonic()
    return _train(model, plan, comm, MPI, rank, size, b, local_rows, inv_global, every,
                  seed0, drop_seed, epoch0, n_total, dog)


def _train(model, plan, comm, MPI, rank, size, b, local_rows, inv_global, every, seed0,
           drop_seed, epoch0, n_total, dog):
    root = rank == 0
    X, T, SW = plan["X"], plan["T"], plan["SW"]
    n_local = X.shape[0]
    ws = model._workspace(max(b, 1))
    raw = ws.raw if any(model.dropout) else ws.act
    params, grads = model._params, model.grads
    state, counters = model._opt_state, model._opt_counters
    opt_kind, hyper = model._opt.kind, model._opt.hyper()
    l2, clip = plan["l2"], plan["clip_norm"] or 0.0
    sizes, w_off, b_off = model.layer_sizes, model._w_off, model._b_off
    act_codes, loss_code = model._act_codes, model._loss_code
    drop_rates = model._drop_rates
    n_steps = local_rows.shape[0]
    totals = np.zeros(3)
    in_place, SUM = MPI.IN_PLACE, MPI.SUM
    inv_p = model.dtype.type(1.0 / size)
    es = plan["es"] if root else None
    if es is not None:
        es.reset()
    best = None
    bar = None
    if root and plan["verbose"]:
        from tqdm import tqdm

        bar = tqdm(total=plan["epochs"], unit="epoch", desc=f"fastbp fit ({size} ranks)")
    try:
        for e in range(plan["epochs"]):
            order = shard_order(seed0, epoch0 + e, rank, n_local, plan["shuffle"])
            lr = float(model._schedule.lr(plan["lr"]))
            totals[:] = 0.0
            t0 = time.perf_counter()
            try:
                for k in range(n_steps):
                    m = int(local_rows[k])
                    if every == 1:
                        local_step_gradient(
                            X, T, SW, order, k * b, m, inv_global[k], params, grads,
                            drop_rates, drop_seed, counters[0] + 1, sizes, w_off, b_off,
                            act_codes, loss_code, ws.act, ws.delta, raw, ws.a_off, ws.z_out,
                            ws.t_buf, ws.w_buf, totals,
                        )
                        comm.Allreduce(in_place, grads, op=SUM)
                        apply_step(params, grads, state, opt_kind, hyper, counters, lr, l2,
                                   clip, sizes, w_off, b_off)
                    else:
                        if m > 0:
                            local_step_gradient(
                                X, T, SW, order, k * b, m, 1.0 / m, params, grads,
                                drop_rates, drop_seed, counters[0] + 1, sizes, w_off, b_off,
                                act_codes, loss_code, ws.act, ws.delta, raw, ws.a_off,
                                ws.z_out, ws.t_buf, ws.w_buf, totals,
                            )
                            apply_step(params, grads, state, opt_kind, hyper, counters, lr,
                                       l2, clip, sizes, w_off, b_off)
                        if (k + 1) % every == 0 or k == n_steps - 1:
                            comm.Allreduce(in_place, params, op=SUM)
                            np.multiply(params, inv_p, out=params)
                    if dog is not None:
                        dog.last = time.monotonic()
            except BaseException as exc:
                if size == 1:
                    raise
                _abort(comm, exc, "an exception was raised inside the training step loop")
            if every > 1:
                # replicas must be bit-identical, whatever rounding the average left
                comm.Bcast(params, root=0)
            comm.Allreduce(in_place, totals, op=SUM)
            logs = {"loss": float(totals[0] / totals[1]) if totals[1] > 0 else 0.0, "lr": lr,
                    "time": time.perf_counter() - t0}
            if model._classification:
                logs["accuracy"] = float(totals[2] / n_total)
            decision = err = None
            if root:
                try:
                    decision = _root_end_epoch(model, plan, es, bar, logs, n_total)
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
                                       f"{epoch0 + e}: {decision[1]}")
            _, logs, stop, improved, restore = decision
            if not root:
                model.history.append(**logs)
                model._schedule.step(logs.get("val_loss", logs["loss"]), n_total)
            if improved and restore:
                best = params.copy()
            if dog is not None:
                dog.last = time.monotonic()
            if stop:
                break
        if best is not None:
            params[...] = best
    finally:
        if bar is not None:
            bar.close()
    return model.history


def _root_end_epoch(model, plan, es, bar, logs, n_total):
    """Rank 0's end of epoch (as ``model._EpochLoop.end_epoch``, with the global row count):
    validation, history, schedule, early stopping, callbacks, progress bar."""
    if plan["Xv"] is not None:
        logs.update(model._validation_metrics(plan["Xv"], plan["Tv"]))
    epoch = model.history.epochs
    model.history.append(**logs)
    model._schedule.step(logs.get("val_loss", logs["loss"]), n_total)
    stop = improved = False
    if es is not None:
        improved, stop = es.update(epoch, logs)
    for cb in plan["callbacks"]:
        if cb(epoch, dict(logs)):
            stop = True
    if bar is not None:
        post = {"loss": f"{logs['loss']:.4g}"}
        if "val_loss" in logs:
            post["val_loss"] = f"{logs['val_loss']:.4g}"
        if logs["time"] > 0:
            post["samples/s"] = f"{n_total / logs['time']:.3g}"
        bar.set_postfix(post, refresh=False)
        bar.update(1)
    restore = bool(es is not None and es.restore_best)
    return ("ok", logs, bool(stop), bool(improved), restore)


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
