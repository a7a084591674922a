"""fastbp.interop: PyTorch, ONNX and scikit-learn conversions.

Every conversion must predict what the source predicts. PyTorch, onnx/onnxruntime and
scikit-learn are optional: the tests that need one skip when it is missing. Shapes are tiny
and the models use few dtype/loss combinations, to keep Numba's compile time down.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastbp
from fastbp import Model, interop

TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-13)}

# (hidden activation(s), loss, output, dtype): every activation, every loss, both dtypes
CASES = [
    ("relu", "cross_entropy", None, "float32"),
    ("tanh", "binary_cross_entropy", None, "float64"),
    ("logistic", "squared_error", None, "float32"),
    ("leaky_relu", "squared_error", "tanh", "float64"),
    (["identity", "leaky_relu"], "squared_error", "leaky_relu", "float32"),
    (["relu", "logistic"], "squared_error", "softmax", "float64"),
    ("tanh", "squared_error", "relu", "float32"),
    ("logistic", "squared_error", "logistic", "float64"),
]


def _model(activation, loss, output, dtype, n_in=4, n_out=3, seed=0, dropout=0.0):
    n_hidden = 1 if isinstance(activation, str) else len(activation)
    sizes = [n_in] + [5, 6][:n_hidden] + [n_out]
    m = Model(sizes, activation=activation, loss=loss, output=output, dtype=dtype, seed=seed,
              dropout=dropout)
    rng = np.random.default_rng(seed)
    m.params[:] = rng.normal(scale=0.8, size=m.params.shape)  # biases too, not zeros
    return m


def _X(dtype, n=7, n_in=4, seed=1):
    return np.random.default_rng(seed).normal(size=(n, n_in)).astype(dtype)


def _case_id(case):
    act, loss, out, dt = case
    return f"{'-'.join([act] if isinstance(act, str) else act)}-{loss}-{out}-{dt}"


def test_import_fastbp_imports_no_optional_package():
    code = ("import sys, fastbp; bad = [m for m in ('torch', 'onnx', 'onnxruntime', "
            "'sklearn', 'fastbp.interop') if m in sys.modules]; assert not bad, bad")
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr


# ====================================================================== PyTorch
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_to_torch_matches_predict_and_round_trips(case):
    torch = pytest.importorskip("torch")
    m = _model(*case)
    X = _X(case[3])
    module = m.to_torch()
    assert isinstance(module, torch.nn.Sequential) and not module.training
    linears = [layer for layer in module if isinstance(layer, torch.nn.Linear)]
    assert len(linears) == m.n_layers
    assert all(lin.weight.dtype == getattr(torch, case[3]) for lin in linears)
    expected_last = {"softmax": torch.nn.Softmax, "logistic": torch.nn.Sigmoid,
                     "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
                     "leaky_relu": torch.nn.LeakyReLU, "identity": torch.nn.Identity}
    assert type(module[-1]) is expected_last[m.output]
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert out.dtype == m.dtype
    np.testing.assert_allclose(out, m.predict(X), **TOL[case[3]])

    back = Model.from_torch(module, m.loss, seed=3)
    assert (back.activations, back.output, back.loss, back.dtype) == (
        m.activations, m.output, m.loss, m.dtype)
    assert list(back.layer_sizes) == list(m.layer_sizes) and back.seed == 3
    np.testing.assert_array_equal(back.params, m.params)
    np.testing.assert_array_equal(back.predict(X), m.predict(X))


def test_to_torch_is_a_copy_and_leaves_torch_rng_alone():
    torch = pytest.importorskip("torch")
    m = _model("relu", "squared_error", None, "float32")
    state = torch.random.get_rng_state()
    module = m.to_torch()
    assert torch.equal(state, torch.random.get_rng_state())  # skip_init draws nothing
    before = m.params.copy()
    with torch.no_grad():
        module[0].weight.zero_()
    np.testing.assert_array_equal(m.params, before)


def test_dropout_round_trips_and_is_off_in_eval_mode():
    torch = pytest.importorskip("torch")
    m = _model(["relu", "tanh"], "squared_error", None, "float32", dropout=[0.25, 0.0])
    module = m.to_torch()
    drops = [layer for layer in module if isinstance(layer, torch.nn.Dropout)]
    assert [d.p for d in drops] == [0.25]
    X = _X("float32")
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(X)).numpy(), m.predict(X),
                                   **TOL["float32"])
    back = Model.from_torch(module, "squared_error")
    assert back.dropout == [0.25, 0.0]


def _torch_mlp(torch, *layers, dtype=None):
    torch.manual_seed(0)
    module = torch.nn.Sequential(*layers)
    return module.to(dtype or torch.float32)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_from_torch_logits_get_the_loss_output(loss):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    module = _torch_mlp(torch, nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    m = Model.from_torch(module, loss)
    X = _X("float32")
    with torch.no_grad():
        logits = torch.from_numpy(X)
        logits = module(logits)
        want = (torch.softmax(logits, dim=1) if loss == "cross_entropy"
                else torch.sigmoid(logits)).numpy()
    assert m.output == {"cross_entropy": "softmax", "binary_cross_entropy": "logistic"}[loss]
    np.testing.assert_allclose(m.predict(X), want, **TOL["float32"])


def test_from_torch_layout_variants():
    """Nested Sequential, Identity modules, Linear after Linear, Linear without bias,
    Softmax(dim=-1), parameters that do not require grad."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    module = _torch_mlp(
        torch,
        nn.Sequential(nn.Linear(4, 5, bias=False), nn.Identity()),
        nn.Linear(5, 6), nn.Tanh(), nn.Identity(),
        nn.Sequential(nn.Linear(6, 3), nn.Softmax(dim=-1)),
        dtype=torch.float64,
    )
    module.requires_grad_(False)
    m = Model.from_torch(module, "cross_entropy")
    assert list(m.layer_sizes) == [4, 5, 6, 3]
    assert m.activations == ["identity", "tanh"] and m.dtype == np.float64
    np.testing.assert_array_equal(m.biases[0], 0.0)
    X = _X("float64")
    np.testing.assert_allclose(m.predict(X), module(torch.from_numpy(X)).numpy(),
                               **TOL["float64"])


