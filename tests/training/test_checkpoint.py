"""``fastbp.ModelCheckpoint``: saves during training, atomically, with ``save``'s file
safety; a checkpoint resumes training bit for bit."""

import os
import re

import numpy as np
import pytest

import fastbp
from fastbp import EarlyStopping, Model, ModelCheckpoint
from fastbp.optim import Adam

TMP_NAME = re.compile(r"^\..*\.fastbp-tmp-[0-9a-f]{12}$")


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    return X, y


def _model(seed=3):
    return Model([4, 6, 3], activation="tanh", loss="cross_entropy", seed=seed)


KW = dict(batch_size=8, learning_rate=0.05, optimizer=Adam(), validation_split=0.25)


def test_each_epoch_checkpoint_resumes_bit_for_bit(tmp_path):
    X, y = _data()
    full = _model()
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.npz")
    full.fit(X, y, epochs=4, callbacks=[ckpt], **KW)
    names = sorted(os.listdir(tmp_path))
    assert [n[:8] for n in names] == [f"ckpt-{e:02d}-" for e in (1, 2, 3, 4)]
    assert names[1] == f"ckpt-02-{full.history['val_loss'][1]:.3f}.npz"
    assert ckpt.last_saved == str(tmp_path / names[-1])
    last = Model.load(tmp_path / names[-1])
    np.testing.assert_array_equal(last.params, full.params)
    resumed = Model.load(tmp_path / names[1])  # after epoch 2 of 4
    assert resumed.history.epochs == 2
    resumed.fit(X, y, epochs=2, **KW)
    np.testing.assert_array_equal(resumed.params, full.params)
    np.testing.assert_array_equal(resumed.optimizer_state, full.optimizer_state)
    assert resumed.history["val_loss"] == full.history["val_loss"]


