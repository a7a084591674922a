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
    ``fastbp._layout``: per layer ``W`` row-major ``(n_out, n_in)`` then ``b``).
``optimizer_state``
    ``(rows, n_params)`` array of the model dtype (rows per optimizer in ``fastbp._optim``).

Only plain numeric and unicode arrays are stored, so loading never unpickles or runs code.
``save`` writes to a temporary file in the target directory, flushes and fsyncs it, then
``os.replace``-s it over the target and fsyncs the directory: a crash leaves either the old
file or the new one, never a partial file.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from . import optim as _optim_mod
from . import schedules as _sched_mod

FORMAT = "fastbp.model"
VERSION = 1


def model_state(model) -> tuple[dict, dict]:
    """(JSON-serialisable header, dict of arrays) describing ``model`` completely."""
    from . import __version__

    opt = model._opt
    sched = model._schedule
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
            "name": opt.name, "config": opt.get_config(), "step": int(model._opt_counters[0]),
        },
        "schedule": None if sched is None else {
            "name": sched.name, "config": sched.get_config(), "state": sched.get_state(),
        },
        "shuffle_rng": model._shuffle_rng.bit_generator.state,
        "history": {k: [float(v) for v in seq] for k, seq in model.history.metrics.items()},
    }
    arrays = {"params": model._params, "optimizer_state": model._opt_state}
    return header, arrays


def restore_model(model, header: dict, arrays: dict) -> None:
    """(Re)build ``model`` in place from ``model_state`` output."""
    from .model import History

    if header.get("format") != FORMAT:
        raise ValueError(f"not a fastbp model file (format={header.get('format')!r}).")
    if header.get("version") != VERSION:
        raise ValueError(
            f"fastbp model file version {header.get('version')!r} is not supported by this "
            f"fastbp (reads version {VERSION}); upgrade fastbp."
        )
    model.__init__(
        header["layer_sizes"], activation=header["activations"], loss=header["loss"],
        output=header["output"], dtype=header["dtype"], seed=header["seed"],
        init=header["init"], dropout=header["dropout"],
    )
    params = np.asarray(arrays["params"])
    state = np.asarray(arrays["optimizer_state"])
    n = model._params.shape[0]
    if params.shape != (n,) or params.dtype != model.dtype:
        raise ValueError(
            f"params in the file have shape {params.shape} and dtype {params.dtype}; the "
            f"architecture needs ({n},) {model.dtype}."
        )
    if state.ndim != 2 or state.shape[1] != n or state.dtype != model.dtype:
        raise ValueError(f"optimizer_state has shape {state.shape}, dtype {state.dtype}.")
    model._params[...] = params
    o = header["optimizer"]
    if o is not None:
        model._opt = _optim_mod.from_config(o["name"], o["config"])
        if state.shape[0] != model._opt.state_rows:
            raise ValueError(
                f"optimizer_state has {state.shape[0]} rows; {o['name']} needs "
                f"{model._opt.state_rows}."
            )
        model._opt_state = np.array(state, dtype=model.dtype, order="C")
        model._opt_counters[0] = int(o["step"])
    sc = header["schedule"]
    if sc is not None:
        model._schedule = _sched_mod.from_config(sc["name"], sc["config"], sc["state"])
    model._shuffle_rng.bit_generator.state = header["shuffle_rng"]
    h = History()
    h.metrics = {k: [float(v) for v in seq] for k, seq in header["history"].items()}
    h.metrics.setdefault("loss", [])
    h.metrics.setdefault("time", [])
    model.history = h


def save_model(model, path) -> None:
    header, arrays = model_state(model)
    text = json.dumps(header)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
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


def load_model(cls, path):
    with np.load(os.fspath(path), allow_pickle=False) as data:
        missing = {"header", "params", "optimizer_state"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not a fastbp model file (missing {sorted(missing)}).")
        header = json.loads(str(data["header"][()]))
        arrays = {"params": data["params"], "optimizer_state": data["optimizer_state"]}
        model = cls.__new__(cls)
        restore_model(model, header, arrays)
    return model
