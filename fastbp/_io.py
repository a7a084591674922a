"""Model files: one ``.npz`` archive, read with ``allow_pickle=False``.

Format ``fastbp.model`` version 2 — an uncompressed NumPy ``.npz`` (zip of ``.npy`` members,
every member stored, never deflated) holding:

``header``
    0-d unicode array with a JSON object:
    ``format`` ("fastbp.model"), ``version`` (2), ``fastbp_version``,
    ``layer_sizes``, ``activations`` (hidden), ``output``, ``loss``, ``dtype``, ``seed``,
    ``init``, ``dropout`` (per hidden layer),
    ``optimizer``: null or {``name``, ``config`` (hyperparameters), ``step`` (t)},
    ``schedule``: null or {``name``, ``config``, ``state`` (progress)},
    ``shuffle_rng``: the PCG64 ``bit_generator.state`` of the shuffling generator,
    ``history_metrics``: the names of the history's metrics, in the row order of
    ``history``, ``history_first_epoch``: the model-wide index of the history's first
    kept epoch (optional, default 0; older epochs were dropped, see ``History.max_epochs``),
    and ``events``: the history's events (a list of JSON objects).
``params``
    ``(n_params,)`` array of the model dtype, the flat parameter buffer (layout in
    ``fastbp.kernels._layout``: per layer ``W`` row-major ``(n_out, n_in)`` then ``b``).
``optimizer_state``
    ``(rows, n_params)`` array of the model dtype (rows per optimizer in
    ``fastbp.kernels._updates``).
``history``
    ``(n_metrics, n_epochs)`` float64 array, row ``i`` the values of metric
    ``history_metrics[i]`` (NaN where a metric was not recorded). Stored as binary, the
    history costs 8 bytes per value and the header stays small however long training ran
    (version 1 kept it as JSON text inside the header).
``checksum``
    0-d unicode array, ``"sha256:"`` + the SHA-256 of the header's JSON text (UTF-8), then
    the bytes of ``params``, of ``optimizer_state`` and of ``history``. Optional when
    reading (files written before it was added load without the check). It detects
    corruption and edits; it is not a signature (whoever edits the file can recompute it).

Version 1 (fastbp 0.1 before this change) differs only in the history: ``history`` in the
header as ``{metric: [one value per epoch]}`` (NaN written as JSON ``NaN``), no
``history`` member, and a checksum over the header, ``params`` and ``optimizer_state``.
``load`` reads both versions; ``save`` writes version 2.

Only plain numeric and unicode arrays are stored, so loading never unpickles or runs code.

``save`` behaves like ``open(path, "w")``, but atomically: it follows a symbolic link to
its target (the link stays a link), refuses an existing file it has no permission to
write (``PermissionError``), and keeps an existing file's permission bits (and, where
allowed, its owner). It writes ``.NAME.fastbp-tmp-XXXXXXXXXXXX`` in the target's
directory, flushes and fsyncs it, ``os.replace``-s it over the target and fsyncs the
directory: a crash leaves either the old file or the new one, never a partial file. Any
exception, ``KeyboardInterrupt`` included, removes the temporary file; one left by a
process that was killed outright (``SIGKILL``, power loss) is never read, and the next
``save`` to the same path removes it once it is over a minute old and no process holds
it (the writer keeps an ``flock`` on it; POSIX only).

``load`` checks the archive before it allocates anything sized by the file: every member
must be stored uncompressed (as ``save`` writes it) with its declared size equal to its
stored size and lying within the file, each ``.npy`` header (dtype, shape) must describe
exactly the bytes of its member and match the architecture in the JSON header, every
header field must have its type, and the checksum must match. So the memory a file can
make ``load`` allocate is bounded by a small multiple of the file's size. Anything wrong
raises ``fastbp.ModelFileError`` (a ``ValueError``) naming the problem. A missing or
unreadable file raises ``OSError``, and so does anything but a regular file (``load`` opens
a path without blocking and checks its type before reading: a FIFO or a device never
hangs it; ``save`` never opens anything but its own temporary file and the regular files
it removes). Running out of memory while loading a file that
passed these checks raises ``MemoryError`` (the file may well be intact).
"""

