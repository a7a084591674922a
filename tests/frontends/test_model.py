"""The Model facade: buffers and views, configuration, argument validation."""

import numpy as np
import pytest

import fastbp


def test_buffers_and_views():
    m = fastbp.Model([4, 3, 2], activation="tanh", dtype="float64", seed=0)
    assert m.params.shape == (4 * 3 + 3 + 3 * 2 + 2,) and m.params.flags.c_contiguous
    assert m.grads.shape == m.params.shape and m.grads.dtype == m.params.dtype
    assert [W.shape for W in m.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in m.biases] == [(3,), (2,)]
    for v in m.weights + m.biases:
        assert np.shares_memory(v, m.params)
    m.weights[1][0, 2] = 42.0
    assert m.params[15 + 2] == 42.0  # W2 starts after W1 (12) and b1 (3)
    m.params[12:15] = [1, 2, 3]
    np.testing.assert_array_equal(m.biases[0], [1, 2, 3])
    m.params = np.zeros_like(m.params)  # assignment copies into the same buffer
    assert np.shares_memory(m.weights[0], m.params) and not m.params.any()
    with pytest.raises(ValueError, match="params must have shape"):
        m.params = np.zeros(3)


def test_defaults_and_initialisation():
    m = fastbp.Model([64, 32, 10], activation="relu", loss="cross_entropy", dtype="float32", seed=0)
    assert m.output == "softmax" and m.params.dtype == np.float32
    assert fastbp.Model([3, 1], loss="binary_cross_entropy").output == "logistic"
    assert fastbp.Model([3, 1]).output == "identity"
    # He uniform on relu layers: bound sqrt(6/64); Glorot uniform on the softmax layer
    assert np.abs(m.weights[0]).max() <= np.sqrt(6 / 64) and np.abs(m.weights[0]).max() > 0.25
    assert np.abs(m.weights[1]).max() <= np.sqrt(6 / 42)
    assert not any(b.any() for b in m.biases)
    big = fastbp.Model([400, 400, 400], activation="relu", dtype="float64", seed=1)
    np.testing.assert_allclose(big.weights[0].std(), np.sqrt(2 / 400), rtol=0.02)
    per_layer = fastbp.Model([3, 4, 5, 1], activation=["tanh", "relu"], seed=0)
    assert per_layer.activations == ["tanh", "relu"]
    f32 = fastbp.Model([5, 7, 2], dtype="float32", seed=3)
    f64 = fastbp.Model([5, 7, 2], dtype="float64", seed=3)
    np.testing.assert_array_equal(f32.params, f64.params.astype(np.float32))