def test_save_best_only_saves_the_improving_epochs(tmp_path):
    X, y = _data()
    m = _model()
    ckpt = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    stop = EarlyStopping(patience=100, restore_best=True)
    m.fit(X, y, epochs=12, early_stopping=stop, callbacks=[ckpt], batch_size=8,
          learning_rate=0.5, optimizer=Adam(), validation_split=0.25)
    val = m.history["val_loss"]
    improving = [e for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert len(improving) < len(val)  # the learning rate is too high to improve each epoch
    assert sorted(os.listdir(tmp_path)) == sorted(f"best-{e + 1}.npz" for e in improving)
    assert ckpt.best == min(val) and ckpt.best_epoch == stop.best_epoch == improving[-1]
    best = Model.load(ckpt.last_saved)  # the best epoch's model: what restore_best put back
    np.testing.assert_array_equal(best.params, m.params)


def test_best_is_kept_over_partial_fit_calls_and_forgotten_for_another_model(tmp_path):
    X, y = _data(200)
    m = _model()
    path = tmp_path / "best.npz"
    ckpt = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    saved = []
    for i in range(6):  # out of core: one chunk a call
        chunk = slice(40 * (i % 5), 40 * (i % 5) + 40)
        m.partial_fit(X[chunk], y[chunk], learning_rate=0.05, callbacks=[ckpt])
        saved.append(ckpt.best_epoch == i)
    losses = m.history["loss"]
    assert saved == [losses[i] < min(losses[:i], default=np.inf) for i in range(6)]
    assert saved[0] and ckpt.best == min(losses)
    np.testing.assert_array_equal(Model.load(path).history["loss"],
                                  losses[: ckpt.best_epoch + 1])
    other = _model(seed=4)
    other.fit(X, y, epochs=1, callbacks=[ckpt])  # another model: a best of its own
    assert ckpt.best_epoch == 0 and ckpt.best == other.history["loss"][0]


def test_a_checkpoint_has_saves_file_safety(tmp_path):
    """Symbolic links are followed, permission bits kept, no temporary file left."""
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "model.npz"
    _model().save(real)
    os.chmod(real, 0o640)
    link = tmp_path / "current.npz"
    link.symlink_to(real)
    X, y = _data()
    m = _model()
    m.fit(X, y, epochs=2, callbacks=[ModelCheckpoint(link)], **KW)
    assert link.is_symlink() and real.stat().st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(Model.load(real).params, m.params)
    assert sorted(os.listdir(tmp_path)) == ["current.npz", "store"]
    assert os.listdir(tmp_path / "store") == ["model.npz"]


@pytest.mark.parametrize("exc", [OSError("disk full (simulated)"), KeyboardInterrupt()],
                         ids=["OSError", "KeyboardInterrupt"])
def test_a_save_that_fails_keeps_the_previous_checkpoint(tmp_path, monkeypatch, exc):
    X, y = _data()
    m = _model()
    path = tmp_path / "ckpt.npz"
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # the third epoch's save fails while its temporary file is written
        calls.append(fd)
        if len(calls) == 5:  # saves fsync their file, then the folder
            raise exc
        return real_fsync(fd)

    monkeypatch.setattr(fastbp._io.os, "fsync", fsync)
    with pytest.raises(type(exc)):
        m.fit(X, y, epochs=5, callbacks=[ModelCheckpoint(path)], **KW)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    second = Model.load(path)
    assert second.history.epochs == 2
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: the model keeps its epochs
        assert m.history.epochs == 3
    else:  # another error: the model goes back to the start of the call
        assert m.history.epochs == 0


def test_problems_are_reported_before_training(tmp_path):
    X, y = _data()
    m = _model()
    before = m.params.copy()
    cases = [
        (ModelCheckpoint(tmp_path / "no" / "such" / "m.npz"), FileNotFoundError,
         "folder .* does not exist"),
        (ModelCheckpoint(tmp_path / "m-{val_acc:.2f}.npz"), ValueError,
         r"field\(s\) \['val_acc'\].*records \['accuracy', 'loss', 'lr', 'time'\]"),
        (ModelCheckpoint(tmp_path / "m-{epoch.npz"), ValueError, "not a valid format"),
        (ModelCheckpoint(tmp_path / "m.npz", save_best_only=True), ValueError,
         "monitors 'val_loss' but there is no validation data"),
    ]
    for ckpt, exc, match in cases:
        with pytest.raises(exc, match=match):
            m.fit(X, y, epochs=2, callbacks=[ckpt])
    reg = Model([4, 3, 1], seed=0)
    with pytest.raises(ValueError, match="not a classification loss"):
        reg.fit(X, X[:, 0], callbacks=[ModelCheckpoint(tmp_path / "r.npz",
                                                       monitor="accuracy",
                                                       save_best_only=True)])
    locked = tmp_path / "locked.npz"
    m.save(locked)
    os.chmod(locked, 0o444)
    if not os.access(locked, os.W_OK):  # root may write anything
        with pytest.raises(PermissionError, match="not writable"):
            m.fit(X, y, callbacks=[ModelCheckpoint(locked)])
    np.testing.assert_array_equal(m.params, before)
    assert m.history.epochs == 0 and sorted(os.listdir(tmp_path)) == ["locked.npz"]


def test_arguments_are_checked_and_a_checkpoint_is_not_called_by_hand(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'val_loss'"):
        ModelCheckpoint(tmp_path / "m.npz", monitor="val_los")
    with pytest.raises(TypeError, match="ModelCheckpoint path must be a file name"):
        ModelCheckpoint(3)
    with pytest.raises(TypeError, match="save_best_only must be True or False"):
        ModelCheckpoint("m.npz", save_best_only="yes")
    ckpt = ModelCheckpoint(tmp_path / "m.npz", monitor="loss", min_delta=0.1)
    assert repr(ckpt) == (f"ModelCheckpoint(path={str(tmp_path / 'm.npz')!r}, monitor='loss', "
                          "save_best_only=False, min_delta=0.1)")
    with pytest.raises(TypeError, match="pass it to model.fit"):
        ckpt(0, {"loss": 1.0})
