"""Bad input gets a clear error naming the argument, what was expected and what was given;
the model is unchanged. Accepted conversions give the same results as float64 input."""

import numpy as np
import pytest

from fastbp import Model

rng = np.random.default_rng(0)
X = rng.normal(size=(10, 3))
Y = rng.integers(0, 3, 10)

CASES = [
    # (method, kwargs, exception, regex that must appear in the message)
    ("fit", dict(X=np.where(X > 1, np.nan, X)), ValueError, r"X contains NaN"),
    ("fit", dict(X=np.where(X > 1, np.inf, X)), ValueError, r"X contains NaN or infinity"),
    ("fit", dict(X=np.full((10, 3), 1e300)), ValueError, r"X\[0, 0\] = .* does not fit in float32"),
    ("fit", dict(y=np.r_[Y[:9], np.nan]), ValueError, r"y contains NaN"),
    ("fit", dict(sample_weight=np.r_[np.ones(9), np.inf]), ValueError, r"sample_weight contains"),
    ("fit", dict(sample_weight=-np.ones(10)), ValueError, r"sample_weight must be >= 0"),
    ("fit", dict(X=X[:, 0]), ValueError, r"X must be 2-D .* got shape \(10,\).*reshape"),
    ("fit", dict(X=X[None]), ValueError, r"X must be 2-D"),
    ("fit", dict(y=Y[:, None, None]), ValueError, r"y must be 1-D or 2-D"),
    ("fit", dict(y=Y[:9]), ValueError, r"y has 9 samples but X has 10"),
    ("fit", dict(X=X[:0], y=Y[:0]), ValueError, r"X is empty"),
    ("fit", dict(X=X.astype(str)), TypeError, r"X must hold real numbers .* got dtype <U"),
    ("fit", dict(X=X.astype(object)), TypeError, r"X must hold real numbers .* object"),
    ("fit", dict(X=X.astype(complex)), TypeError, r"X must hold real numbers .* complex"),
    ("fit", dict(X="abc"), TypeError, r"X must be a numeric array"),
    ("fit", dict(y=Y + 3), ValueError, r"labels must lie in \[0, 2\]"),
    ("fit", dict(y=Y + 0.5), ValueError, r"y must hold integer class labels"),
    ("fit", dict(y=Y > 0), TypeError, r"y holds booleans"),
    ("predict", dict(X=X[:, :2]), ValueError, r"X has 2 features but the model's input layer"),
    ("fit", dict(epochs=0), ValueError, r"epochs must be an integer >= 1; got 0"),
    ("fit", dict(epochs=2.5), TypeError, r"epochs must be an integer"),
    ("fit", dict(batch_size=0), ValueError, r"batch_size must be an integer >= 1; got 0"),
    ("fit", dict(learning_rate=-0.1), ValueError, r"learning_rate must be a finite number >= 0"),
    ("fit", dict(learning_rate=np.nan), ValueError, r"learning_rate must be a finite number"),
    ("fit", dict(optimizer="adma"), ValueError, r"optimizer='adma' is not supported.*'adam'"),
    ("fit", dict(schedule="step_decy"), ValueError, r"Did you mean 'step_decay'"),
    ("fit", dict(on_divergence="ignore"), ValueError, r"on_divergence='ignore'"),
    ("fit", dict(n_threads=0), ValueError, r"n_threads must be an integer >= 1"),
    ("gradient", dict(X=np.where(X > 1, np.nan, X)), ValueError, r"X contains NaN"),
    ("evaluate", dict(y=Y + 5), ValueError, r"labels must lie"),
    ("evaluate", dict(sample_weight=np.ones(3)), ValueError, r"sample_weight must be 1-D"),
]


@pytest.mark.parametrize("method,kwargs,exc,match", CASES)
def test_bad_input_is_rejected_clearly_and_changes_nothing(method, kwargs, exc, match):
    m = Model([3, 4, 3], loss="cross_entropy", seed=0)
    m.fit(X, Y, epochs=1, optimizer="adam")
    before = (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps, m.history.epochs,
              str(m.state.shuffle_rng.bit_generator.state))
    args = dict(X=X, y=Y)
    args.update(kwargs)
    call = getattr(m, method)
    with pytest.raises(exc, match=match):
        if method == "predict":
            call(args.pop("X"))
        else:
            call(args.pop("X"), args.pop("y"), **args)
    after = (m.params, m.optimizer_state, m.optimizer_steps, m.history.epochs,
             str(m.state.shuffle_rng.bit_generator.state))
    for a, b in zip(before, after):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


MODEL_CASES = [
    (dict(layer_sizes=[3, -1]), ValueError, r"layer_sizes\[1\] must be an integer >= 1"),
    (dict(layer_sizes=[3, 2**62 + 1]), ValueError, r"layer_sizes\[1\] must be an integer <="),
    (dict(layer_sizes=[10**6, 10**6, 10**6]), MemoryError, r"layer_sizes=.* GiB"),
    (dict(layer_sizes=[3, 2], activation="rleu"), ValueError, r"Did you mean 'relu'"),
    (dict(layer_sizes=[3, 4, 2], activation=None), ValueError, r"activation must be one name"),
    (dict(layer_sizes=[3, 2], loss="cross_entropi"), ValueError, r"Did you mean 'cross_entropy'"),
    (dict(layer_sizes=[3, 2], dtype="float16"), ValueError, r"dtype must be 'float32' or"),
    (dict(layer_sizes=[3, 2], dtype=None), ValueError, r"dtype must be"),
    (dict(layer_sizes=[3, 4, 2], dropout=1.0), ValueError, r"dropout must be a number in"),
]


@pytest.mark.parametrize("kwargs,exc,match", MODEL_CASES)
def test_bad_model_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Model(**kwargs)


def test_batch_size_larger_than_data_is_clamped():
    a = Model([3, 4, 3], loss="cross_entropy", seed=0)
    b = Model([3, 4, 3], loss="cross_entropy", seed=0)
    a.fit(X, Y, batch_size=1000, epochs=2)
    b.fit(X, Y, batch_size=None, epochs=2)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("convert", [
    lambda a: a.astype(">f8"), lambda a: np.asfortranarray(a), lambda a: a.astype(np.float16),
    lambda a: np.repeat(a, 2, axis=1)[:, ::2], lambda a: (a * 4).round().astype(np.int32),
    lambda a: a > 0, lambda a: a.tolist(), lambda a: a.astype(np.longdouble),
])
def test_other_layouts_and_dtypes_are_converted(convert):
    Xc = convert(X)
    ref = np.asarray(Xc, dtype=np.float64)
    for dtype in ("float32", "float64"):
        m = Model([3, 4, 3], loss="cross_entropy", dtype=dtype, seed=0)
        np.testing.assert_array_equal(m.predict(Xc), m.predict(ref.astype(dtype)))
        a, b = Model([3, 3], seed=0, dtype=dtype), Model([3, 3], seed=0, dtype=dtype)
        a.fit(Xc, np.asarray(convert(X[:, :3]), dtype=float), epochs=1)
        b.fit(ref, np.asarray(convert(X[:, :3]), dtype=float), epochs=1)
        np.testing.assert_array_equal(a.params, b.params)
