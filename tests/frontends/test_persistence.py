"""save/load, atomic writes, pickle and copy, exact resumption."""

import copy
import json
import os
import pickle
import re
import time
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
        assert set(data.files) == {"header", "params", "optimizer_state", "history",
                                   "checksum"}
        header = json.loads(str(data["header"][()]))
        assert data["optimizer_state"].shape == (2, m.params.size)
        history = data["history"]
    assert header["format"] == "fastbp.model" and header["version"] == 2
    assert header["layer_sizes"] == [4, 5, 3] and header["dtype"] == "float32"
    assert header["optimizer"]["name"] == "adam"
    assert header["optimizer"]["config"] == {"betas": [0.8, 0.9], "eps": 1e-8}
    assert header["optimizer"]["step"] == m.optimizer_steps
    assert header["schedule"]["name"] == "reduce_on_plateau"
    assert header["schedule"]["state"]["epoch"] == 3
    assert header["shuffle_rng"]["bit_generator"] == "PCG64"
    assert "history" not in header and header["history_metrics"] == list(m.history.keys())
    assert history.dtype == np.float64 and history.shape == (len(m.history.keys()), 3)
    assert history[header["history_metrics"].index("val_loss")].tolist() == m.history[
        "val_loss"]
    with zipfile.ZipFile(path) as z:  # plain .npy members only, stored uncompressed
        assert sorted(z.namelist()) == ["checksum.npy", "header.npy", "history.npy",
                                        "optimizer_state.npy", "params.npy"]
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_long_history_is_stored_compactly_and_round_trips(tmp_path):
    """Online training (one partial_fit per sample) grows the history by an epoch per call:
    300,000 epochs must save at about 8 bytes per value and load back exactly (NaN too)."""
    n = 300_000
    m = Model([2, 1], seed=0)
    rng = np.random.default_rng(0)
    loss = rng.random(n)
    loss[::1000] = np.nan
    m.history.metrics = {"loss": loss.tolist(), "time": (loss * 1e-6).tolist(),
                         "lr": [0.01] * n, "val_loss": [float("nan")] * n}
    path = tmp_path / "online.npz"
    m.save(path)
    values = 4 * n
    assert 8 * values < path.stat().st_size < 8 * values + 20_000
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("header.npy").file_size < 20_000  # the header stays small
    loaded = Model.load(path)
    assert list(loaded.history.keys()) == ["loss", "time", "lr", "val_loss"]
    for key, seq in m.history.metrics.items():
        got = loaded.history[key]
        assert isinstance(got, list) and all(type(v) is float for v in got[:10])
        assert np.array_equal(np.array(got).view(np.int64), np.array(seq).view(np.int64))
    assert loaded.history.epochs == n


def _as_version_1(path, out):
    """Rewrite the version 2 file ``path`` as fastbp wrote version 1: the history as JSON
    inside the header, no history member, the checksum over header, params and state."""
    with np.load(path, allow_pickle=False) as d:
        header = json.loads(str(d["header"][()]))
        params, state, hist = d["params"], d["optimizer_state"], d["history"]
    names = header.pop("history_metrics")
    header.update(version=1, history={k: hist[i].tolist() for i, k in enumerate(names)})
    text = json.dumps(header)
    np.savez(out, header=np.array(text), params=params, optimizer_state=state,
             checksum=np.array(fastbp._io._checksum(text, params, state)))


def test_version_1_files_still_load(tmp_path):
    m = _trained()
    m.history.metrics["val_accuracy"][1] = float("nan")
    m.save(tmp_path / "v2.npz")
    _as_version_1(tmp_path / "v2.npz", tmp_path / "v1.npz")
    with np.load(tmp_path / "v1.npz") as d:
        assert json.loads(str(d["header"][()]))["version"] == 1 and "history" not in d.files
    loaded = Model.load(tmp_path / "v1.npz")
    _assert_same(m, loaded, history=False)
    assert np.array_equal(loaded.history["val_accuracy"], m.history["val_accuracy"],
                          equal_nan=True)
    assert loaded.history.keys() == m.history.keys()
    # and a pickle made by that version (build_model with a version 1 header)
    header, arrays = fastbp._io.model_state(m)
    names, hist = header.pop("history_metrics"), arrays.pop("history")
    header.update(version=1, history={k: hist[i].tolist() for i, k in enumerate(names)})
    _assert_same(m, fastbp._io.build_model(Model, header, arrays), history=False)


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


