"""Inputs that scikit-learn and the estimators take, taken by ``Model`` too: pandas frames of
mixed or nullable dtypes (missing values rejected clearly), and NumPy scalars wherever a
Python scalar is accepted."""

import numpy as np
import pytest

import fastbp
from fastbp import optim, schedules


def _frame_data(pd, n=60, seed=0):
    """A ``pd.get_dummies`` frame (int, float and bool columns), its float64 array, labels."""
    rng = np.random.default_rng(seed)
    raw = pd.DataFrame({
        "count": rng.integers(0, 5, n),
        "size": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], n),
    })
    frame = pd.get_dummies(raw, columns=["colour"])
    assert {str(dt) for dt in frame.dtypes} == {"int64", "float64", "bool"}
    X = np.column_stack([frame[c].to_numpy(dtype=np.float64) for c in frame.columns])
    y = (raw["size"] > 0).to_numpy().astype(int) + (raw["count"] > 2).to_numpy()
    return frame, X, y


def _train(X, y, **kw):
    m = fastbp.Model([X.shape[1], 6, 3], loss="cross_entropy", seed=0)
    m.fit(X, y, epochs=3, batch_size=8, learning_rate=0.1, **kw)
    return m


def test_mixed_dtype_frame_from_get_dummies_equals_its_float64_array():
    pd = pytest.importorskip("pandas")
    frame, X, y = _frame_data(pd)
    m_frame, m_array = _train(frame, y), _train(X, y)
    np.testing.assert_array_equal(m_frame.params, m_array.params)
    np.testing.assert_array_equal(m_frame.predict(frame), m_array.predict(X))
    assert m_frame.evaluate(frame, y) == m_array.evaluate(X, y)
    np.testing.assert_array_equal(m_frame.gradient(frame, y)[1], m_array.gradient(X, y)[1])