def test_from_torch_model_trains_on():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    module = _torch_mlp(torch, nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    m = Model.from_torch(module, "cross_entropy", seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.argmax(X[:, :3], axis=1)
    before = m.loss_value(X, y)
    m.fit(X, y, epochs=30, batch_size=10, learning_rate=0.1, optimizer="sgd")
    assert m.loss_value(X, y) < 0.7 * before
    assert np.isfinite(m.history["loss"]).all()
    # the torch module is a copy: training the model left it as it was
    with torch.no_grad():
        assert not np.allclose(module[0].weight.numpy(), m.weights[0])


def _bad_modules(torch):
    nn = torch.nn

    class Custom(nn.Module):
        def forward(self, x):
            return x

    class MyReLU(nn.ReLU):  # a subclass may compute something else
        pass

    cases = [
        ("not-sequential", nn.Linear(4, 3), "squared_error", TypeError, "nn.Sequential"),
        ("custom-module", Custom(), "squared_error", TypeError, "Custom"),
        ("unsupported", nn.Sequential(nn.Linear(4, 5), nn.GELU(), nn.Linear(5, 3)),
         "squared_error", ValueError, r"module\[1\] \(GELU\).*ReLU.*Tanh.*Sigmoid"),
        ("subclass", nn.Sequential(nn.Linear(4, 5), MyReLU(), nn.Linear(5, 3)),
         "squared_error", ValueError, r"module\[1\] \(MyReLU\)"),
        ("sigmoid-with-ce", nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()), "cross_entropy",
         ValueError, r"Sigmoid.*cross_entropy.*Softmax"),
        ("softmax-with-bce", nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)),
         "binary_cross_entropy", ValueError, r"Softmax.*binary_cross_entropy.*Sigmoid"),
        ("logsoftmax", nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1)), "cross_entropy",
         ValueError, "LogSoftmax"),
        ("hidden-softmax", nn.Sequential(nn.Linear(4, 5), nn.Softmax(dim=1), nn.Linear(5, 3)),
         "squared_error", ValueError, "output activation"),
        ("leaky-slope", nn.Sequential(nn.Linear(4, 5), nn.LeakyReLU(0.2), nn.Linear(5, 3)),
         "squared_error", ValueError, r"negative_slope=0.2.*0.01"),
        ("softmax-dim0", nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)), "cross_entropy",
         ValueError, r"dim=0.*dim=1"),
        ("shape-mismatch", nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(6, 3)),
         "squared_error", ValueError, r"module\[2\] \(Linear\) takes 6 inputs.*gives 5"),
        ("activation-first", nn.Sequential(nn.ReLU(), nn.Linear(4, 3)), "squared_error",
         ValueError, "before the first Linear"),
        ("two-activations", nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Tanh(),
                                          nn.Linear(5, 3)),
         "squared_error", ValueError, "after another activation"),
        ("activation-after-dropout", nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.1),
                                                   nn.Tanh(), nn.Linear(5, 3)),
         "squared_error", ValueError, "after a Dropout"),
        ("final-dropout", nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3),
                                        nn.ReLU(), nn.Dropout(0.1)),
         "squared_error", ValueError, "Dropout after its last Linear"),
        ("no-linear", nn.Sequential(), "squared_error", ValueError, "no Linear"),
        ("bad-loss", nn.Sequential(nn.Linear(4, 3)), "mse", ValueError, r"loss='mse'"),
        ("float16", nn.Sequential(nn.Linear(4, 3)).half(), "squared_error", TypeError,
         r"float16.*\.float\(\)"),
        ("mixed-dtypes", nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3).double()),
         "squared_error", TypeError, r"module\[1\].weight has dtype torch.float64"),
    ]
    return {name: rest for name, *rest in cases}


