"""Model files: one ``.npz`` archive, read with ``allow_pickle=False``.

Format ``fastbp.model`` version 1 — an uncompressed NumPy ``.npz`` (zip) holding:

``header``
    0-d unicode array with a JSON object:
    ``format`` ("fastbp.model"), ``version`` (1), ``fastbp_version``,
    ``layer_sizes``, ``activations`` (hidden), ``output``, ``loss``, ``dtype``, ``seed``,
    ``init``, ``dropout`` (per hidden layer),
    ``optimizer``: null or {``name``, ``config`` (hyperparameters), ``step`` (t)},
    ``schedule``: null or {``name``, ``config``, ``state`` (progress)},
    ``shuffle_rng``: the PCG64 ``bit_generator.state`` of the shuffling generator,
    ``history``: {metric: [one value per epoch]} (NaN written as JSON ``NaN``).
``params``
    ``(n_params,)`` array of the model dtype, the flat parameter buffer (layout in
    ``fastbp.kernels._layout``: per layer ``W`` row-major ``(n_out, n_in)`` then ``b``).
``optimizer_state``
    ``(rows, n_params)`` array of the model dtype (rows per optimizer in
    ``fastbp.kernels._updates``).
``checksum``
    0-d unicode array, ``"sha256:"`` + the SHA-256 of the header's JSON text (UTF-8), then
    the bytes of ``params`` and of ``optimizer_state``. Optional when reading (files written
    before it was added load without the check). It detects corruption and edits; it is not
    a signature (whoever edits the file can recompute it).

Only plain numeric and unicode arrays are stored, so loading never unpickles or runs code.
``save`` writes to a temporary file in the target directory, flushes and fsyncs it, then
``os.replace``-s it over the target and fsyncs the directory: a crash leaves either the old
file or the new one, never a partial file.

``load`` checks the archive before it builds anything: the members' declared sizes, the
``.npy`` headers (dtype, shape) against the architecture in the JSON header, every header
field's type, and the checksum; anything wrong raises ``fastbp.ModelFileError`` (a
``ValueError``) naming the problem. Only a missing or unreadable file raises ``OSError``.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np

from . import optim as _optim_mod
from . import schedules as _sched_mod
from ._errors import ModelFileError
from ._validation import check_path

FORMAT = "fastbp.model"
VERSION = 1


def model_state(model) -> tuple[dict, dict]:
    """(JSON-serialisable header, dict of arrays) describing ``model`` completely."""
    from . import __version__

    state = model.state
    opt, sched = state.optimizer, state.schedule
    header = {
        "format": FORMAT,
        "version": VERSION,
        "fastbp_version": __version__,
        "layer_sizes": [int(s) for s in model.layer_sizes],
        "activations": list(model.activations),
        "output": model.output,
        "loss": model.loss,
        "dtype": model.dtype.name,
        "seed": int(model.seed),
        "init": model.init,
        "dropout": list(model.dropout),
        "optimizer": None if opt is None else {
            "name": opt.name, "config": opt.get_config(), "step": state.steps,
        },
        "schedule": None if sched is None else {
            "name": sched.name, "config": sched.get_config(), "state": sched.get_state(),
        },
        "shuffle_rng": state.shuffle_rng.bit_generator.state,
        "history": {k: [float(v) for v in seq] for k, seq in state.history.metrics.items()},
        "events": [dict(e) for e in state.history.events],
    }
    arrays = {"params": model.params, "optimizer_state": state.opt_state}
    return header, arrays


def build_model(cls, header: dict, arrays: dict):
    """A new ``cls`` instance from ``model_state`` output (also what unpickling calls)."""
    if header.get("format") != FORMAT:
        raise ValueError(f"not a fastbp model file (format={header.get('format')!r}).")
    if header.get("version") != VERSION:
        raise ValueError(
            f"fastbp model file version {header.get('version')!r} is not supported by this "
            f"fastbp (reads version {VERSION}); upgrade fastbp."
        )
    model = cls(
        header["layer_sizes"], activation=header["activations"], loss=header["loss"],
        output=header["output"], dtype=header["dtype"], seed=header["seed"],
        init=header["init"], dropout=header["dropout"],
    )
    params = np.asarray(arrays["params"])
    opt_state = np.asarray(arrays["optimizer_state"])
    n = model.params.shape[0]
    if params.shape != (n,) or params.dtype != model.dtype:
        raise ValueError(
            f"params in the file have shape {params.shape} and dtype {params.dtype}; the "
            f"architecture needs ({n},) {model.dtype}."
        )
    if opt_state.ndim != 2 or opt_state.shape[1] != n or opt_state.dtype != model.dtype:
        raise ValueError(f"optimizer_state has shape {opt_state.shape}, dtype "
                         f"{opt_state.dtype}.")
    model.params[...] = params
    state = model.state
    o = header["optimizer"]
    if o is not None:
        state.optimizer = _optim_mod.from_config(o["name"], o["config"])
        if opt_state.shape[0] != state.optimizer.state_rows:
            raise ValueError(
                f"optimizer_state has {opt_state.shape[0]} rows; {o['name']} needs "
                f"{state.optimizer.state_rows}."
            )
        state.opt_state = np.array(opt_state, dtype=model.dtype, order="C")
        state.counters[0] = int(o["step"])
    sc = header["schedule"]
    if sc is not None:
        state.schedule = _sched_mod.from_config(sc["name"], sc["config"], sc["state"])
    state.shuffle_rng.bit_generator.state = header["shuffle_rng"]
    h = state.history
    h.metrics = {k: [float(v) for v in seq] for k, seq in header["history"].items()}
    h.metrics.setdefault("loss", [])
    h.metrics.setdefault("time", [])
    h.events = [dict(e) for e in header.get("events", [])]
    return model


def _checksum(text: str, params: np.ndarray, state: np.ndarray) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    h.update(np.ascontiguousarray(params).tobytes())
    h.update(np.ascontiguousarray(state).tobytes())
    return "sha256:" + h.hexdigest()


def save_model(model, path) -> None:
    path = check_path(path)
    header, arrays = model_state(model)
    text = json.dumps(header)
    arrays = dict(arrays, checksum=np.array(
        _checksum(text, arrays["params"], arrays["optimizer_state"])))
    directory = os.path.dirname(os.path.abspath(path))
    try:  # mkstemp creates the file 0600; give it the old file's mode, else rw-r--r--
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(text), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


#: largest JSON header accepted (a long history is a few MiB)
MAX_HEADER_BYTES = 64 << 20
_REQUIRED = ("header.npy", "params.npy", "optimizer_state.npy")


def _fail(path, problem: str):
    return ModelFileError(f"{path!r} is not a valid fastbp model file: {problem}.")


def _npy_header(zf: zipfile.ZipFile, name: str):
    """(shape, dtype) declared by the ``.npy`` member ``name``, read without its data."""
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _Malformed(f"unsupported .npy version {version} in {name}")
    if fortran or dtype.hasobject or dtype.fields is not None:
        raise _Malformed(f"{name} is not a plain C-ordered array (dtype {dtype})")
    return shape, dtype


def _read(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with zf.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


class _Malformed(Exception):
    """A check of the file's contents failed (turned into ModelFileError by the loader)."""