from __future__ import annotations

import errno
import hashlib
import json
import numbers
import os
import secrets
import stat
import time
import zipfile

import numpy as np

from . import optim as _optim_mod
from . import schedules as _sched_mod
from ._errors import ModelFileError
from ._validation import check_path
from .kernels._cache import open_regular

try:  # the lock that tells a live save's temporary file from a killed one's (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

FORMAT = "fastbp.model"
#: the version ``save`` writes
VERSION = 2
#: the versions ``load`` reads
READS = (1, 2)


def _history_array(metrics: dict) -> np.ndarray:
    """``(n_metrics, n_epochs)`` float64 array of the history's metric lists."""
    seqs = list(metrics.values())
    n = len(seqs[0]) if seqs else 0
    out = np.empty((len(seqs), n), dtype=np.float64)
    for i, seq in enumerate(seqs):
        out[i] = np.fromiter(seq, dtype=np.float64, count=len(seq))
    return out


def model_state(model) -> tuple[dict, dict]:
    """(JSON-serialisable header, dict of arrays) describing ``model`` completely."""
    from . import __version__

    state = model.state
    opt, sched = state.optimizer, state.schedule
    metrics = state.history.metrics
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
        "history_metrics": list(metrics),
        "history_first_epoch": int(state.history.first_epoch),
        "events": [dict(e) for e in state.history.events],
    }
    arrays = {"params": model.params, "optimizer_state": state.opt_state,
              "history": _history_array(metrics)}
    return header, arrays


def _unsupported_version(header: dict) -> ModelFileError:
    from . import __version__

    return ModelFileError(
        f"fastbp model file version {header.get('version')!r} is not supported by this "
        f"fastbp {__version__} (it reads versions {READS[0]} to {READS[-1]}); use the fastbp "
        f"version that wrote it ({header.get('fastbp_version')!r}) or upgrade."
    )


def build_model(cls, header: dict, arrays: dict):
    """A new ``cls`` instance from ``model_state`` output (also what unpickling calls; a
    pickle of an older fastbp holds a version 1 header, with the history inside)."""
    if header.get("format") != FORMAT:
        raise ValueError(f"not a fastbp model file (format={header.get('format')!r}).")
    if header.get("version") not in READS:
        raise _unsupported_version(header)
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
    if header["version"] >= 2:
        names = header["history_metrics"]
        hist = np.asarray(arrays["history"], dtype=np.float64)
        if hist.shape[:1] != (len(names),) or hist.ndim != 2:
            raise ValueError(f"history has shape {hist.shape}; {len(names)} metrics "
                             f"({names}) need ({len(names)}, epochs).")
        metrics = {k: hist[i].tolist() for i, k in enumerate(names)}
    else:
        metrics = {k: [float(v) for v in seq] for k, seq in header["history"].items()}
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
    h.metrics = metrics
    h.events = [dict(e) for e in header.get("events", [])]
    h.first_epoch = int(header.get("history_first_epoch", 0))
    return model


def _checksum(text: str, *arrays: np.ndarray) -> str:
    """Version 1: ``arrays`` are params and optimizer_state; version 2: and history."""
    h = hashlib.sha256(text.encode("utf-8"))
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------- save
#: the infix of ``save``'s temporary files: ``.NAME.fastbp-tmp-XXXXXXXXXXXX``
TMP_INFIX = ".fastbp-tmp-"
#: a leftover temporary file younger than this (seconds) is never removed (it may belong
#: to a save that is just starting)
STALE_TMP_AGE = 60.0