BAD_MODULES = (
    "not-sequential", "custom-module", "unsupported", "subclass", "sigmoid-with-ce",
    "softmax-with-bce", "logsoftmax", "hidden-softmax", "leaky-slope", "softmax-dim0",
    "shape-mismatch", "activation-first", "two-activations", "activation-after-dropout",
    "final-dropout", "no-linear", "bad-loss", "float16", "mixed-dtypes",
)


@pytest.mark.parametrize("name", BAD_MODULES)
def test_from_torch_rejects_bad_modules_clearly(name):
    torch = pytest.importorskip("torch")
    cases = _bad_modules(torch)
    assert set(cases) == set(BAD_MODULES)
    module, loss, exc, match = cases[name]
    with pytest.raises(exc, match=match):
        Model.from_torch(module, loss)


def _unreproducible(torch, name):
    """A module whose output is not the plain composition of its layers."""
    nn = torch.nn
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Sequential(nn.Linear(5, 3)))
    if name == "forward-hook":
        net[0].register_forward_hook(lambda m, inp, out: out * 2)
    elif name == "forward-pre-hook":
        net.register_forward_pre_hook(lambda m, inp: (inp[0] + 1,))
    elif name == "nested-hook":
        net[2].register_forward_hook(lambda m, inp, out: out - 1)
    elif name == "weight-norm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated, still used
            net[0] = torch.nn.utils.weight_norm(nn.Linear(4, 5))
    elif name == "spectral-norm":
        net[0] = torch.nn.utils.spectral_norm(nn.Linear(4, 5))
    elif name == "pruning":
        from torch.nn.utils import prune

        prune.random_unstructured(net[0], "weight", amount=0.5)
    elif name == "sequential-forward":
        class Doubling(nn.Sequential):
            def forward(self, x):
                return 2 * super().forward(x)

        net = Doubling(*net)
    elif name == "instance-forward":
        net[1].forward = lambda x: x
    return net


