"""Fuzzing the public API with random bad inputs and argument combinations.

Every case draws a method and its arguments, at least one of them bad (from a pool of
wrong types, shapes, values and dtypes). Only the documented exceptions may come out,
never a crash, and a model that rejected a call must be exactly as it was. A few
all-valid combinations run on a copy to check that valid calls go through.
"""

import copy
import json
import os

import numpy as np
import pytest

import fastbp
from fastbp import Model, ModelFileError

N_CASES = int(os.environ.get("FASTBP_FUZZ_CASES", "5000"))
RNG0 = np.random.default_rng(0)
X_OK = RNG0.normal(size=(12, 3))


def _bad_X():
    return [
        None, "abc", b"xy", 3.0, {"a": 1}, [[1, 2], [3]], X_OK[:, 0], X_OK[None], X_OK[:0],
        X_OK[:, :2], np.hstack([X_OK, X_OK]), np.where(X_OK > 1, np.nan, X_OK),
        np.where(X_OK > 1, np.inf, X_OK), X_OK.astype(complex), X_OK.astype(str),
        X_OK.astype(object), np.full((12, 3), 1e300), np.zeros((12, 3), dtype="M8[s]"),
        np.zeros(12, dtype=[("a", "f8"), ("b", "f8"), ("c", "f8")]), [[None] * 3] * 12,
    ]


def _good_X():
    return [X_OK, X_OK.astype(np.float32), X_OK.astype(">f8"), np.asfortranarray(X_OK),
            np.repeat(X_OK, 2, axis=1)[:, ::2], (X_OK * 3).astype(np.int64),
            X_OK > 0, X_OK.astype(np.float16), X_OK.tolist()]


def _targets(loss):
    rng = np.random.default_rng(1)
    if loss == "cross_entropy":
        good = [rng.integers(0, 3, 12), rng.integers(0, 3, 12).astype(np.uint8),
                np.eye(3)[rng.integers(0, 3, 12)], rng.integers(0, 3, 12).astype(float)]
        bad = [rng.integers(0, 3, 12) + 3, rng.integers(0, 3, 12) - 1,
               rng.integers(0, 3, 12) + 0.5, rng.integers(0, 2, 12).astype(bool),
               np.full((12, 3), 0.5), -np.eye(3)[rng.integers(0, 3, 12)], np.eye(4)[:3]]
    elif loss == "binary_cross_entropy":
        good = [rng.integers(0, 2, 12), rng.integers(0, 2, 12).astype(bool), rng.random(12)]
        bad = [rng.random(12) * 2, rng.random(12) - 1, rng.random((12, 2))]
    else:
        good = [rng.normal(size=12), rng.normal(size=(12, 1)), rng.integers(0, 5, 12)]
        bad = [rng.normal(size=(12, 2)), np.full(12, 1e300)]
    bad += [None, "y", rng.normal(size=11), rng.normal(size=(12, 1, 1)), np.full(12, np.nan),
            np.full(12, np.inf), rng.normal(size=12).astype(complex),
            np.array(["a"] * 12), np.array([object()] * 12), [1, [2]]]
    return good, bad