def test_predict_shapes_and_probabilities():
    rng = np.random.default_rng(0)
    m = fastbp.Model([5, 8, 4], loss="cross_entropy", seed=0)
    out = m.predict(rng.normal(size=(2000, 5)))  # more rows than one chunk
    assert out.shape == (2000, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    single = m.predict(rng.normal(size=(1, 5)))
    assert single.shape == (1, 4)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(layer_sizes=[3]), ValueError, "at least an input and an output"),
        (dict(layer_sizes=[3, 0]), ValueError, r"layer_sizes\[1\]"),
        (dict(layer_sizes=[3, 2.5]), TypeError, r"layer_sizes\[1\]"),
        (dict(layer_sizes="34"), TypeError, "layer_sizes"),
        (dict(layer_sizes=[3, 2], activation="rleu"), ValueError, "Did you mean 'relu'"),
        (dict(layer_sizes=[3, 4, 2], activation="softmax"), ValueError, "activation"),
        (dict(layer_sizes=[3, 4, 4, 2], activation=["relu"]), ValueError, "one per hidden"),
        (dict(layer_sizes=[3, 2], loss="crossentrpy"), ValueError, "Did you mean .cross_entropy"),
        (dict(layer_sizes=[3, 2], loss="cross_entropy", output="identity"), ValueError, "softmax"),
        (dict(layer_sizes=[3, 2], dtype="float16"), ValueError, "dtype"),
        (dict(layer_sizes=[3, 2], seed=-1), ValueError, "seed"),
        (dict(layer_sizes=[3, 2], init="he"), ValueError, "init"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastbp.Model(**kwargs)


def _clf():
    return fastbp.Model([3, 4, 3], loss="cross_entropy", dtype="float64", seed=0)


X_OK = np.random.default_rng(0).normal(size=(6, 3))
Y_OK = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    "X,y,kwargs,exc,match",
    [
        (X_OK[:, :2], Y_OK, {}, ValueError, "has 2 features but the model's input layer has 3"),
        (X_OK[0], Y_OK[:1], {}, ValueError, "must be 2-D"),
        (X_OK[:0], Y_OK[:0], {}, ValueError, "empty"),
        (np.where(np.eye(6, 3) > 0, np.nan, X_OK), Y_OK, {}, ValueError, "NaN or infinity"),
        (X_OK.astype(complex), Y_OK, {}, TypeError, "real numbers"),
        (X_OK.astype(object), Y_OK, {}, TypeError, "real numbers"),
        ("abc", Y_OK, {}, TypeError, "numeric array"),
        (X_OK, Y_OK[:5], {}, ValueError, "same length"),
        (X_OK, Y_OK + 1, {}, ValueError, r"labels must lie in \[0, 2\]"),
        (X_OK, Y_OK + 0.5, {}, ValueError, "integer class labels"),
        (X_OK, np.full((6, 3), 0.5), {}, ValueError, "summing to 1"),
        (X_OK, Y_OK, dict(epochs=0), ValueError, "epochs"),
        (X_OK, Y_OK, dict(epochs=1.5), TypeError, "epochs"),
        (X_OK, Y_OK, dict(batch_size=0), ValueError, "batch_size"),
        (X_OK, Y_OK, dict(learning_rate=-1), ValueError, "learning_rate"),
        (X_OK, Y_OK, dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (X_OK, Y_OK, dict(shuffle="yes"), TypeError, "shuffle"),
    ],
)
def test_fit_rejects_bad_input_and_leaves_model_unchanged(X, y, kwargs, exc, match):
    m = _clf()
    before = m.params.copy()
    with pytest.raises(exc, match=match):
        m.fit(X, y, **kwargs)
    assert np.array_equal(m.params, before) and m.history.epochs == 0


def test_binary_cross_entropy_targets_checked():
    m = fastbp.Model([3, 2], loss="binary_cross_entropy", seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.fit(X_OK, np.full((6, 2), 2.0))
    with pytest.raises(ValueError, match="1-D but the output layer has 2"):
        m.fit(X_OK, np.ones(6))


def test_inputs_of_other_kinds_are_converted():
    m = _clf()
    Xf = np.asfortranarray(X_OK)
    Xbe = X_OK.astype(">f8")
    Xint = np.arange(18).reshape(6, 3)
    ref = m.predict(X_OK)
    np.testing.assert_array_equal(m.predict(Xf), ref)
    np.testing.assert_array_equal(m.predict(Xbe), ref)
    np.testing.assert_array_equal(m.predict(X_OK.tolist()), ref)
    assert m.predict(Xint).shape == (6, 3) and m.predict(Xint > 5).shape == (6, 3)
    m.fit(X_OK[:, ::-1].copy()[:, ::-1], Y_OK.astype(np.int8), epochs=1)  # strided X, int8 labels
    assert m.history.epochs == 1 and np.isfinite(m.history["loss"][0])


def test_history_records_each_epoch():
    m = _clf()
    h = m.fit(X_OK, Y_OK, epochs=3, batch_size=2, learning_rate=0.1)
    assert h is m.history and h.epochs == 3 and len(h["time"]) == 3
    m.fit(X_OK, Y_OK, epochs=2)
    assert m.history.epochs == 5 and "loss" in m.history
    assert "Model([3, 4, 3]" in repr(m) and "History(epochs=5" in repr(m.history)


@pytest.mark.parametrize("alias, loss", [
    ("categorical_crossentropy", "cross_entropy"),
    ("sparse_categorical_crossentropy", "cross_entropy"),
    ("CrossEntropyLoss", "cross_entropy"),
    ("mse", "squared_error"),
    ("MSELoss", "squared_error"),
    ("binary_crossentropy", "binary_cross_entropy"),
    ("BCELoss", "binary_cross_entropy"),
    ("log_loss", "binary_cross_entropy"),
])
def test_keras_and_pytorch_loss_names_are_aliases(alias, loss):
    m = fastbp.Model([3, 2], loss=alias, seed=0)
    assert m.loss == loss and m.output == fastbp.Model([3, 2], loss=loss).output
    assert f"loss={loss!r}" in repr(m)


@pytest.mark.parametrize("name, canonical", [
    ("ReLU", "relu"), ("RELU", "relu"), ("Relu", "relu"),  # torch.nn.ReLU, shouting, ...
    ("sigmoid", "logistic"), ("Sigmoid", "logistic"),  # Keras, torch.nn.Sigmoid
    ("Tanh", "tanh"), ("TANH", "tanh"),
    ("LeakyReLU", "leaky_relu"), ("leaky-relu", "leaky_relu"), ("Leaky_ReLU", "leaky_relu"),
    ("linear", "identity"), ("Identity", "identity"), ("Logistic", "logistic"),
])
def test_keras_pytorch_and_sklearn_activation_names_are_accepted(name, canonical, tmp_path):
    m = fastbp.Model([3, 4, 5, 2], activation=[name, "relu"], seed=0)
    assert m.activations == [canonical, "relu"]
    assert f"activation={[canonical, 'relu']}" in repr(m)
    same = fastbp.Model([3, 4, 5, 2], activation=[canonical, "relu"], seed=0)
    np.testing.assert_array_equal(m.predict(X_OK), same.predict(X_OK))
    m.save(tmp_path / "m.npz")  # files keep fastbp's names
    assert fastbp.Model.load(tmp_path / "m.npz").activations == [canonical, "relu"]


@pytest.mark.parametrize("output, loss, canonical", [
    ("Softmax", "cross_entropy", "softmax"), ("sigmoid", "binary_cross_entropy", "logistic"),
    ("exponential", "poisson", "exp"), ("Linear", "squared_error", "identity"),
    ("Tanh", "squared_error", "tanh"),
])
def test_output_activation_names_are_accepted_too(output, loss, canonical):
    assert fastbp.Model([3, 2], loss=loss, output=output).output == canonical


@pytest.mark.parametrize("name, hint", [
    ("rellu", "Did you mean 'relu'?"), ("sigmod", "Did you mean 'logistic'?"),
    ("tahn", "Did you mean 'tanh'?"), ("leaky_rlu", "Did you mean 'leaky_relu'?"),
    ("GELU", "fastbp does not implement it."), ("softplus", "fastbp does not implement it."),
])
def test_unknown_activation_names_get_a_suggestion(name, hint):
    with pytest.raises(ValueError) as info:
        fastbp.Model([3, 4, 2], activation=name)
    msg = str(info.value)
    assert msg.startswith(f"activation={name!r} is not supported; expected one of ")
    assert msg.endswith(hint) and "'ReLU'" in msg  # says that other names are accepted
    with pytest.raises(ValueError, match="Did you mean 'softmax'"):
        fastbp.Model([3, 2], loss="squared_error", output="sofmax")


def test_loss_names_are_matched_without_regard_to_case_too():
    assert fastbp.Model([3, 2], loss="Cross_Entropy").loss == "cross_entropy"
    assert fastbp.Model([3, 2], loss="SQUARED-ERROR").loss == "squared_error"
    # Keras's class names: CategoricalCrossentropy, MeanSquaredError, BinaryCrossentropy
    assert fastbp.Model([3, 2], loss="CategoricalCrossentropy").loss == "cross_entropy"
    assert fastbp.Model([3, 2], loss="MeanSquaredError").loss == "squared_error"
    assert fastbp.Model([3, 1], loss="BinaryCrossentropy").loss == "binary_cross_entropy"
    with pytest.raises(ValueError, match="Did you mean 'cross_entropy'"):
        fastbp.Model([3, 2], loss="cros_entropy")


def test_integer_labels_with_squared_error_suggest_cross_entropy():
    m = fastbp.Model([3, 4, 3], seed=0)  # the default loss: squared_error
    for y in (Y_OK, Y_OK.astype(float), Y_OK.reshape(-1, 1)):
        with pytest.raises(ValueError, match="looks like integer class labels.*"
                                             "loss='cross_entropy'"):
            m.fit(X_OK, y)
    # real-valued targets of the wrong shape get no such hint
    with pytest.raises(ValueError, match="1-D") as info:
        m.fit(X_OK, Y_OK + 0.5)
    assert "cross_entropy" not in str(info.value)