UNREPRODUCIBLE = {
    "forward-hook": r"module\[0\] \(Linear\) has a forward hook",
    "forward-pre-hook": r"^module \(Sequential\) has a forward pre-hook",
    "nested-hook": r"module\[2\] \(Sequential\) has a forward hook",
    "weight-norm": r"module\[0\] \(Linear\) has a forward pre-hook \(torch.nn.utils.weight_norm",
    "spectral-norm": r"module\[0\] \(Linear\) has a forward pre-hook \(torch.nn.utils.spectral",
    "pruning": r"module\[0\] \(Linear\) has a forward pre-hook \(torch.nn.utils.prune",
    "sequential-forward": r"module \(Doubling\) has a forward of its own",
    "instance-forward": r"module\[1\] \(Tanh\) has a forward of its own",
}


@pytest.mark.parametrize("name", list(UNREPRODUCIBLE))
def test_from_torch_refuses_what_it_cannot_reproduce(name):
    """These were imported, and the model differed from the module by 0.27 to 4.7."""
    torch = pytest.importorskip("torch")
    net = _unreproducible(torch, name).double()
    X = torch.from_numpy(_X("float64"))
    with torch.no_grad():
        assert net(X).shape == (X.shape[0], 3)  # a working module, hooks and all
    with pytest.raises(ValueError, match=UNREPRODUCIBLE[name]):
        Model.from_torch(net, "squared_error")


def test_from_torch_refuses_global_hooks_and_accepts_backward_hooks():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o)
    try:
        with pytest.raises(ValueError, match="global forward hooks are registered"):
            Model.from_torch(net, "squared_error")
    finally:
        handle.remove()
    net[0].register_full_backward_hook(lambda m, gi, go: None)  # forward unchanged

    class Plain(nn.Sequential):  # a subclass without a forward of its own
        pass

    X = _X("float64")
    for module in (net, Plain(*net)):
        with torch.no_grad():
            want = module(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(Model.from_torch(module, "squared_error").predict(X),
                                   want, rtol=1e-12, atol=1e-12)


def test_from_torch_rejects_nonfinite_weights():
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with torch.no_grad():
        module[0].bias[1] = float("nan")
    with pytest.raises(ValueError, match=r"module\[0\].bias contains NaN"):
        Model.from_torch(module, "squared_error")


def test_missing_torch_and_onnx_say_how_to_install(monkeypatch):
    m = _model("relu", "squared_error", None, "float32")
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="download.pytorch.org/whl/cpu"):
        m.to_torch()
    with pytest.raises(ImportError, match="download.pytorch.org/whl/cpu"):
        Model.from_torch(object(), "squared_error")
    with pytest.raises(ImportError, match=r"fastbp\[onnx\]"):
        m.to_onnx()


