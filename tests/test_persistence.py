"""save/load, atomic writes, pickle and copy, exact resumption."""

import copy
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import fastbp._io
from fastbp import EarlyStopping, Model
from fastbp.optim import SGD, Adam
from fastbp.schedules import ReduceOnPlateau, StepDecay


def _clf(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def _trained(dtype="float32", **fit_kw):
    X, y = _clf()
    m = Model([4, 5, 3], activation="relu", loss="cross_entropy", seed=11, dtype=dtype,
              dropout=[0.2], init="he_normal")
    kw = dict(epochs=3, batch_size=7, optimizer=Adam(betas=(0.8, 0.9)),
              schedule=ReduceOnPlateau(patience=0, factor=0.5), l2=1e-3,
              validation_split=0.2)
    kw.update(fit_kw)
    m.fit(X, y, **kw)
    return m


def _assert_same(a, b, history=True):
    assert a.layer_sizes.tolist() == b.layer_sizes.tolist()
    assert (a.activations, a.output, a.loss, a.dtype, a.seed, a.init, a.dropout) == (
        b.activations, b.output, b.loss, b.dtype, b.seed, b.init, b.dropout)
    assert a.params.dtype == b.params.dtype and np.array_equal(a.params, b.params)
    assert np.array_equal(a.optimizer_state, b.optimizer_state)
    assert a.optimizer_state.dtype == b.optimizer_state.dtype
    assert a.optimizer_steps == b.optimizer_steps and a.optimizer == b.optimizer
    assert a.schedule == b.schedule and a.schedule.get_state() == b.schedule.get_state()
    assert a.state.shuffle_rng.bit_generator.state == b.state.shuffle_rng.bit_generator.state
    if history:
        assert a.history.metrics == b.history.metrics


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    m = _trained(dtype)
    path = tmp_path / "model.npz"
    m.save(path)
    loaded = Model.load(path)
    _assert_same(m, loaded)
    X, _ = _clf()
    assert np.array_equal(m.predict(X), loaded.predict(X))
    assert loaded.weights[0].base is not None  # views into params again
    loaded.params[0] = 123.0
    assert loaded.weights[0][0, 0] == 123.0


def test_resume_equals_uninterrupted_training(tmp_path):
    X, y = _clf()
    kw = dict(batch_size=7, optimizer=SGD(momentum=0.9, nesterov=True),
              schedule=StepDecay(step_size=2, gamma=0.5), l2=1e-3, clip_norm=1.0,
              validation_split=0.2, class_weight="balanced")
    full = Model([4, 5, 3], activation="tanh", loss="cross_entropy", seed=3, dropout=0.3)
    full.fit(X, y, epochs=6, **kw)
    part = Model([4, 5, 3], activation="tanh", loss="cross_entropy", seed=3, dropout=0.3)
    part.fit(X, y, epochs=4, **kw)
    part.save(tmp_path / "ckpt.npz")
    del part
    resumed = Model.load(tmp_path / "ckpt.npz")
    resumed.fit(X, y, epochs=2, **kw)
    _assert_same(full, resumed, history=False)
    for key in ("loss", "lr", "accuracy", "val_loss", "val_accuracy"):
        assert full.history[key] == resumed.history[key]


def test_file_format_is_documented_npz_with_json_header(tmp_path):
    m = _trained()
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"header", "params", "optimizer_state", "checksum"}
        header = json.loads(str(data["header"][()]))
        assert data["optimizer_state"].shape == (2, m.params.size)
    assert header["format"] == "fastbp.model" and header["version"] == 1
    assert header["layer_sizes"] == [4, 5, 3] and header["dtype"] == "float32"
    assert header["optimizer"]["name"] == "adam"
    assert header["optimizer"]["config"] == {"betas": [0.8, 0.9], "eps": 1e-8}
    assert header["optimizer"]["step"] == m.optimizer_steps
    assert header["schedule"]["name"] == "reduce_on_plateau"
    assert header["schedule"]["state"]["epoch"] == 3
    assert header["shuffle_rng"]["bit_generator"] == "PCG64"
    assert len(header["history"]["val_loss"]) == 3
    with zipfile.ZipFile(path) as z:  # plain .npy members only
        assert sorted(z.namelist()) == ["checksum.npy", "header.npy", "optimizer_state.npy",
                                        "params.npy"]


def test_fresh_model_round_trip(tmp_path):
    m = Model([2, 3, 1], seed=5)
    m.save(tmp_path / "fresh.npz")
    loaded = Model.load(tmp_path / "fresh.npz")
    assert loaded.optimizer is None and loaded.schedule is None
    assert np.array_equal(m.params, loaded.params) and loaded.history.epochs == 0


def test_load_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, header=np.array([{"format": "fastbp.model"}], dtype=object),
             params=np.zeros(3), optimizer_state=np.zeros((0, 3)))
    with pytest.raises(ValueError, match="not a valid fastbp model file.*object"):
        Model.load(path)


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a valid fastbp model file"):
        Model.load(tmp_path / "other.npz")
    m = _trained()
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as d:
        header = json.loads(str(d["header"][()]))
        arrays = {k: d[k] for k in ("params", "optimizer_state")}
    header["version"] = 99
    np.savez(tmp_path / "future.npz", header=np.array(json.dumps(header)), **arrays)
    with pytest.raises(ValueError, match="version 99"):
        Model.load(tmp_path / "future.npz")


def _crash_mid_write(*args, **kwargs):
    f = args[0]
    f.write(b"PK\x03\x04 partial garbage")
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_crash_during_save_keeps_the_old_file(tmp_path, monkeypatch, where):
    old = Model([2, 3, 1], seed=1)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()
    new = _trained()
    if where == "savez":
        monkeypatch.setattr(fastbp._io.np, "savez", _crash_mid_write)
    elif where == "fsync":
        monkeypatch.setattr(fastbp._io.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError()))
    else:
        monkeypatch.setattr(fastbp._io.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError()))
    with pytest.raises(OSError):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert np.array_equal(Model.load(path).params, old.params)


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "model.npz"
    Model([2, 3, 1], seed=1).save(path)
    m = _trained()
    m.save(str(path))
    _assert_same(m, Model.load(path))


def test_pickle_and_deepcopy():
    m = _trained(early_stopping=EarlyStopping(patience=5))
    X, y = _clf()
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m), copy.copy(m)):
        _assert_same(m, other)
        assert other.params is not m.params
        assert not np.shares_memory(other.params, m.params)
        assert not np.shares_memory(other.optimizer_state, m.optimizer_state)
        assert np.array_equal(other.predict(X), m.predict(X))
    twin = copy.deepcopy(m)
    m.fit(X, y, epochs=2, batch_size=7)
    twin.fit(X, y, epochs=2, batch_size=7)
    _assert_same(m, twin, history=False)
    assert m.history["loss"] == twin.history["loss"]


def test_saved_file_mode(tmp_path):
    path = tmp_path / "m.npz"
    Model([2, 1], seed=0).save(path)
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    Model([2, 1], seed=0).save(path)
    assert path.stat().st_mode & 0o777 == 0o600