def _tmp_prefix(name: str) -> str:
    return "." + name[:100] + TMP_INFIX  # room for the suffix within a 255-byte name


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    """A new file ``.NAME.fastbp-tmp-XXXXXXXXXXXX`` in ``directory``, opened for writing
    with mode 0o666 less the umask (as ``open(path, "w")`` would create it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, _tmp_prefix(name) + secrets.token_hex(6))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", directory)


def _remove_stale_temps(directory: str, name: str) -> None:
    """Remove temporary files of earlier saves to ``name`` that were killed outright: over
    ``STALE_TMP_AGE`` seconds old and not locked by a live save."""
    if fcntl is None:  # pragma: no cover - without locks a live save cannot be told apart
        return
    prefix = _tmp_prefix(name)
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return
    for n in names:
        tmp = os.path.join(directory, n)
        try:  # only regular files, opened without blocking: anyone who can write the
            # directory can plant a FIFO with this name, which open() would wait on forever
            if not stat.S_ISREG(os.lstat(tmp).st_mode):
                continue
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or time.time() - st.st_mtime < STALE_TMP_AGE:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a save in progress holds it
            os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _check_target(path: str, target: str, writer: str = "Model.save"):
    """``os.stat`` of the existing file ``save`` would replace (None if there is none);
    refuses what ``open(path, "w")`` could not write, and anything but a regular file."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory; pass a file name", path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"Not a regular file; {writer} writes regular files "
                                    "only, pass another file name", path)
    if not os.access(target, os.W_OK):
        raise PermissionError(
            errno.EACCES,
            f"Permission denied: the existing file is not writable (mode "
            f"{stat.filemode(st.st_mode)}) and {writer} does not replace what "
            f"open(path, 'w') could not write; make it writable (chmod u+w) or save "
            f"elsewhere", path)
    return st


def write_atomically(path, write, writer: str = "Model.save") -> None:
    """Write a file as ``open(path, "wb")`` would, but atomically (see the module notes).

    Parameters
    ----------
    path : str, bytes or os.PathLike
    write : callable
        ``write(f)`` writes the whole content to the binary file object ``f``.
    writer : str
        The public function writing, named in error messages.
    """
    path = os.fsdecode(check_path(path))  # str, bytes or os.PathLike
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        # realpath would drop the separator and write a file; open(path, "w") refuses
        raise IsADirectoryError(errno.EISDIR, f"Is a directory (the name ends in a path "
                                              f"separator); {writer} writes a file, pass "
                                              f"a file name", path)
    target = os.path.realpath(path)  # write through symbolic links, as open(path, "w")
    old = _check_target(path, target, writer)
    directory, name = os.path.split(target)
    fd, tmp = _create_temp(directory, name)
    try:
        if old is not None:  # the new file takes the old one's owner and permission bits
            if hasattr(os, "fchown") and (old.st_uid, old.st_gid) != (os.geteuid(),
                                                                       os.getegid()):
                try:
                    os.fchown(fd, old.st_uid, old.st_gid)
                except OSError:
                    pass  # not allowed: the file becomes the writer's, as with a new file
            if hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
        with os.fdopen(fd, "wb") as f:
            fd = -1  # the file object owns it now
            if fcntl is not None:  # marks the file as in use (see _remove_stale_temps)
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        dfd = -1
    if dfd >= 0:
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)
    _remove_stale_temps(directory, name)


def save_model(model, path) -> None:
    header, arrays = model_state(model)
    text = json.dumps(header)
    checksum = _checksum(text, arrays["params"], arrays["optimizer_state"], arrays["history"])
    write_atomically(path, lambda f: np.savez(f, header=np.array(text), **arrays,
                                               checksum=np.array(checksum)))


# ---------------------------------------------------------------------- load
#: largest JSON header accepted (version 2 keeps the history out of it: a few KiB)
MAX_HEADER_BYTES = 64 << 20
_REQUIRED = ("header.npy", "params.npy", "optimizer_state.npy")
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def _fail(path, problem: str):
    return ModelFileError(f"{path!r} is not a valid fastbp model file: {problem}.")