# ====================================================================== ONNX
def _session(source):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_to_onnx_matches_predict_under_onnxruntime(case, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    m = _model(*case)
    path = tmp_path / "model.onnx"
    proto = m.to_onnx(path)
    assert isinstance(proto, onnx.ModelProto)
    assert path.read_bytes() == proto.SerializeToString()
    assert [f for f in os.listdir(tmp_path)] == ["model.onnx"]  # no temporary file left
    assert proto.opset_import[0].version == interop.DEFAULT_OPSET
    assert [n.op_type for n in proto.graph.node][::2] == ["Gemm"] * m.n_layers
    sess = _session(str(path))
    assert [i.name for i in sess.get_inputs()] == ["X"]
    assert sess.get_inputs()[0].shape[0] == "batch"
    for n in (1, 7):  # dynamic batch dimension
        X = _X(case[3], n=n)
        (out,) = sess.run(None, {"X": X})
        assert out.dtype == m.dtype and out.shape == (n, m.layer_sizes[-1])
        np.testing.assert_allclose(out, m.predict(X), **TOL[case[3]])


def test_to_onnx_options_and_metadata():
    pytest.importorskip("onnx")
    m = _model("relu", "cross_entropy", None, "float32")
    proto = m.to_onnx(opset=13, input_name="features", output_name="probabilities")
    assert proto.opset_import[0].version == 13 and proto.producer_name == "fastbp"
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["fastbp.loss"] == "cross_entropy" and props["fastbp.output"] == "softmax"
    sess = _session(proto.SerializeToString())
    X = _X("float32")
    (out,) = sess.run(["probabilities"], {"features": X})
    np.testing.assert_allclose(out, m.predict(X), **TOL["float32"])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(opset=12), ValueError, "opset must be an integer >= 13"),
    (dict(opset="17"), TypeError, "opset must be an integer"),
    (dict(input_name="Y"), ValueError, "input_name and output_name must differ"),
    (dict(output_name=""), ValueError, "output_name must be a non-empty string"),
    (dict(input_name="fastbp/layer0/W"), ValueError, "input_name"),
    (dict(path=3), TypeError, "path must be a file name"),
])
def test_to_onnx_rejects_bad_arguments(kwargs, exc, match):
    pytest.importorskip("onnx")
    m = _model("relu", "cross_entropy", None, "float32")
    with pytest.raises(exc, match=match):
        m.to_onnx(**kwargs)


def test_to_onnx_never_leaves_a_partial_file(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    m = _model("relu", "cross_entropy", None, "float32")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fastbp._io.os, "fsync", fail)  # interrupted after writing the data
    with pytest.raises(KeyboardInterrupt):
        m.to_onnx(path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.onnx"]
    with pytest.raises(FileNotFoundError):
        m.to_onnx(tmp_path / "missing-dir" / "model.onnx")
    m.to_onnx(path)
    assert path.read_bytes() != b"old" and os.listdir(tmp_path) == ["model.onnx"]


# ====================================================================== scikit-learn
def _fit_quietly(est, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("n_classes, activation, dtype", [
    (3, "relu", "float64"), (2, "tanh", "float64"), (3, "logistic", "float32"),
])
def test_from_sklearn_classifier(n_classes, activation, dtype):
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(dtype)
    y = np.array(["a", "b", "c"])[rng.integers(0, n_classes, 40)]
    est = _fit_quietly(MLPClassifier((5, 6), activation=activation, max_iter=20,
                                     random_state=0), X, y)
    m = Model.from_sklearn(est, seed=0)
    assert m.dtype == np.dtype(dtype) and m.activations == [activation] * 2
    assert list(m.layer_sizes) == [4, 5, 6, 1 if n_classes == 2 else n_classes]
    proba = est.predict_proba(X)
    if n_classes == 2:
        assert m.loss == "binary_cross_entropy" and m.output == "logistic"
        np.testing.assert_allclose(m.predict(X), proba[:, 1:], **TOL[dtype])
    else:
        assert m.loss == "cross_entropy" and m.output == "softmax"
        np.testing.assert_allclose(m.predict(X), proba, **TOL[dtype])


def test_from_sklearn_regressor_and_the_identity_activation():
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    Y = rng.normal(size=(40, 2))
    est = _fit_quietly(MLPRegressor(hidden_layer_sizes=(5,), activation="identity", max_iter=20,
                                    random_state=0), X, Y)
    m = Model.from_sklearn(est)
    assert (m.loss, m.output, m.activations) == ("squared_error", "identity", ["identity"])
    np.testing.assert_allclose(m.predict(X), est.predict(X), **TOL["float64"])


def test_from_sklearn_rejects_unfitted_and_foreign_estimators():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(NotFittedError, match="not fitted yet.*call its fit method"):
        Model.from_sklearn(MLPClassifier())
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor.*LogisticRegression"):
        Model.from_sklearn(LogisticRegression())
    with pytest.raises(TypeError, match="got Model"):
        Model.from_sklearn(_model("relu", "squared_error", None, "float32"))


def test_from_sklearn_refuses_estimators_that_predict_otherwise():
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier

    class Tempered(MLPClassifier):  # its probabilities are not the network's output
        def predict_proba(self, X):
            p = super().predict_proba(X) ** 0.5
            return p / p.sum(axis=1, keepdims=True)

    X = _X("float64", n=30)
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match=r"\(Tempered\) has a predict_proba of its own"):
        Model.from_sklearn(_fit_quietly(Tempered(hidden_layer_sizes=(4,), max_iter=5), X, y))
    est = _fit_quietly(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5), X, y)
    est.predict_proba = lambda X: np.full((len(X), 3), 1 / 3)
    with pytest.raises(ValueError, match="has a predict_proba of its own"):
        Model.from_sklearn(est)