def _expect(cond: bool, problem: str) -> None:
    if not cond:
        raise _Malformed(problem)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_header(h) -> int:
    """Types of every header field; returns the parameter count the architecture implies."""
    from . import __version__

    _expect(isinstance(h, dict), "the header is not a JSON object")
    _expect(h.get("format") == FORMAT, f"format is {h.get('format')!r}, not {FORMAT!r}")
    if h.get("version") != VERSION:
        raise ModelFileError(
            f"fastbp model file version {h.get('version')!r} is not supported by this fastbp "
            f"{__version__} (it reads version {VERSION}); use the fastbp version that wrote it "
            f"({h.get('fastbp_version')!r}) or upgrade."
        )
    sizes = h.get("layer_sizes")
    _expect(isinstance(sizes, list) and len(sizes) >= 2
            and all(_is_int(v) and 1 <= v <= 2**31 for v in sizes),
            f"layer_sizes is {sizes!r}")
    for key in ("activations", "dropout"):
        _expect(isinstance(h.get(key), list), f"{key} is not a list")
    _expect(all(isinstance(a, str) for a in h["activations"]), "activations are not names")
    for key in ("output", "loss", "dtype"):
        _expect(isinstance(h.get(key), str), f"{key} is not a string")
    _expect(h["dtype"] in ("float32", "float64"), f"dtype is {h['dtype']!r}")
    _expect(_is_int(h.get("seed")) and h["seed"] >= 0, "seed is not an integer >= 0")
    _expect(h.get("init") is None or isinstance(h["init"], str), "init is not a name")
    opt = h.get("optimizer")
    _expect(opt is None or (isinstance(opt, dict) and isinstance(opt.get("name"), str)
                            and opt["name"] in _optim_mod.OPTIMIZERS
                            and isinstance(opt.get("config"), dict)
                            and _is_int(opt.get("step")) and opt["step"] >= 0),
            f"optimizer is {opt!r}")
    sc = h.get("schedule")
    _expect(sc is None or (isinstance(sc, dict) and isinstance(sc.get("name"), str)
                           and sc["name"] in _sched_mod.SCHEDULES
                           and isinstance(sc.get("config"), dict)
                           and isinstance(sc.get("state"), dict)),
            f"schedule is {sc!r}")
    _expect(isinstance(h.get("shuffle_rng"), dict), "shuffle_rng is not a generator state")
    hist = h.get("history")
    _expect(isinstance(hist, dict) and all(
        isinstance(k, str) and isinstance(v, list)
        and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in v)
        for k, v in hist.items()), "history is not {metric: [numbers]}")
    _expect(len({len(v) for v in hist.values()}) <= 1, "history lists differ in length")
    ev = h.get("events", [])
    _expect(isinstance(ev, list) and all(isinstance(e, dict) for e in ev),
            "events is not a list of objects")
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def load_model(cls, path):
    path = check_path(path)
    with open(path, "rb") as f:  # a missing or unreadable file raises OSError here
        try:
            with zipfile.ZipFile(f) as zf:
                return _load_checked(cls, zf, path)
        except ModelFileError:
            raise
        except _Malformed as exc:
            raise _fail(path, str(exc)) from None
        except zipfile.BadZipFile as exc:
            raise _fail(path, f"not an intact zip (.npz) archive ({exc})") from None
        except MemoryError:
            raise _fail(path, "it declares arrays too large for memory") from None
        except Exception as exc:  # anything else (zipfile raises OSError, EOFError,
            # struct.error, ... on corrupt archives) means a malformed file
            raise _fail(path, f"{type(exc).__name__}: {exc}") from None


