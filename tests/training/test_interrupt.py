"""Ctrl-C during fit: the model keeps every completed step, the history stays consistent,
and the KeyboardInterrupt is re-raised."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import sigint_on_call

import fastbp
import fastbp._training.loop as model_mod


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)


def _same(a, b):
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.optimizer_state, b.optimizer_state)
    assert a.optimizer_steps == b.optimizer_steps


def test_interrupt_from_callback_keeps_completed_epochs_and_resumes_exactly():
    X, y = _data()
    kw = dict(batch_size=8, learning_rate=0.05, optimizer="adam")

    def stop(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    m = fastbp.Model([4, 6, 3], loss="cross_entropy", seed=0)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=10, callbacks=[stop], **kw)
    assert m.history.epochs == 3 and all(len(v) == 3 for v in m.history.metrics.values())
    assert m.history.events == [{"event": "interrupted", "epoch": 3, "batch": 0,
                                 "n_batches": 12, "step": 36}]
    ref = fastbp.Model([4, 6, 3], loss="cross_entropy", seed=0)
    ref.fit(X, y, epochs=3, **kw)
    _same(m, ref)
    m.fit(X, y, epochs=2, **kw)  # resuming equals uninterrupted training
    ref.fit(X, y, epochs=2, **kw)
    _same(m, ref)
    assert m.history["loss"] == ref.history["loss"]


def test_sigint_mid_epoch_stops_after_the_running_call(monkeypatch):
    """A real SIGINT delivered while a compiled call runs is honoured when it returns:
    the model holds exactly the steps completed so far."""
    monkeypatch.setattr(model_mod, "CALL_SECONDS", 0.0)  # one batch per compiled call
    calls = sigint_on_call(monkeypatch, model_mod, "train_steps", 3)
    X, y = _data()
    m = fastbp.Model([4, 6, 3], loss="cross_entropy", seed=0)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=5, batch_size=8, learning_rate=0.1, shuffle=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert len(calls) == 3 and m.optimizer_steps == 3 and m.history.epochs == 0
    assert m.history.events[-1] == {"event": "interrupted", "epoch": 0, "batch": 3,
                                    "n_batches": 12, "step": 3}
    monkeypatch.undo()  # the real driver again
    ref = fastbp.Model([4, 6, 3], loss="cross_entropy", seed=0)  # the first 3 batches
    ref.fit(X[:24], y[:24], epochs=1, batch_size=8, learning_rate=0.1, shuffle=False)
    _same(m, ref)


def test_sigint_at_the_end_of_the_last_epoch_still_raises(monkeypatch):
    X, y = _data()

    def cb(epoch, logs):
        if epoch == 1:
            signal.raise_signal(signal.SIGINT)

    m = fastbp.Model([4, 3], loss="cross_entropy", seed=0)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=2, callbacks=[cb])
    assert m.history.epochs == 2 and m.history.events[-1]["epoch"] == 2


def test_lbfgs_interrupt_keeps_an_accepted_iterate():
    X, y = _data()

    def cb(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    m = fastbp.Model([4, 5, 3], loss="cross_entropy", seed=0)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=20, optimizer="lbfgs", callbacks=[cb])
    assert m.history.epochs == 2 and np.isfinite(m.params).all()
    assert m.history.events[-1]["event"] == "interrupted"
    m.fit(X, y, epochs=2, optimizer="lbfgs")


SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import fastbp
    rng = np.random.default_rng(0)
    X = rng.random((60000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60000)
    m = fastbp.Model([784, 128, 10], loss="cross_entropy", seed=0)
    m.fit(X[:64], y[:64], epochs=1)  # load the compiled kernels
    steps0, epochs0 = m.optimizer_steps, m.history.epochs
    print("ready", flush=True)
    try:
        m.fit(X, y, epochs=1000, batch_size=32, learning_rate=0.01)
    except KeyboardInterrupt:
        t = time.perf_counter()
        ev = m.history.events[-1]
        ok = (np.isfinite(m.params).all() and ev["event"] == "interrupted"
              and m.history.epochs == len(m.history["loss"]) == ev["epoch"]
              and m.optimizer_steps == ev["step"]
              == steps0 + (ev["epoch"] - epochs0) * ev["n_batches"] + ev["batch"])
        print("interrupted", t, int(ok), m.optimizer_steps, flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_subprocess_is_honoured_within_about_a_second():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastbp.__file__)), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.5)  # into the big fit
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().split()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert line and line[0] == "interrupted", proc.stderr.read()
    assert line[2] == "1", line  # consistent model and history
    assert int(line[3]) > 1  # some training happened
    # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes
    latency = float(line[1]) - sent
    assert latency < 1.5, latency