def test_nullable_columns_targets_and_weights_are_accepted():
    pd = pytest.importorskip("pandas")
    frame, X, y = _frame_data(pd)
    nullable = pd.DataFrame({
        "count": pd.array(frame["count"], dtype="Int64"),
        "size": pd.array(frame["size"], dtype="Float64"),
        **{c: pd.array(frame[c], dtype="boolean") for c in frame.columns[2:]},
    })
    labels = pd.Series(pd.array(y, dtype="Int64"))
    weights = pd.Series(pd.array(np.linspace(0.5, 2.0, len(y)), dtype="Float64"))
    m_frame = _train(nullable, labels, sample_weight=weights)
    m_array = _train(X, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    np.testing.assert_array_equal(m_frame.params, m_array.params)
    np.testing.assert_array_equal(m_frame.predict(nullable), m_array.predict(X))
    # a float32 Series of targets keeps its dtype's values, as the array would
    reg = fastbp.Model([X.shape[1], 1], seed=0)
    reg.fit(nullable, pd.Series(X[:, 1], dtype="float32"), epochs=1)


@pytest.mark.parametrize("where", ["X", "y", "sample_weight", "predict"])
def test_missing_values_of_nullable_columns_are_rejected_clearly(where):
    pd = pytest.importorskip("pandas")
    frame, X, y = _frame_data(pd)
    nullable = frame.astype({"size": "Float64"})
    labels = pd.Series(pd.array(y, dtype="Int64"))
    weights = pd.Series(pd.array(np.ones(len(y)), dtype="Float64"))
    m = fastbp.Model([X.shape[1], 6, 3], loss="cross_entropy", seed=0)
    before = m.params.copy()
    if where == "X" or where == "predict":
        nullable.loc[7, "size"] = pd.NA
        match = r"X column 'size' has 1 missing value\(s\) \(pd.NA\), the first in row 7; "
    elif where == "y":
        labels[3] = pd.NA
        match = r"y has 1 missing value\(s\) \(pd.NA\), the first in row 3; "
    else:
        weights[5] = pd.NA
        match = r"sample_weight has 1 missing value\(s\) \(pd.NA\), the first in row 5; "
    match += "missing values are not supported"
    with pytest.raises(ValueError, match=match):
        if where == "predict":
            m.predict(nullable)
        else:
            m.fit(nullable, labels, sample_weight=weights, epochs=1)
    np.testing.assert_array_equal(m.params, before)
    assert m.history.epochs == 0


def test_non_numeric_frame_columns_are_named_in_the_error():
    pd = pytest.importorskip("pandas")
    frame, X, y = _frame_data(pd)
    m = fastbp.Model([X.shape[1], 3], loss="cross_entropy", seed=0)
    for col in (pd.Categorical(["a", "b"] * 30), pd.array(["a", "b"] * 30, dtype="string")):
        bad = frame.assign(count=col)
        with pytest.raises(TypeError, match=r"X column 'count' has dtype .*real numbers.*"
                                            r"pd.get_dummies"):
            m.fit(bad, y)


def test_numpy_scalars_are_accepted_wherever_python_ones_are():
    """Every scalar argument of the public API, given as a NumPy scalar (np.True_,
    np.int64, np.float32, np.str_): accepted, and the same as the Python value (the floats
    are exact in float32)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)

    def build(np_scalars):
        c = (lambda v: v) if not np_scalars else (
            lambda v: np.bool_(v) if isinstance(v, bool) else np.int64(v) if isinstance(v, int)
            else np.float32(v) if isinstance(v, float) else np.str_(v))
        m = fastbp.Model([c(4), c(6), c(3)], activation=c("tanh"), loss=c("cross_entropy"),
                         dtype=c("float64"), seed=c(3), init=c("glorot_uniform"),
                         dropout=c(0.25))
        m.fit(X, y, epochs=c(2), batch_size=c(8), learning_rate=c(0.0625), shuffle=c(True),
              l2=c(0.5), clip_norm=c(1.0), validation_split=c(0.25), verbose=c(False),
              reset=c(True), on_divergence=c("warn"), n_threads=c(1),
              class_weight={c(0): c(2.0)},
              optimizer=optim.SGD(momentum=c(0.5), nesterov=c(True)),
              schedule=schedules.StepDecay(step_size=c(1), gamma=c(0.5)),
              early_stopping=fastbp.EarlyStopping(patience=c(2), min_delta=c(0.0),
                                                  restore_best=c(True),
                                                  monitor=c("val_loss")))
        m.fit(X, y, epochs=c(1), optimizer=optim.Adam(betas=(c(0.5), c(0.75)), eps=c(2.0**-20)))
        m.partial_fit(X, y, batch_size=c(16), learning_rate=c(2.0**-7))
        m.fit(X, y, epochs=c(1), reset=c(False), optimizer=c("rmsprop"),
              schedule=schedules.ReduceOnPlateau(factor=c(0.5), patience=c(0),
                                                 threshold_mode=c("abs"), cooldown=c(0)))
        out = [m.params.copy(), m.predict(X, n_threads=c(1)),
               m.gradient(X, y, l2=c(0.25), n_threads=c(1))[1],
               np.array([m.loss_value(X, y, n_threads=c(1))]),
               np.array(list(m.evaluate(X, y, n_threads=c(1)).values()))]
        return m, out

    (m_py, ref), (m_np, got) = build(False), build(True)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(m_np.history.keys()) == sorted(m_py.history.keys())
    for key in m_py.history.keys():
        if key != "time":
            np.testing.assert_array_equal(m_np.history[key], m_py.history[key])
    assert m_np.optimizer.get_config() == m_py.optimizer.get_config()
    assert m_np.allocate_workspace(np.int64(8)).capacity == 8

    # fit refuses to start from non-finite parameters unless reset is true: np.True_ is true
    # (it was refused, with "pass reset=True")
    for m in (m_py, m_np):
        m.params[0] = np.nan
        with pytest.raises(ValueError, match="reset=True"):
            m.fit(X, y, reset=np.False_)
    m_py.fit(X, y, reset=True)
    m_np.fit(X, y, reset=np.True_)
    np.testing.assert_array_equal(m_np.params, m_py.params)

