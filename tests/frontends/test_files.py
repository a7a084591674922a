"""File safety: load never executes code and rejects every broken file with a clear error;
save is atomic and fsynced."""

import io
import json
import os
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastbp._io
import fastbp.model
from fastbp import Model, ModelFileError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    m = Model([4, 5, 3], loss="cross_entropy", seed=0)
    m.fit(X, y, epochs=2, optimizer="adam", validation_split=0.2)
    path = tmp_path_factory.mktemp("files") / "m.npz"
    m.save(path)
    return m, path, path.read_bytes()


def _equal(a, b):
    return (np.array_equal(a.params, b.params) and a.params.dtype == b.params.dtype
            and np.array_equal(a.optimizer_state, b.optimizer_state)
            and a.optimizer_steps == b.optimizer_steps
            and a.layer_sizes.tolist() == b.layer_sizes.tolist() and a.loss == b.loss)


def _members(raw):
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rezip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def test_every_truncation_is_rejected(saved, tmp_path):
    m, _, raw = saved
    p = tmp_path / "t.npz"
    lengths = sorted(set(range(0, len(raw), max(1, len(raw) // 300))) | {len(raw) - 1})
    for n in lengths:
        p.write_bytes(raw[:n])
        with pytest.raises(ModelFileError, match="not a valid fastbp model file"):
            Model.load(p)
    assert len(lengths) > 250


def test_random_corruption_is_rejected_or_harmless(saved, tmp_path):
    """Flip random bytes: either a ModelFileError, or (a byte the format does not use, e.g.
    a zip timestamp) the very same model -- never a different model, never another error."""
    m, _, raw = saved
    rng = np.random.default_rng(1)
    p = tmp_path / "c.npz"
    rejected = 0
    for _ in range(400):
        b = bytearray(raw)
        for pos in rng.integers(0, len(raw), size=rng.integers(1, 4)):
            b[pos] ^= int(rng.integers(1, 256))
        p.write_bytes(bytes(b))
        try:
            loaded = Model.load(p)
        except ModelFileError:
            rejected += 1
            continue
        assert _equal(loaded, m)
    assert rejected > 300


def test_tampered_contents_fail_the_checksum(saved, tmp_path):
    m, _, raw = saved
    members = _members(raw)
    header = json.loads(str(np.load(io.BytesIO(members["header.npy"]))[()]))
    header["loss"] = "squared_error"
    members["header.npy"] = _npy(np.array(json.dumps(header)))
    (tmp_path / "h.npz").write_bytes(_rezip(members))
    with pytest.raises(ModelFileError, match="checksum"):
        Model.load(tmp_path / "h.npz")
    members = _members(raw)
    params = np.load(io.BytesIO(members["params.npy"]))
    params[0] += 1
    members["params.npy"] = _npy(params)
    (tmp_path / "p.npz").write_bytes(_rezip(members))
    with pytest.raises(ModelFileError, match="checksum"):
        Model.load(tmp_path / "p.npz")


def _header_case(raw, edit):
    members = _members(raw)
    members.pop("checksum.npy")  # as a file written before checksums: the checks remain
    header = json.loads(str(np.load(io.BytesIO(members["header.npy"]))[()]))
    out = edit(header)
    members["header.npy"] = _npy(np.array(json.dumps(header if out is None else out)))
    return _rezip(members)


HEADER_EDITS = {
    "layer_sizes": lambda h: h.update(layer_sizes=[4, 5, 4]),
    "huge layers": lambda h: h.update(layer_sizes=[2**31, 2**31, 2**31]),
    "string layers": lambda h: h.update(layer_sizes="4,5,3"),
    "bool seed": lambda h: h.update(seed=True),
    "dtype": lambda h: h.update(dtype="float16"),
    "activation": lambda h: h.update(activations=["nope"]),
    "loss": lambda h: h.update(loss=3),
    "optimizer name": lambda h: h["optimizer"].update(name="os.system"),
    "optimizer config": lambda h: h["optimizer"].update(config={"evil": 1}),
    "optimizer step": lambda h: h["optimizer"].update(step=-1),
    "schedule": lambda h: h.update(schedule={"name": "constant", "config": {}, "state": 3}),
    "rng": lambda h: h.update(shuffle_rng={"bit_generator": "MT19937"}),
    "history": lambda h: h.update(history_metrics="loss"),
    "history names": lambda h: h.update(history_metrics=["loss"] * len(h["history_metrics"])),
    "history rows": lambda h: h["history_metrics"].append("extra"),
    "events": lambda h: h.update(events=[1]),
    "history first epoch": lambda h: h.update(history_first_epoch=-1),
    "missing key": lambda h: h.pop("dropout"),
    "format": lambda h: h.update(format="other"),
    "not an object": lambda h: [1, 2],
}


@pytest.mark.parametrize("case", sorted(HEADER_EDITS))
def test_malformed_headers_are_rejected(saved, tmp_path, case):
    _, _, raw = saved
    (tmp_path / "x.npz").write_bytes(_header_case(raw, HEADER_EDITS[case]))
    with pytest.raises(ModelFileError, match="not a valid fastbp model file"):
        Model.load(tmp_path / "x.npz")


def test_wrong_version_names_the_versions(saved, tmp_path):
    _, _, raw = saved
    (tmp_path / "v.npz").write_bytes(_header_case(raw, lambda h: h.update(version=3)))
    with pytest.raises(ModelFileError, match="version 3 is not supported.*reads versions 1 to 2"):
        Model.load(tmp_path / "v.npz")


def test_file_without_checksum_still_loads(saved, tmp_path):
    m, _, raw = saved
    members = _members(raw)
    members.pop("checksum.npy")
    (tmp_path / "old.npz").write_bytes(_rezip(members))
    assert _equal(Model.load(tmp_path / "old.npz"), m)


def test_declared_huge_array_is_rejected_without_allocating(saved, tmp_path):
    _, _, raw = saved
    members = _members(raw)
    fake = bytearray(_npy(np.zeros(3, np.float32)))
    fake = bytes(fake).replace(b"(3,)", b"(10000000000000,)".ljust(4)[:4])  # keep length
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros(3, np.float32))
    hdr["shape"] = (10**13,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, hdr)
    members["params.npy"] = buf.getvalue() + b"\0" * 64
    (tmp_path / "big.npz").write_bytes(_rezip(members))
    with pytest.raises(ModelFileError, match="params"):
        Model.load(tmp_path / "big.npz")
    del fake


def _packed(sizes, compression=zipfile.ZIP_STORED, checksum=True):
    """The members of a fresh all-zero ``sizes`` model (with a valid checksum), packed with
    ``compression``: deflated, 16 MB of parameters take 17 kB."""
    m = Model(sizes, seed=0)
    m.params[:] = 0
    header, arrays = fastbp._io.model_state(m)
    text = json.dumps(header)
    members = {"header": np.array(text), **arrays}
    if checksum:
        members["checksum"] = np.array(fastbp._io._checksum(text, *arrays.values()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, arr in members.items():
            z.writestr(name + ".npy", _npy(arr))
    return buf.getvalue()


def _peak_load(path):
    """(exception raised by Model.load(path), peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        Model.load(path)
    except Exception as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, None


def test_small_file_cannot_make_load_allocate_much(tmp_path):
    """A 2000x2000 model (16 MB of float32), deflated to a few kB with a valid checksum, is
    refused before its arrays are allocated; so is a member whose .npy header declares more
    data than the member holds."""
    p = tmp_path / "bomb.npz"
    p.write_bytes(_packed([2000, 2000], zipfile.ZIP_DEFLATED))
    assert p.stat().st_size < 100_000
    exc, peak = _peak_load(p)
    assert isinstance(exc, ModelFileError) and "compressed (deflate)" in str(exc), exc
    assert peak < 2**21, peak
    members = _members(_packed([2000, 2000], checksum=False))
    members["params.npy"] = members["params.npy"][:200]  # npy header + a few values
    p.write_bytes(_rezip(members))
    exc, peak = _peak_load(p)
    assert isinstance(exc, ModelFileError), exc
    assert "params.npy declares a float32 array of shape (4002000,)" in str(exc), exc
    assert peak < 2**21, peak
    p.write_bytes(_packed([20, 20]))  # the same, stored as save writes it, loads
    assert Model.load(p).layer_sizes.tolist() == [20, 20]


def _set_central_size(raw, name, size):
    """Patch the uncompressed size that the zip's central directory declares for ``name``."""
    b = bytearray(raw)
    at = b.index(b"PK\x01\x02")
    while b[at + 46:at + 46 + len(name)] != name.encode():
        at = b.index(b"PK\x01\x02", at + 4)
    b[at + 24:at + 28] = size.to_bytes(4, "little")
    return bytes(b)


def test_declared_member_size_must_equal_stored_size(saved, tmp_path):
    _, _, raw = saved
    plain = _rezip(_members(raw))
    for name in ("header.npy", "params.npy"):
        (tmp_path / "s.npz").write_bytes(_set_central_size(plain, name, 10**9))
        with pytest.raises(ModelFileError, match=f"member {name} declares 1000000000 bytes "
                                                 f"but stores"):
            Model.load(tmp_path / "s.npz")


@pytest.mark.parametrize("where", ["reading arrays", "building the model"])
def test_memory_shortage_raises_memory_error_not_invalid_file(saved, monkeypatch, where):
    """A valid file that cannot be loaded for lack of memory must not be called invalid
    (which invites deleting it)."""
    _, path, _ = saved

    def short(*args, **kwargs):
        raise MemoryError

    if where == "reading arrays":
        monkeypatch.setattr(np.lib.format, "read_array", short)
    else:
        monkeypatch.setattr(fastbp.model, "Network", short)
    with pytest.raises(MemoryError, match="memory ran short.*may be intact") as info:
        Model.load(path)
    assert not isinstance(info.value, ValueError)
    monkeypatch.undo()
    assert Model.load(path).layer_sizes.tolist() == [4, 5, 3]


class _Payload:
    def __reduce__(self):
        return (os.mkdir, (_Payload.target,))


def test_non_fastbp_files_are_rejected_and_never_executed(tmp_path):
    _Payload.target = str(tmp_path / "PWNED")
    cases = {
        "empty": b"",
        "text": b"hello, world\n",
        "pickle": pickle.dumps(_Payload()),
        "npy": _npy(np.arange(3.0)),
        "npz of other arrays": _rezip({"a.npy": _npy(np.arange(3.0))}),
        "object npy inside": _rezip({
            "header.npy": _npy(np.array("{}")), "optimizer_state.npy": _npy(np.zeros((0, 1))),
            "params.npy": pickle.dumps(_Payload())}),
    }
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload()], dtype=object), allow_pickle=True)
    cases["pickled object array"] = _rezip({"header.npy": buf.getvalue(),
                                            "params.npy": buf.getvalue(),
                                            "optimizer_state.npy": buf.getvalue()})
    for name, raw in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(raw)
        with pytest.raises(ModelFileError, match="not a valid fastbp model file"):
            Model.load(p)
        assert not os.path.exists(_Payload.target), name


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Model.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        Model.load(tmp_path)
    m = Model([2, 1], seed=0)
    for bad in (3, None, ["a"]):
        with pytest.raises(TypeError, match="path must be a file name"):
            m.save(bad)
        with pytest.raises(TypeError, match="path must be a file name"):
            Model.load(bad)
    with pytest.raises(ValueError, match="path"):
        m.save("")
    with pytest.raises(FileNotFoundError):
        m.save(tmp_path / "no" / "such" / "dir.npz")
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_save_is_fsynced_and_atomic(tmp_path, monkeypatch):
    m = Model([3, 2], seed=0)
    path = tmp_path / "m.npz"
    m.save(path)
    old = path.read_bytes()
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    real_replace = os.replace
    order = []
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append(len(synced)),
                                                     real_replace(a, b)))
    m.params[:] = 1
    m.save(path)
    assert len(synced) == 2 and order == [1]  # the file before the rename, then the directory
    # a failure just before the rename leaves the old file and no temporary file
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk")))
    m.params[:] = 2
    with pytest.raises(OSError, match="disk"):
        m.save(path)
    assert np.all(Model.load(path).params == 1) and os.listdir(tmp_path) == ["m.npz"]
    assert old != path.read_bytes()