TMP_NAME = re.compile(r"^\.model\.npz\.fastbp-tmp-[0-9a-f]{12}$")


def _crash_mid_write(exc):
    def savez(f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial garbage")
        # the temporary file is recognisable, next to the target
        assert [n for n in os.listdir(os.path.dirname(_crash_mid_write.path))
                if TMP_NAME.match(n)], os.listdir(os.path.dirname(_crash_mid_write.path))
        raise exc
    return savez


@pytest.mark.parametrize("exc", [OSError("disk full (simulated)"), KeyboardInterrupt()],
                         ids=["OSError", "KeyboardInterrupt"])
@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_crash_during_save_keeps_the_old_file(tmp_path, monkeypatch, where, exc):
    old = Model([2, 3, 1], seed=1)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()
    new = _trained()

    def fail(*args):
        raise exc

    _crash_mid_write.path = str(path)
    if where == "savez":
        monkeypatch.setattr(fastbp._io.np, "savez", _crash_mid_write(exc))
    else:
        monkeypatch.setattr(fastbp._io.os, where, fail)
    with pytest.raises(type(exc)):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert np.array_equal(Model.load(path).params, old.params)


def test_save_writes_through_symlinks(tmp_path):
    """Like open(path, "w"): the link stays a link and its target gets the new model."""
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "store" / "model.npz"
    Model([2, 3, 1], seed=1).save(real)
    os.chmod(real, 0o640)
    link = tmp_path / "links" / "current.npz"
    link.symlink_to(os.path.join("..", "store", "model.npz"))
    m = _trained()
    m.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "store", "model.npz")
    _assert_same(m, Model.load(real))
    assert real.stat().st_mode & 0o777 == 0o640  # the target keeps its permissions
    assert os.listdir(tmp_path / "links") == ["current.npz"]
    assert os.listdir(tmp_path / "store") == ["model.npz"]
    dangling = tmp_path / "links" / "new.npz"  # a link to a file not yet written
    dangling.symlink_to(tmp_path / "store" / "later.npz")
    m.save(dangling)
    assert dangling.is_symlink() and (tmp_path / "store" / "later.npz").is_file()


def test_save_and_load_accept_str_bytes_and_pathlike(tmp_path):
    class Where:
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return self.p

    m = _trained()
    for i, kind in enumerate((str, os.fsencode, Where, lambda p: Where(os.fsencode(p)))):
        path = kind(str(tmp_path / f"m{i}.npz"))
        m.save(path)
        _assert_same(m, Model.load(path))
    assert sorted(os.listdir(tmp_path)) == [f"m{i}.npz" for i in range(4)]


def test_save_respects_permissions(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    Model([2, 3, 1], seed=1).save(path)
    before = path.read_bytes()
    os.chmod(path, 0o444)
    if os.geteuid() == 0:  # root may write anything: simulate an unprivileged user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
            False if os.path.samefile(p, path) and mode & os.W_OK else real_access(p, mode)))
    with pytest.raises(PermissionError, match="not writable.*chmod u\\+w"):
        _trained().save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and path.stat().st_mode & 0o777 == 0o444
    assert os.listdir(tmp_path) == ["model.npz"]
    with pytest.raises(IsADirectoryError):
        _trained().save(tmp_path)


def test_save_removes_temporary_files_of_killed_saves(tmp_path):
    """A save killed outright (SIGKILL) leaves its temporary file; the next save to the same
    path removes it once it is old and unlocked, and leaves those of live saves alone."""
    fcntl = pytest.importorskip("fcntl", reason="stale temporary files are told by flock")
    path = tmp_path / "model.npz"
    stale, fresh, live = (tmp_path / f".model.npz.fastbp-tmp-{c * 12}" for c in "abc")
    other = tmp_path / ".other.npz.fastbp-tmp-dddddddddddd"
    for p in (stale, fresh, live, other):
        p.write_bytes(b"partial")
    old = time.time() - 3600
    for p in (stale, live, other):
        os.utime(p, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        Model([2, 1], seed=0).save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (path, fresh, live, other))


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