class _Malformed(Exception):
    """A check of the file's contents failed (turned into ModelFileError by the loader)."""


def _expect(cond: bool, problem: str) -> None:
    if not cond:
        raise _Malformed(problem)


def _check_members(infos: dict, file_size: int) -> None:
    """Every member stored as ``save`` writes it: uncompressed, unencrypted, its declared
    size its stored size, and its bytes within the file. Reading a member can then never
    produce more bytes than the file holds."""
    total = 0
    for name, info in infos.items():
        if info.compress_type != zipfile.ZIP_STORED:
            method = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                      zipfile.ZIP_LZMA: "lzma"}.get(info.compress_type, info.compress_type)
            raise _Malformed(
                f"member {name} is compressed ({method}); fastbp writes uncompressed "
                f"members only (a file re-packed by another tool, e.g. with "
                f"np.savez_compressed, must be written again with Model.save)")
        _expect(not info.flag_bits & 0x1, f"member {name} is encrypted")
        _expect(info.file_size == info.compress_size,
                f"member {name} declares {info.file_size} bytes but stores "
                f"{info.compress_size}")
        end = info.header_offset + _LOCAL_HEADER + len(info.filename) + info.compress_size
        _expect(end <= file_size,
                f"member {name} declares {info.file_size} bytes ending at byte {end}, past "
                f"the end of the {file_size}-byte file (truncated?)")
        total += info.compress_size
    _expect(total <= file_size, f"the members declare {total} bytes in all, more than the "
                                f"{file_size}-byte file holds")


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """(shape, dtype) declared by the ``.npy`` member ``info``, read without its data;
    the shape and dtype must account exactly for the member's size."""
    name = info.filename
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _Malformed(f"unsupported .npy version {version} in {name}")
        offset = f.tell()
    if fortran or dtype.hasobject or dtype.fields is not None:
        raise _Malformed(f"{name} is not a plain C-ordered array (dtype {dtype})")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    _expect(offset + nbytes == info.file_size,
            f"{name} declares a {dtype} array of shape {shape} ({nbytes} bytes) but holds "
            f"{info.file_size - offset} bytes of data")
    return shape, dtype


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_header(h) -> int:
    """Types of every header field; returns the parameter count the architecture implies."""
    _expect(isinstance(h, dict), "the header is not a JSON object")
    _expect(h.get("format") == FORMAT, f"format is {h.get('format')!r}, not {FORMAT!r}")
    if h.get("version") not in READS or isinstance(h.get("version"), bool):
        raise _unsupported_version(h)
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
    if h["version"] >= 2:
        names = h.get("history_metrics")
        _expect(isinstance(names, list) and all(isinstance(k, str) for k in names)
                and len(set(names)) == len(names),
                f"history_metrics is {names!r}, not a list of distinct names")
    else:
        hist = h.get("history")
        _expect(isinstance(hist, dict) and all(
            isinstance(k, str) and isinstance(v, list)
            and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in v)
            for k, v in hist.items()), "history is not {metric: [numbers]}")
        _expect(len({len(v) for v in hist.values()}) <= 1, "history lists differ in length")
    first = h.get("history_first_epoch", 0)
    _expect(_is_int(first) and 0 <= first <= 2**62,
            f"history_first_epoch is {first!r}, not an integer >= 0")
    ev = h.get("events", [])
    _expect(isinstance(ev, list) and all(isinstance(e, dict) for e in ev),
            "events is not a list of objects")
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def load_model(cls, path):
    path = check_path(path)
    # a missing or unreadable file raises OSError here; so does anything but a regular file
    # (a FIFO would block open() forever, a device could be read forever)
    with os.fdopen(open_regular(path), "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        try:
            with zipfile.ZipFile(f) as zf:
                return _load_checked(cls, zf, path, file_size)
        except ModelFileError:
            raise
        except _Malformed as exc:
            raise _fail(path, str(exc)) from None
        except zipfile.BadZipFile as exc:
            raise _fail(path, f"not an intact zip (.npz) archive ({exc})") from None
        except MemoryError:
            # every size was checked against the file's before anything was allocated, so
            # this is a shortage of memory, not a sign of a broken file
            raise MemoryError(
                f"memory ran short while loading {path!r} ({file_size / 2**20:.1f} MiB); "
                f"the file itself may be intact: free memory or load it on a machine "
                f"with more.") from None
        except Exception as exc:  # anything else (zipfile raises OSError, EOFError,
            # struct.error, ... on corrupt archives) means a malformed file
            raise _fail(path, f"{type(exc).__name__}: {exc}") from None


def _load_checked(cls, zf: zipfile.ZipFile, path, file_size: int):
    infos = {i.filename: i for i in zf.infolist()}
    missing = [n for n in _REQUIRED if n not in infos]
    if missing:
        raise _fail(path, f"the archive lacks {[m[:-4] for m in missing]}")
    _check_members(infos, file_size)
    _expect(infos["header.npy"].file_size <= MAX_HEADER_BYTES, "the header is too large")
    shape, dtype = _npy_header(zf, infos["header.npy"])
    _expect(shape == () and dtype.kind == "U", f"header is a {dtype} array of shape {shape}")
    text = str(_read(zf, infos["header.npy"])[()])
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"the header is not valid JSON ({exc})") from None
    n_params = _check_header(header)
    dt = np.dtype(header["dtype"])
    shape, dtype = _npy_header(zf, infos["params.npy"])
    _expect(shape == (n_params,) and dtype.kind == "f" and dtype.itemsize == dt.itemsize,
            f"params is a {dtype} array of shape {shape}; layer_sizes "
            f"{header['layer_sizes']} in {dt} need ({n_params},)")
    shape, dtype = _npy_header(zf, infos["optimizer_state.npy"])
    _expect(len(shape) == 2 and shape[0] <= 3 and shape[1] == n_params and dtype.kind == "f"
            and dtype.itemsize == dt.itemsize,
            f"optimizer_state is a {dtype} array of shape {shape}; expected (rows <= 3, "
            f"{n_params}) {dt}")
    arrays = {}
    if header["version"] >= 2:
        n_metrics = len(header["history_metrics"])
        _expect("history.npy" in infos, "the archive lacks ['history']")
        shape, dtype = _npy_header(zf, infos["history.npy"])
        _expect(len(shape) == 2 and shape[0] == n_metrics and dtype.kind == "f"
                and dtype.itemsize == 8,
                f"history is a {dtype} array of shape {shape}; expected ({n_metrics}, "
                f"epochs) float64 for the metrics {header['history_metrics']}")
    if "checksum.npy" in infos:
        _expect(infos["checksum.npy"].file_size <= 4096, "the checksum is too large")
        shape, dtype = _npy_header(zf, infos["checksum.npy"])
        _expect(shape == () and dtype.kind == "U", f"checksum is a {dtype} array of shape "
                                                   f"{shape}")
    # every size is checked: now read (what is allocated is bounded by the file's size)
    arrays["params"] = _read(zf, infos["params.npy"])
    arrays["optimizer_state"] = _read(zf, infos["optimizer_state.npy"])
    if header["version"] >= 2:
        arrays["history"] = _read(zf, infos["history.npy"])
    if "checksum.npy" in infos:
        stored = str(_read(zf, infos["checksum.npy"])[()])
        if stored != _checksum(text, *arrays.values()):
            raise _fail(path, "the checksum does not match the contents (the file was "
                              "corrupted or modified after it was written)")
    arrays["params"] = arrays["params"].astype(dt, copy=False)
    arrays["optimizer_state"] = arrays["optimizer_state"].astype(dt, copy=False)
    if "history" in arrays:
        arrays["history"] = arrays["history"].astype(np.float64, copy=False)
    return build_model(cls, header, arrays)