def _load_checked(cls, zf: zipfile.ZipFile, path):
    infos = {i.filename: i for i in zf.infolist()}
    missing = [n for n in _REQUIRED if n not in infos]
    if missing:
        raise _fail(path, f"the archive lacks {[m[:-4] for m in missing]}")
    _expect(infos["header.npy"].file_size <= MAX_HEADER_BYTES, "the header is too large")
    shape, dtype = _npy_header(zf, "header.npy")
    _expect(shape == () and dtype.kind == "U", f"header is a {dtype} array of shape {shape}")
    text = str(_read(zf, "header.npy")[()])
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"the header is not valid JSON ({exc})") from None
    n_params = _check_header(header)
    dt = np.dtype(header["dtype"])
    shape, dtype = _npy_header(zf, "params.npy")
    _expect(shape == (n_params,) and dtype.kind == "f" and dtype.itemsize == dt.itemsize,
            f"params is a {dtype} array of shape {shape}; layer_sizes "
            f"{header['layer_sizes']} in {dt} need ({n_params},)")
    shape, dtype = _npy_header(zf, "optimizer_state.npy")
    _expect(len(shape) == 2 and shape[0] <= 3 and shape[1] == n_params and dtype.kind == "f"
            and dtype.itemsize == dt.itemsize,
            f"optimizer_state is a {dtype} array of shape {shape}; expected (rows <= 3, "
            f"{n_params}) {dt}")
    params = _read(zf, "params.npy")
    state = _read(zf, "optimizer_state.npy")
    if "checksum.npy" in infos:
        _expect(infos["checksum.npy"].file_size <= 4096, "the checksum is too large")
        stored = str(_read(zf, "checksum.npy")[()])
        if stored != _checksum(text, params, state):
            raise _fail(path, "the checksum does not match the contents (the file was "
                              "corrupted or modified after it was written)")
    params = params.astype(dt, copy=False)
    state = state.astype(dt, copy=False)
    return build_model(cls, header, {"params": params, "optimizer_state": state})