def test_from_sklearn_poisson_regressor():
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.poisson(2.0, 20)
    est = _fit_quietly(MLPRegressor(hidden_layer_sizes=(4,), loss="poisson", max_iter=5,
                                    random_state=0), X, y)
    m = Model.from_sklearn(est)
    assert (m.loss, m.output) == ("poisson", "exp")
    np.testing.assert_allclose(m.predict(X)[:, 0], est.predict(X), **TOL["float64"])
    # the same half deviance as scikit-learn's loss (without its L2 term)
    from sklearn.neural_network._base import poisson_loss

    np.testing.assert_allclose(m.loss_value(X, y.astype(float)),
                               poisson_loss(y[:, None], est.predict(X)[:, None]), rtol=1e-12)


def test_fastbp_sklearn_estimators_expose_and_import_their_model():
    sk = pytest.importorskip("fastbp.sklearn")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    est = _fit_quietly(sk.MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0),
                       X, y)
    assert isinstance(est.model_, fastbp.Model)
    np.testing.assert_array_equal(est.model_.predict(X), est.predict_proba(X))
    m = Model.from_sklearn(est)
    assert m is not est.model_
    np.testing.assert_array_equal(m.params, est.model_.params)


def test_to_onnx_from_a_training_callback():
    """Export snapshots at a step boundary; callbacks run between compiled calls, so a
    per-epoch export neither blocks nor sees half-updated weights."""
    pytest.importorskip("onnx")
    m = _model("relu", "cross_entropy", None, "float32")
    X = _X("float32", n=20)
    y = np.arange(20) % 3
    exported = []

    def export(epoch, logs):
        exported.append((m.to_onnx(), m.predict(X)))

    m.fit(X, y, epochs=2, batch_size=5, optimizer="sgd", callbacks=[export])
    assert len(exported) == 2
    proto, pred = exported[-1]
    (out,) = _session(proto.SerializeToString()).run(None, {"X": X})
    np.testing.assert_allclose(out, pred, **TOL["float32"])


def test_poisson_model_exports_to_torch_and_onnx(tmp_path):
    """The exp output of loss='poisson': a small Exp module in PyTorch, Exp in ONNX; a
    module ending in the last Linear (log rates) imports back with loss='poisson'."""
    torch = pytest.importorskip("torch")
    m = _model("tanh", "poisson", None, "float64")
    X = _X("float64")
    module = m.to_torch()
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, m.predict(X), **TOL["float64"])
    back = Model.from_torch(module[:-1], "poisson")
    assert (back.loss, back.output) == ("poisson", "exp")
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    with pytest.raises(ValueError, match="loss='poisson'"):
        Model.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid()),
                         "poisson")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    m.to_onnx(tmp_path / "p.onnx")
    (got,) = _session(str(tmp_path / "p.onnx")).run(None, {"X": X})
    np.testing.assert_allclose(got, m.predict(X), **TOL["float64"])
