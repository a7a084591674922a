"""Copies of a model taken while another thread trains it (pickle, deepcopy, save) are
consistent snapshots at a step boundary: parameters, optimizer state and step counter all
from the same step."""

import copy
import pickle
import threading
import time

import numpy as np

import fastbp
import fastbp._training.loop as loop

EPOCHS = 12


def test_snapshots_during_training_are_taken_at_step_boundaries(monkeypatch, tmp_path):
    monkeypatch.setattr(loop, "CALL_SECONDS", 0.0)  # one batch per compiled call
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, size=64)
    kw = dict(batch_size=4, learning_rate=0.05, optimizer="adam", shuffle=False)

    # the parameters after each step of the run, from a model trained step by step
    ref = fastbp.Model([6, 32, 3], loss="cross_entropy", seed=0)
    after = {0: (ref.params.copy(), ref.optimizer_state.copy())}
    for _epoch in range(EPOCHS):
        for b in range(16):
            ref.partial_fit(X[4 * b:4 * b + 4], y[4 * b:4 * b + 4], **kw)
            after[ref.optimizer_steps] = (ref.params.copy(), ref.optimizer_state.copy())

    m = fastbp.Model([6, 32, 3], loss="cross_entropy", seed=0)
    snaps = []
    done = threading.Event()

    def slow_epochs(epoch, logs):  # the main thread gets time to take copies mid-run
        time.sleep(0.005)
        return False

    def train():
        m.fit(X, y, epochs=EPOCHS, callbacks=[slow_epochs], **kw)
        done.set()

    t = threading.Thread(target=train)
    t.start()
    while not done.is_set() and len(snaps) < 60:
        snaps.append(pickle.loads(pickle.dumps(m)))
        snaps.append(copy.deepcopy(m))
    t.join()
    assert snaps
    for s in snaps:
        p, st = after[s.optimizer_steps]
        np.testing.assert_array_equal(s.params, p)
        if s.optimizer_steps:
            np.testing.assert_array_equal(s.optimizer_state, st)