GOOD = {
    "epochs": [1, 2, np.int64(1)], "batch_size": [1, 5, 32, None, np.int32(4)],
    "learning_rate": [0.0, 0.01, np.float32(0.1), 1], "shuffle": [True, False, np.bool_(True)],
    "optimizer": [None, "sgd", "adam", fastbp.optim.SGD(momentum=0.9), "rmsprop"],
    "schedule": [None, "constant", "step_decay"], "l2": [0.0, 1e-3],
    "clip_norm": [None, 1.0], "validation_split": [0.0, 0.25],
    "early_stopping": [None], "callbacks": [(), None, [lambda e, logs: False]],
    "verbose": [False], "reset": [False, True], "on_divergence": ["raise", "warn"],
    "n_threads": [None, 1], "class_weight": [None], "sample_weight": [None],
}
BAD = {
    "epochs": [0, -1, 1.5, "3", None, True, 2**70, np.nan, [1]],
    "batch_size": [0, -5, 2.0, "32", True, [32], np.nan],
    "learning_rate": [-1, -1e-9, np.nan, np.inf, -np.inf, "0.1", None, True, 1 + 1j, [0.1]],
    "shuffle": ["yes", 1, None, 0.0],
    "optimizer": ["adma", "SGD", 3, object(), "", fastbp.schedules.Constant()],
    "schedule": ["cosine", 5, "adam", fastbp.optim.Adam()],
    "l2": [-1, np.nan, "x", np.inf, None],
    "clip_norm": [0, -1, np.nan, "x", np.inf],
    "validation_split": [1.0, -0.1, 2, "x", np.nan, 0.99999],
    "validation_data": [(X_OK,), X_OK, (X_OK[:, :2], None), "xy", (X_OK, X_OK, X_OK)],
    "early_stopping": ["yes", 5, fastbp.EarlyStopping],
    "callbacks": [5, ["x"], "abc", [None]],
    "verbose": ["loud", None, 1.5],
    "reset": ["yes", None, 1],
    "on_divergence": ["ignore", 3, None, "RAISE"],
    "n_threads": [0, 10**6, 1.5, "2", -1, True],
    "class_weight": [{5: 1.0}, {0: -1.0}, "balance", [1, 2], {0: np.nan}, {"a": 1}, 3],
    "sample_weight": [-np.ones(12), np.full(12, np.nan), np.ones(11), np.ones((12, 1)),
                      np.zeros(12), np.array(["a"] * 12), np.full(12, np.inf), "w",
                      np.full(12, 1e300) * np.r_[1, np.zeros(11)] - 1],
}
FIT_ARGS = [k for k in GOOD] + ["validation_data"]
MODEL_GOOD = {
    "layer_sizes": [[3, 4, 3], (3, 3), np.array([3, 2, 3])], "activation": ["relu", "tanh"],
    "loss": ["squared_error", "cross_entropy"], "dtype": ["float32", np.float64],
    "seed": [None, 0, 2**70], "init": [None, "glorot_normal"], "dropout": [0.0, 0.2],
}
MODEL_BAD = {
    "layer_sizes": [[3], [3, 0], [3, -1], [3, 2.5], "34", None, [[3]], [True, 3], 5,
                    [3, 2**40], [3, 2**63]],
    "activation": ["rleu", ["relu", "tanh"], None, 5, b"relu"],
    "loss": ["hinge", None, 3, "cross-entropyy"],
    "output": ["softmx", 3, "logistic"],  # logistic only with squared error here
    "dtype": ["float16", "int32", None, object, "nope", 3, "complex128"],
    "seed": [-1, 1.5, "x", True],
    "init": ["he", 3, ""],
    "dropout": [1.0, -0.1, [0.1, 0.2, 0.3], "x", np.nan, None],
}


def _state(m):
    """Everything a rejected call must leave untouched."""
    return (
        m.params.tobytes(), m.grads.dtype, m.optimizer_state.tobytes(), m.optimizer_steps,
        json.dumps(m.history.metrics, default=str), json.dumps(m.history.events),
        json.dumps(m.state.shuffle_rng.bit_generator.state, default=str),
        None if m.optimizer is None else (m.optimizer.name, m.optimizer.get_config()),
        None if m.schedule is None else (m.schedule.name, m.schedule.get_config(),
                                         m.schedule.get_state()),
    )


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(2)
    out = {}
    for loss, n_out in [("cross_entropy", 3), ("binary_cross_entropy", 1),
                        ("squared_error", 1)]:
        m = Model([3, 4, n_out], loss=loss, seed=0)
        good, _ = _targets(loss)
        m.fit(X_OK, good[0], epochs=1, batch_size=4, optimizer="adam", schedule="step_decay")
        out[loss] = m
    del rng
    return out


