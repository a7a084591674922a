"""Run with ``mpiexec -n 2 python control.py MODE``: rank roles, stopping and failures.

Modes (each prints ``MODE: OK`` on rank 0 and exits 0 when the behaviour is right):

- ``roles``: rank 0's callback stops training and its early stopping restores the best
  weights; every rank stops at the same epoch with the same history and bitwise-equal
  parameters; local SGD keeps replicas identical; ``save`` writes on rank 0 only.
- ``bad-argument``: an invalid argument on rank 1 raises there and ``DistributedError`` on
  rank 0 (nobody hangs); mismatched ``epochs`` raise ``ValueError`` on both.
- ``callback-error``: rank 0's callback raises; rank 0 re-raises it, rank 1 raises
  ``DistributedError``.
- ``step-error``: rank 1 raises inside the step loop: the job is aborted (non-zero exit,
  the traceback on stderr) instead of hanging. Does not print OK.
- ``stuck``: rank 1 stops making progress; ``timeout=2`` aborts the job. Does not print OK.
- ``absent``: rank 1 never calls ``fit``; rank 0's ``timeout=2`` aborts the job.
"""

import os
import sys
import tempfile
import time

import numpy as np
from _common import fastbp, gather_equal, warm_kernels, world

from fastbp import distributed as dist
from fastbp.schedules import ReduceOnPlateau

comm = world()
rank, P = comm.Get_rank(), comm.Get_size()
mode = sys.argv[1]

# When asked, tee this rank's stderr to a file: MPI_Abort tears the job down, and mpich's
# launcher does not always forward a rank's last output before it does (seen as an empty
# output in some full test runs), so the abort tests also read the reason from these files.
_log_dir = os.environ.get("FASTBP_TEST_RANK_LOG_DIR")
if _log_dir:
    class _Tee:
        def __init__(self, stream, path):
            self.stream, self.file = stream, open(path, "a", buffering=1)  # noqa: SIM115

        def write(self, s):
            self.file.write(s)
            self.file.flush()  # in the kernel before the process can be killed
            return self.stream.write(s)

        def flush(self):
            self.file.flush()
            self.stream.flush()

    sys.stderr = _Tee(sys.stderr, os.path.join(_log_dir, f"rank{rank}.err"))
warm_kernels(comm)

rng = np.random.default_rng(0)
X = rng.normal(size=(80, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
Xl, yl = dist.shard(X, y, comm=comm)


def new_model():
    return fastbp.Model([4, 8, 2], loss="cross_entropy", dtype="float64", seed=1)


def expect(exc_type, fn):
    try:
        fn()
    except exc_type as exc:
        return exc
    raise AssertionError(f"rank {rank}: expected {exc_type.__name__}")


if mode == "roles":
    m = new_model()
    h = dist.fit(m, Xl, yl, comm=comm, epochs=10, batch_size=4, learning_rate=0.1,
                 callbacks=[lambda epoch, logs: epoch == 2])
    assert h.epochs == 3, (rank, h.epochs)
    ok = gather_equal(comm, m.params) and gather_equal(comm, np.array(h["loss"]))
    assert ok, "replicas or histories differ"

    m = new_model()
    stopper = fastbp.EarlyStopping(patience=2, restore_best=True, monitor="val_loss")
    # validation data only on rank 0: the other ranks learn the decisions by broadcast
    h = dist.fit(m, Xl, yl, comm=comm, epochs=200, batch_size=2, learning_rate=2.0,
                 validation_data=(X[:20], y[:20]) if rank == 0 else None,
                 early_stopping=stopper if rank == 0 else None)
    epochs = comm.allgather(h.epochs)
    assert len(set(epochs)) == 1 and epochs[0] < 200, epochs
    assert gather_equal(comm, m.params), "replicas differ after early stopping"
    assert "val_loss" in h and np.isfinite(h["val_loss"]).all()
    if rank == 0:
        best = stopper.best_epoch
        assert np.isclose(m.evaluate(X[:20], y[:20])["loss"], h["val_loss"][best])

    # a validation-driven schedule: rank 0 measures, every rank steps the same schedule
    m = new_model()
    h = dist.fit(m, Xl, yl, comm=comm, epochs=6, batch_size=4, learning_rate=0.5,
                 schedule=ReduceOnPlateau(factor=0.5, patience=0),
                 # flipped labels: the validation loss rises, so the rate is cut
                 validation_data=(X[:20], 1 - y[:20]) if rank == 0 else None)
    assert gather_equal(comm, np.array(h["lr"])) and gather_equal(comm, m.params)
    assert min(h["lr"]) < 0.5, h["lr"]

    m = new_model()
    h = dist.fit(m, Xl, yl, comm=comm, epochs=4, batch_size=4, learning_rate=0.1,
                 optimizer="adam", average_every=3)
    assert gather_equal(comm, m.params), "replicas differ after local SGD"
    assert h["loss"][-1] < h["loss"][0]

    path = comm.bcast(os.path.join(tempfile.mkdtemp(), "m.npz") if rank == 0 else None)
    dist.save(m, path, comm=comm)
    if rank == 0:
        assert np.array_equal(fastbp.Model.load(path).params, m.params)
elif mode == "bad-argument":
    m = new_model()
    exc = expect(ValueError if rank == 1 else dist.DistributedError, lambda: dist.fit(
        m, Xl, yl, comm=comm, epochs=2, learning_rate=-1.0 if rank == 1 else 0.1))
    if rank == 0:
        assert "rank 1" in str(exc) and "learning_rate" in str(exc), exc
    exc = expect(ValueError, lambda: dist.fit(m, Xl, yl, comm=comm, epochs=2 + rank))
    assert "different arguments" in str(exc), exc
    assert m.history.epochs == 0
elif mode == "callback-error":
    def bad(epoch, logs):
        raise KeyError("boom")

    m = new_model()
    exc = expect(KeyError if rank == 0 else dist.DistributedError, lambda: dist.fit(
        m, Xl, yl, comm=comm, epochs=3, callbacks=[bad]))
    if rank == 1:
        assert "boom" in str(exc) and "rank 0" in str(exc), exc
elif mode in ("step-error", "stuck"):
    if rank == 1:
        real = dist.apply_step
        calls = [0]

        def failing(*args):
            calls[0] += 1
            if calls[0] == 5:
                if mode == "stuck":
                    time.sleep(600)
                raise RuntimeError("simulated failure on rank 1")
            return real(*args)

        dist.apply_step = failing
    m = new_model()
    dist.fit(m, Xl, yl, comm=comm, epochs=5, batch_size=2,
             timeout=2.0 if mode == "stuck" else None)
    raise SystemExit(f"rank {rank}: training finished although rank 1 failed")
elif mode == "absent":
    if rank == 1:
        time.sleep(600)  # never calls fit: rank 0's watchdog must end the job
    dist.fit(new_model(), Xl, yl, comm=comm, epochs=1, timeout=2.0)
    raise SystemExit(f"rank {rank}: training finished although rank 1 never joined")
else:
    raise SystemExit(f"unknown mode {mode!r}")

comm.Barrier()
if rank == 0:
    print(f"{mode}: OK", flush=True)
