"""The one training loop, driven by every front-end (``Model``, the scikit-learn estimators,
``fastbp.distributed``).

``Trainer(network, state, plan).run()`` trains the network of a model (its buffers and
layout, ``fastbp.kernels.Network``) and updates its training state (``TrainingState``) as
the checked ``FitPlan`` says:

- epochs run as compiled calls of about ``CALL_SECONDS`` each (``kernels.train_steps``), so
  no Python runs per step and Ctrl-C is honoured within a fraction of a second, at a step
  boundary, with the model holding every completed step;
- a non-finite loss or parameter stops training at once; the model goes back to the end of
  the last healthy epoch of the call (finite, and not exploding: a loss at most
  ``EXPLODE_FACTOR`` times the smallest seen in the call) or to its state before the call
  (always, with the plan's ``divergence_restore="start"``), and ``DivergenceError`` says
  which;
- any other exception leaves the model exactly as it was before the call;
- each epoch ends with validation, history, the schedule's step, the stopping rule,
  callbacks and the progress report.

Front-ends change what is theirs by subclassing: ``fastbp.distributed`` replaces the row
order, the epoch's steps (one ``Allreduce`` per step) and the end of the epoch (rank 0
decides, every rank follows).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .._errors import ConvergenceWarning, DivergenceError, DivergenceWarning, warn_from_caller
from .._initializers import initialize
from .._threads import kernel_threads
from ..kernels import _codes
from ..kernels._drivers import train_steps
from ..optim import LBFGS
from . import passes, stall
from ._interrupt import DeferredInterrupt
from .plan import FitPlan
from .state import SEED_INIT, History, TrainingState, seed_stream

#: target duration of one compiled training call: an epoch runs as calls of about this long
#: (measured), so Ctrl-C is honoured within a fraction of a second
CALL_SECONDS = 0.2

#: an epoch whose mean loss exceeds this many times the smallest loss seen in the call (the
#: first batch's, or a healthy epoch's) is "exploding": not a state to go back to
EXPLODE_FACTOR = 10.0


class _Diverged(Exception):
    """Raised inside the loop when a compiled call reports a non-finite loss or state."""

    def __init__(self, event: dict):
        super().__init__(event["reason"])
        self.event = event


class Progress:
    """Per-epoch progress: a tqdm bar on a terminal, one line per epoch otherwise."""

    def __init__(self, total: int, n_rows: int, desc: str = "fastbp fit"):
        self.n = n_rows
        self.total = total
        self.desc = desc
        self.done = 0
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="epoch", desc=desc)

    def update(self, logs: dict) -> None:
        post = {"loss": f"{logs['loss']:.4g}"}
        for key in ("accuracy", "val_loss", "val_accuracy"):
            if key in logs and not math.isnan(logs[key]):
                post[key] = f"{logs[key]:.4g}"
        if logs.get("time", 0) > 0:
            post["samples/s"] = f"{self.n / logs['time']:.3g}"
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        else:
            fields = ", ".join(f"{k}={v}" for k, v in post.items())
            print(f"{self.desc}: epoch {self.done}/{self.total}: {fields}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Trainer:
    """Runs one ``FitPlan`` on a network and its training state (module docstring).

    Parameters
    ----------
    network : fastbp.kernels.Network
    state : TrainingState
    plan : FitPlan
    """

    def __init__(self, network, state: TrainingState, plan: FitPlan):
        self.net = network
        self.state = state
        self.plan = plan
        self.interrupt = None
        self.progress = None
        self._best = None
        self._good = None  # snapshot at the end of the last healthy epoch of this call
        self._good_epoch = None
        self._epoch0 = 0  # the model's epochs when this call's training began
        self._ref_loss = math.inf
        self._class_mass = None  # plan.T summed per class (the no-progress check's)

    @property
    def classification(self) -> bool:
        return self.net.loss_code != _codes.SQUARED_ERROR

    # ------------------------------------------------------------------ the loop
    def run(self) -> History:
        """Train as planned; returns the history (see the module docstring for errors)."""
        plan, net, state = self.plan, self.net, self.state
        with net.lock, kernel_threads(plan.n_threads):
            history0, epochs0 = state.history, state.history.epochs
            with net.boundary:
                self._start = state.snapshot(net.params)
                try:
                    self.prepare()
                except BaseException:
                    state.restore(self._start, net.params)
                    raise
            self._epoch0 = state.history.epochs
            try:
                with DeferredInterrupt() as interrupt:
                    self.interrupt = interrupt
                    if plan.verbose:
                        self.progress = Progress(plan.epochs, plan.X.shape[0])
                    if isinstance(state.optimizer, LBFGS):
                        from .lbfgs import fit_lbfgs

                        fit_lbfgs(self)
                    else:
                        self.fit_steps()
                    self.restore_best()
            except KeyboardInterrupt:
                self.restore_best()
                raise
            except DivergenceError:
                raise
            except BaseException:
                with net.boundary:
                    state.restore(self._start, net.params)
                raise
            finally:
                if self.progress is not None:
                    self.progress.close()
            # a bounded record: online training (a call per sample) keeps a window
            with net.boundary:
                recorded = state.history.epochs - (
                    epochs0 if state.history is history0 else state.history.first_epoch)
                state.history.trim(keep=recorded)
        return state.history

    def prepare(self) -> None:
        """Everything that changes the model before the first step (undone on error)."""
        plan, state = self.plan, self.state
        if plan.reset:
            state.reset()
            initialize(self.net, seed_stream(state.seed, SEED_INIT))
        if plan.reset_optimizer:
            state.optimizer = None
        state.adopt_optimizer(plan.optimizer)
        state.adopt_schedule(plan.schedule, as_given=plan.reset_optimizer)
        if plan.stopping is not None:
            plan.stopping.begin(state)

    def fit_steps(self) -> None:
        """Epochs of minibatch steps, each epoch as bounded compiled calls."""
        plan, state = self.plan, self.state
        n = plan.X.shape[0]
        n_batches = -(-n // plan.batch_size)
        order = np.arange(n, dtype=np.int64)
        epoch, step0 = state.history.epochs, state.steps
        try:
            for _ in range(plan.epochs):
                epoch, step0 = state.history.epochs, state.steps
                order = self.epoch_order(order, epoch)
                lr = float(state.schedule.lr(plan.lr))
                try:
                    logs = self.run_epoch(order, lr, n_batches)
                except _Diverged as div:
                    self.diverged(div.event)
                    return
                stop = self.end_epoch(logs)
                if self.interrupt.pending:
                    raise KeyboardInterrupt
                if stop:
                    break
        except KeyboardInterrupt:
            if state.history.epochs > epoch:  # the epoch was recorded before the interrupt
                self.interrupted(state.history.epochs, 0, n_batches)
            else:
                self.interrupted(epoch, state.steps - step0, n_batches)
            raise

    def epoch_order(self, order: np.ndarray, epoch: int) -> np.ndarray:
        """This epoch's row order (written into ``order``)."""
        if self.plan.order is not None:
            order[:] = self.plan.order(epoch)
        elif self.plan.shuffle:
            # shuffle the identity each epoch (not last epoch's order), so an epoch's order
            # depends only on the generator's state: training split over several fit calls,
            # or saved and resumed, equals uninterrupted training
            order[:] = np.arange(order.shape[0])
            self.state.shuffle_rng.shuffle(order)
        return order

    def run_epoch(self, order: np.ndarray, lr: float, n_batches: int) -> dict:
        """One epoch's steps as compiled calls of about ``CALL_SECONDS``; the epoch's logs."""
        plan, net, state = self.plan, self.net, self.state
        bs = plan.batch_size
        k = net.args()
        ws = passes.workspace(net, plan.X, bs).arrays(net.dropout)
        opt = state.optimizer_args()
        norm_weights = plan.weight_norm == "weights"
        if passes.is_csr(plan.X):
            from ..kernels._sparse import train_steps_csr as steps
        else:
            steps = train_steps
        acc = np.zeros(5)
        acc[3] = math.nan  # first batch's loss, filled by the first call
        per_batch = state.seconds_per_batch.get(bs)
        chunk = 1 if per_batch is None else max(1, int(CALL_SECONDS / per_batch))
        done, seconds = 0, 0.0
        while done < n_batches:
            stop = min(n_batches, done + chunk)
            with net.boundary:
                t0 = time.perf_counter()
                status, reached = steps(
                    plan.X, plan.T, plan.SW, order, k, ws, opt, lr, plan.l2, plan.clip_norm,
                    bs, norm_weights, done, stop, acc, True,
                )
                dt = time.perf_counter() - t0
            if status != _codes.STATUS_OK:
                reason = ("the loss became non-finite" if status == _codes.STATUS_NONFINITE_LOSS
                          else "the parameters or optimizer state became non-finite")
                raise _Diverged({"event": "diverged", "epoch": state.history.epochs,
                                 "reason": reason, "bad_batch": int(reached),
                                 "n_batches": n_batches})
            seconds += dt
            ran = stop - done
            done = stop
            if dt > 0:  # next call: about CALL_SECONDS, growing at most 4-fold
                state.seconds_per_batch[bs] = dt / ran
                chunk = max(1, min(4 * ran, int(CALL_SECONDS * ran / dt)))
            if self.interrupt.pending and done < n_batches:
                raise KeyboardInterrupt
        self._ref_loss = min(self._ref_loss, float(acc[3]))
        total = acc[0] / acc[1] if acc[1] > 0 else acc[0]
        logs = {"loss": float(total), "lr": lr, "time": seconds}
        if norm_weights:
            logs["penalty"] = float(acc[4] / acc[1])
        if self.classification:
            logs["accuracy"] = float(acc[2] / plan.X.shape[0])
        return logs

    # ------------------------------------------------------------------ end of an epoch
    def end_epoch(self, logs: dict) -> bool:
        """Validation, history, schedule, stopping rule, callbacks, progress; True to stop."""
        if self.plan.Xv is not None or self.plan.validate is not None:
            logs.update(self.validation_metrics())
        improved, stop = self.record_epoch(logs)
        if improved and self.plan.stopping.restore_best:
            self._best = self.net.params.copy()
        self.remember_if_healthy(logs["loss"])
        for cb in self.plan.callbacks:
            if cb(self.state.history.epochs - 1, dict(logs)):
                stop = True
        if self.progress is not None:
            self.progress.update(logs)
        return stop

    def record_epoch(self, logs: dict, rule: bool = True) -> tuple[bool, bool]:
        """History and schedule, then (``rule``) the stopping rule: ``(improved, stop)``."""
        plan, state = self.plan, self.state
        epoch = state.history.epochs
        with self.net.boundary:
            state.history.append(**logs)
            n_rows = plan.X.shape[0] if plan.n_rows is None else plan.n_rows
            state.schedule.step(logs.get("val_loss", logs["loss"]), n_rows)
        if rule and plan.check_progress:
            self.check_stall(logs)
        if not rule or plan.stopping is None:
            return False, False
        return plan.stopping.update(epoch, logs)

    def check_stall(self, logs: dict) -> None:
        """Feed the epoch to the no-progress check; warn once if training is stuck."""
        plan, state = self.plan, self.state
        if state.stall.warned or "accuracy" not in logs or isinstance(state.optimizer, LBFGS):
            return
        if self._class_mass is None:
            self._class_mass = stall.class_mass(plan.T, plan.SW, self.net.loss_code)
            if self._class_mass is None:
                self._class_mass = False
        if self._class_mass is False:
            return
        n = plan.X.shape[0]
        figures = state.stall.add(-(-n // plan.batch_size), n, logs["loss"],
                                  logs["accuracy"], self._class_mass)
        if figures is not None:
            warn_from_caller(stall.message(figures, plan.X, logs["lr"]), ConvergenceWarning)

    def validation_metrics(self) -> dict:
        """``val_loss`` (and ``val_accuracy``) of the current parameters on the plan's
        validation data, or what the plan's own ``validate`` returns."""
        plan, net = self.plan, self.net
        if plan.validate is not None:
            return plan.validate()
        Xv, Tv = plan.Xv, plan.Tv
        value, acc = passes.loss_and_accuracy(net, Xv, Tv)
        logs = {"val_loss": value}
        if self.classification:
            logs["val_accuracy"] = acc
        return logs

    def accuracy(self, X: np.ndarray, T: np.ndarray) -> float:
        """Fraction of the rows of ``X`` classified as ``T`` says, with the current weights."""
        return passes.accuracy(self.net, X, T)

    # ------------------------------------------------------------------ failures
    def remember_if_healthy(self, epoch_loss: float) -> None:
        """Keep the state at the end of this epoch if it is one to go back to after a
        divergence: finite, and not ``EXPLODE_FACTOR`` times the smallest loss seen.
        (Nothing to keep when the plan goes back to the start of the call, or after the
        call's last epoch: a partial_fit call is one epoch, and copying the parameters and
        optimizer state there would be pure per-call overhead.)"""
        if self.plan.divergence_restore in ("start", "best"):
            return
        if self.state.history.epochs - self._epoch0 >= self.plan.epochs:
            return  # the call's last epoch: no epoch of this call follows to go back from
        if not (math.isfinite(epoch_loss) and np.isfinite(self.net.params).all()):
            return
        if epoch_loss > EXPLODE_FACTOR * self._ref_loss + 1e-12:
            return
        self._ref_loss = min(self._ref_loss, epoch_loss)
        self._good = self.state.snapshot(self.net.params, into=self._good)
        self._good_epoch = self.state.history.epochs - 1

    def diverged(self, event: dict) -> None:
        """Go back to the last healthy state, record the event, then raise or warn (or, with
        ``divergence_restore="best"`` and a best epoch, end training at its parameters)."""
        net, state, plan = self.net, self.state, self.plan
        if (plan.divergence_restore == "best" and self._best is not None
                and plan.stopping.restore_best):
            with net.boundary:
                net.params[...] = self._best
                self._best = None
                event.update(step=state.steps, batch=0, restored="the parameters of the best "
                             "epoch (early stopping); training ended there")
                state.history.events.append(event)
            on_divergence = getattr(plan.stopping, "diverged", None)
            if on_divergence is not None:
                on_divergence()
            return
        with net.boundary:
            if self._good is not None:
                state.restore(self._good, net.params)
                event["restored"] = f"the end of epoch {self._good_epoch}"
            else:
                state.restore(self._start, net.params)
                event["restored"] = "the state before this call"
            event["step"] = state.steps
            event["batch"] = 0
            best = (self._best is not None and plan.stopping.restore_best
                    and plan.divergence_restore == "healthy")
            if best:
                net.params[...] = self._best
                self._best = None
                event["restored"] += " (parameters: the best epoch's, restore_best=True)"
            state.history.events.append(event)
        msg = (
            f"training diverged in epoch {event['epoch']} (batch {event['bad_batch']} of "
            f"{event['n_batches']}): {event['reason']}. The model was restored to "
            f"{event['restored']} (optimizer step {event['step']}). Lower the learning rate, "
            "clip gradients (clip_norm=...) or scale the inputs, then train on from there."
        )
        if plan.on_divergence == "raise":
            raise DivergenceError(msg, event)
        warn_from_caller(msg, DivergenceWarning)

    def interrupted(self, epoch: int, batch: int, n_batches: int) -> None:
        """Record an interruption (the model is at a step boundary) in the history."""
        self.state.history.events.append({
            "event": "interrupted", "epoch": epoch, "batch": batch, "n_batches": n_batches,
            "step": self.state.steps,
        })

    def restore_best(self) -> None:
        """``restore_best``: put back the parameters of the best epoch, if there was one."""
        if self._best is not None:
            with self.net.boundary:
                self.net.params[...] = self._best
            self._best = None