def test_fuzz_public_api(models, tmp_path):
    rng = np.random.default_rng(20260101)
    allowed = (ValueError, TypeError)
    counts = {"cases": 0, "rejected": 0, "valid": 0, "bad_values": 0}
    valid_file = tmp_path / "ok.npz"
    models["cross_entropy"].save(valid_file)
    garbage = tmp_path / "garbage.npz"
    for _ in range(N_CASES):
        loss = _pick(rng, sorted(models))
        m = models[loss]
        goodT, badT = _targets(loss)
        method = _pick(rng, ["fit", "fit", "fit", "partial_fit", "predict", "gradient",
                             "evaluate", "loss_value", "init", "save", "load"])
        valid_case = rng.random() < 0.04
        n_bad = 0 if valid_case else int(rng.integers(1, 3))
        counts["cases"] += 1
        if method == "init":
            kw = {k: _pick(rng, v) for k, v in MODEL_GOOD.items() if rng.random() < 0.7}
            kw.setdefault("layer_sizes", [3, 4, 3])
            for _ in range(n_bad):
                k = _pick(rng, sorted(MODEL_BAD))
                kw[k] = _pick(rng, MODEL_BAD[k])
            counts["bad_values"] += n_bad
            try:
                Model(**kw)
                assert valid_case or (kw.get("output") == "logistic"
                                      and kw.get("loss", "squared_error") == "squared_error"), kw
            except (ValueError, TypeError, MemoryError):
                assert not valid_case, kw
                counts["rejected"] += 1
            continue
        if method in ("save", "load"):
            if method == "save":
                arg = _pick(rng, [3, None, b"", "", ["a"], tmp_path / "no" / "dir.npz",
                                  tmp_path, 1.5])
                before = _state(m)
                with pytest.raises((ValueError, TypeError, OSError)):
                    m.save(arg)
                assert _state(m) == before
            else:
                raw = bytearray(valid_file.read_bytes())
                kind = rng.integers(3)
                if kind == 0:
                    raw = raw[: int(rng.integers(len(raw)))]
                elif kind == 1:
                    for pos in rng.integers(0, len(raw), size=int(rng.integers(1, 6))):
                        raw[pos] ^= int(rng.integers(1, 256))
                else:
                    raw = rng.integers(0, 256, size=int(rng.integers(0, 2000))).astype(
                        np.uint8).tobytes()
                garbage.write_bytes(bytes(raw))
                try:
                    loaded = Model.load(garbage)
                    assert np.array_equal(loaded.params, models["cross_entropy"].params)
                except ModelFileError:
                    pass
            counts["rejected"] += 1
            counts["bad_values"] += 1
            continue
        args = {"X": _pick(rng, _good_X()), "y": _pick(rng, goodT)}
        kw = {}
        if method in ("fit", "partial_fit"):
            names = FIT_ARGS if method == "fit" else [
                "batch_size", "learning_rate", "shuffle", "optimizer", "schedule", "l2",
                "clip_norm", "sample_weight", "class_weight", "callbacks", "on_divergence",
                "n_threads"]
            for k in names:
                if k in GOOD and rng.random() < 0.3:
                    kw[k] = _pick(rng, GOOD[k])
            bad_keys = ["X", "y"] + names
        elif method == "gradient":
            bad_keys = ["X", "y", "sample_weight", "l2", "n_threads"]
        elif method == "evaluate":
            bad_keys = ["X", "y", "sample_weight", "n_threads"]
        elif method == "loss_value":
            bad_keys = ["X", "y", "n_threads"]
        else:
            bad_keys = ["X", "n_threads"]
        for _ in range(n_bad):
            k = _pick(rng, bad_keys)
            if k == "X":
                args["X"] = _pick(rng, _bad_X())
            elif k == "y":
                args["y"] = _pick(rng, badT)
            else:
                kw[k] = _pick(rng, BAD[k])
        counts["bad_values"] += n_bad
        if kw.get("class_weight") is not None and loss == "squared_error":
            pass  # rejected: class_weight needs classification
        call_args = (args["X"],) if method == "predict" else (args["X"], args["y"])
        target = copy.deepcopy(m) if valid_case else m
        before = _state(target)
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastbp.DivergenceWarning)
                getattr(target, method)(*call_args, **kw)
        except allowed as exc:
            assert _state(target) == before, (method, kw, exc)
            assert str(exc) and len(str(exc)) > 20
            counts["rejected"] += 1
            if valid_case:  # a "valid" draw can still be invalid together (rare)
                continue
        else:
            assert valid_case, f"accepted: {method} {kw!r} y={args['y']!r}"  # bad value passed
            counts["valid"] += 1
    print("fuzz counts:", counts)
    assert counts["cases"] == N_CASES and counts["rejected"] > 0.9 * N_CASES
