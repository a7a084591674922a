"""The public kernels (``fastbp.kernels``) called from user-style ``@njit`` code.

Each test writes the kind of ``@njit`` function a user would write, calls a public kernel
from it, and compares with the ``Model`` facade. Where the facade runs the very same
computation the results must be bitwise equal.
"""

import numpy as np
import pytest
from numba import njit

import fastbp
from fastbp import kernels as K

CASES = [
    # (layer sizes, hidden activation, loss, output)
    ([3, 6, 4, 2], "tanh", "squared_error", None),
    ([3, 5, 4], "relu", "cross_entropy", None),
    ([3, 7, 3], "logistic", "binary_cross_entropy", None),
    ([3, 4, 3], "leaky_relu", "squared_error", "softmax"),
]
DTYPES = ["float32", "float64"]


def _data(sizes, loss, dtype, n=13, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    n_out = sizes[-1]
    if loss == "cross_entropy":
        T = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    elif loss == "binary_cross_entropy":
        T = (rng.random((n, n_out)) < 0.5).astype(dtype)
    else:
        T = rng.normal(size=(n, n_out)).astype(dtype)
    return X, T


def _model(case, dtype, seed=3):
    sizes, act, loss, out = case
    return fastbp.Model(sizes, activation=act, loss=loss, output=out, dtype=dtype, seed=seed)


# --------------------------------------------------------------------- user-style functions
@njit
def user_predict(X, k, ws, out):
    K.predict(X, k, ws, out)


@njit
def user_forward(X, k, ws, out):
    n = X.shape[0]
    K.input_block(ws.act, k.sizes, ws.a_off, n)[:, :] = X
    K.forward(k, ws, n)
    out[:, :] = K.output_block(ws.act, k.sizes, ws.a_off, n)


@njit
def user_loss(X, T, k, ws):
    return K.loss(X, T, k, ws)


@njit
def user_batch_loss(X, T, k, ws):
    n = X.shape[0]
    K.input_block(ws.act, k.sizes, ws.a_off, n)[:, :] = X
    K.forward(k, ws, n)
    z = K.output_z(ws.z_out, k.sizes, n)
    a = K.output_block(ws.act, k.sizes, ws.a_off, n)
    return K.batch_loss(z, a, T, k.loss_code) / n


@njit
def user_manual_gradient(X, T, k, ws):
    """forward -> output_delta -> backward, written out step by step."""
    n = X.shape[0]
    K.input_block(ws.act, k.sizes, ws.a_off, n)[:, :] = X
    K.forward(k, ws, n)
    value = K.output_delta(
        K.output_z(ws.z_out, k.sizes, n), K.output_block(ws.act, k.sizes, ws.a_off, n), T,
        k.loss_code, k.out_code, 1.0 / n, K.output_block(ws.delta, k.sizes, ws.a_off, n),
    )
    K.backward(k, ws, n, False)
    return value


@njit
def user_loss_and_gradient(X, T, k, ws):
    return K.loss_and_gradient(X, T, k, ws)


@njit
def user_sgd_loop(X, T, k, ws, batch_size, lr):
    """Hand-written minibatch loop: loss_and_gradient + sgd_step per batch, rows in order."""
    n = X.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        total += m * K.loss_and_gradient(X[start:stop], T[start:stop], k, ws)
        K.sgd_step(k.params, k.grads, lr)
    return total / n


@njit
def user_train_step_loop(X, T, k, ws, batch_size, lr):
    n = X.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        total += (stop - start) * K.train_step(X[start:stop], T[start:stop], k, ws, lr)
    return total / n


@njit
def user_train_epochs(X, T, k, ws, order, epochs, batch_size, lr):
    last = 0.0
    for _ in range(epochs):
        last = K.train_epoch_sgd(X, T, order, k, ws, batch_size, lr)
    return last


# --------------------------------------------------------------------- tests
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[1]}")
def test_predict_and_forward_match_facade(case, dtype):
    model = _model(case, dtype)
    X, _ = _data(case[0], case[2], dtype)
    expected = model.predict(X)
    k = model.kernel_args()

    out = np.empty_like(expected)
    user_predict(X, k, model.allocate_workspace(4), out)  # chunked: capacity < n
    np.testing.assert_array_equal(out, expected)

    out2 = np.empty_like(expected)
    user_forward(X, k, model.allocate_workspace(X.shape[0]), out2)
    np.testing.assert_array_equal(out2, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[1]}")
def test_loss_kernels_match_facade(case, dtype):
    model = _model(case, dtype)
    X, T = _data(case[0], case[2], dtype)
    expected = model.loss_value(X, T)
    k = model.kernel_args()
    ws = model.allocate_workspace(X.shape[0])
    assert user_loss(X, T, k, ws) == expected
    assert user_batch_loss(X, T, k, ws) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[1]}")
def test_gradient_kernels_match_facade(case, dtype):
    model = _model(case, dtype)
    X, T = _data(case[0], case[2], dtype)
    loss, grad = model.gradient(X, T)
    k = model.kernel_args()
    ws = model.allocate_workspace(X.shape[0])

    model.grads[:] = np.nan
    assert user_manual_gradient(X, T, k, ws) == loss
    np.testing.assert_array_equal(model.grads, grad)

    model.grads[:] = np.nan
    assert user_loss_and_gradient(X, T, k, ws) == loss
    np.testing.assert_array_equal(model.grads, grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[1]}")
def test_training_kernels_match_fit(case, dtype):
    X, T = _data(case[0], case[2], dtype, n=23)
    batch_size, lr = 5, 0.05

    reference = _model(case, dtype)
    reference.fit(X, T, epochs=1, batch_size=batch_size, learning_rate=lr, shuffle=False)
    expected_loss = reference.history["loss"][-1]

    for user_loop in (user_sgd_loop, user_train_step_loop):
        model = _model(case, dtype)
        ws = model.allocate_workspace(batch_size)
        got = user_loop(X, T, model.kernel_args(), ws, batch_size, lr)
        assert got == pytest.approx(expected_loss, rel=1e-12)
        np.testing.assert_array_equal(model.params, reference.params)

    # train_epoch_sgd: bitwise equal to Model.fit's plain SGD over several epochs
    reference = _model(case, dtype)
    reference.fit(X, T, epochs=3, batch_size=batch_size, learning_rate=lr, shuffle=False)
    model = _model(case, dtype)
    order = np.arange(X.shape[0], dtype=np.int64)
    got = user_train_epochs(
        X, T, model.kernel_args(), model.allocate_workspace(batch_size), order, 3, batch_size, lr
    )
    assert got == reference.history["loss"][-1]
    np.testing.assert_array_equal(model.params, reference.params)


def test_sgd_step_matches_numpy():
    model = _model(CASES[0], "float64")
    k = model.kernel_args()
    rng = np.random.default_rng(1)
    k.grads[:] = rng.normal(size=k.grads.shape)
    before = model.params.copy()

    @njit
    def step(k, lr):
        K.sgd_step(k.params, k.grads, lr)

    step(k, 0.1)
    np.testing.assert_allclose(model.params, before - 0.1 * k.grads, rtol=1e-15, atol=1e-15)


def test_buffers_are_shared_both_ways():
    model = _model(CASES[0], "float64")
    X, T = _data(CASES[0][0], CASES[0][2], "float64")
    k = model.kernel_args()
    assert k.params is model.params and k.grads is model.grads
    ws = model.allocate_workspace(X.shape[0])

    # kernel -> model: a kernel step changes what the facade predicts
    before = model.predict(X)
    user_train_step_loop(X, T, k, ws, X.shape[0], 0.5)
    assert not np.array_equal(model.predict(X), before)

    # model -> kernel: writes through model.params / model.weights are seen by kernels
    model.params = np.zeros_like(model.params)
    model.biases[-1][:] = [1.5, -2.0]
    out = np.empty((X.shape[0], CASES[0][0][-1]))
    user_predict(X, k, ws, out)
    np.testing.assert_array_equal(out, np.tile([1.5, -2.0], (X.shape[0], 1)))


def test_kernel_args_layout():
    model = fastbp.Model([4, 3, 2], activation="relu", loss="cross_entropy", seed=0)
    k = model.kernel_args()
    assert k.sizes.dtype == np.int64 and list(k.sizes) == [4, 3, 2]
    assert list(k.w_off) == [0, 15] and list(k.b_off) == [12, 21]
    assert list(k.act_codes) == [K.ACT_RELU, K.ACT_SOFTMAX]
    assert k.loss_code == K.LOSS_CROSS_ENTROPY == K.LOSS_CODES["cross_entropy"]
    assert k.out_code == K.ACT_SOFTMAX
    np.testing.assert_array_equal(
        k.params[k.w_off[1] : k.b_off[1]].reshape(2, 3), model.weights[1]
    )
    ws = model.allocate_workspace(7)
    assert ws.capacity == 7
    assert ws.act.shape == ws.delta.shape == ws.raw.shape == (7 * 9,)
    assert ws.z_out.shape == ws.t_buf.shape == (7 * 2,)
    assert ws.w_buf.shape == (7,)
    assert k.drop_rates.shape == (1,) and k.drop_rates.dtype == np.float64
    assert list(ws.a_off) == [0, 28, 49]
    assert ws.act.dtype == model.dtype
    with pytest.raises(ValueError, match="batch_size"):
        model.allocate_workspace(0)


def test_public_names_are_documented():
    for name in K.__all__:
        obj = getattr(K, name)
        if callable(obj) and not isinstance(obj, type):
            assert (getattr(obj, "__doc__", None) or "").strip() or name in K.__doc__


USER_MODULE = '''
import numpy as np
from numba import njit

import fastbp
from fastbp import kernels as K


@njit(cache=True)
def user_step(X, T, k, ws, lr):
    return K.train_step(X, T, k, ws, lr)


model = fastbp.Model([2, 3, 1], activation="tanh", dtype="float64", seed=0)
X = np.arange(8.0).reshape(4, 2) / 8
T = X[:, :1] - X[:, 1:]
print(repr(user_step(X, T, model.kernel_args(), model.allocate_workspace(4), 0.1)))
'''


def test_cached_user_function_calling_kernels(tmp_path):
    """A user's ``cache=True`` function that calls the kernels also runs from the cache.

    Regression test: without ``fastbp.kernels`` starting Numba's threading layer at import,
    the second run (user function loaded from its cache) crashed (numba/numba#8578).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "user_code.py"
    script.write_text(USER_MODULE)
    env = dict(os.environ)
    root = str(Path(fastbp.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    outputs = []
    for _ in range(2):  # first run compiles and caches, second loads from the cache
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    # the user function was really cached, wherever Numba puts it (NUMBA_CACHE_DIR or in tree)
    cache_root = Path(env["NUMBA_CACHE_DIR"]) if env.get("NUMBA_CACHE_DIR") else tmp_path
    assert list(cache_root.rglob("user_code.*.nbi"))


# --------------------------------------------------------------------- optimizer kernels
@njit
def user_train_epochs_opt(X, T, SW, k, ws, o, epochs, batch_size, lr, l2, clip):
    order = np.arange(X.shape[0])
    last = 0.0
    for _ in range(epochs):
        last, _acc = K.train_epoch(X, T, SW, order, k, ws, o, lr, l2, clip, batch_size)
    return last


@njit
def user_full_batch_steps(X, T, k, ws, state, hyper, kind, steps, lr, l2, clip):
    """Hand-written full-batch loop: gradient, clipping, the named step of each optimizer."""
    for t in range(1, steps + 1):
        K.loss_and_gradient(X, T, k, ws)
        if clip > 0:
            K.clip_grad_norm(k.grads, clip)
        if kind == K.OPT_SGD:
            K.sgd_momentum_step(k.params, k.grads, state, hyper, lr, t, l2, k.sizes, k.w_off,
                                k.b_off)
        elif kind == K.OPT_ADAM:
            K.adam_step(k.params, k.grads, state, hyper, lr, t, l2, k.sizes, k.w_off, k.b_off)
        elif kind == K.OPT_RMSPROP:
            K.rmsprop_step(k.params, k.grads, state, hyper, lr, t, l2, k.sizes, k.w_off,
                           k.b_off)
        else:
            K.adagrad_step(k.params, k.grads, state, hyper, lr, t, l2, k.sizes, k.w_off,
                           k.b_off)


OPTIMIZERS = [
    ("sgd", dict(momentum=0.9, nesterov=True)),
    ("adam", dict(betas=(0.8, 0.99), eps=1e-6)),
    ("adamw", dict(weight_decay=0.1)),
    ("rmsprop", dict(alpha=0.9, momentum=0.5, centered=True)),
    ("adagrad", dict(lr_decay=0.01, initial_accumulator_value=0.1)),
]


def _optimizer(name, config):
    from fastbp import optim

    classes = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW,
               "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}
    return classes[name](**config)


@pytest.mark.parametrize("name,config", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_train_epoch_matches_fit_with_optimizers(name, config):
    case = CASES[1]  # cross-entropy
    X, T = _data(case[0], case[2], "float64", n=23)
    SW = np.random.default_rng(5).uniform(0.5, 2.0, X.shape[0])
    SW = SW / SW.mean()  # Model.fit rescales sample weights to mean 1
    kw = dict(batch_size=5, learning_rate=0.01, shuffle=False, l2=1e-3, clip_norm=1.0)

    reference = _model(case, "float64")
    reference.fit(X, T, epochs=3, optimizer=_optimizer(name, config), sample_weight=SW, **kw)

    model = _model(case, "float64")
    o = model.optimizer_args(_optimizer(name, config))
    assert o.kind == K.OPTIMIZER_CODES[name] and o.state.shape[0] == K.OPT_STATE_ROWS[o.kind]
    got = user_train_epochs_opt(X, T, SW, model.kernel_args(), model.allocate_workspace(5), o,
                                3, 5, 0.01, 1e-3, 1.0)
    assert got == reference.history["loss"][-1]
    np.testing.assert_array_equal(model.params, reference.params)
    np.testing.assert_array_equal(model.optimizer_state, reference.optimizer_state)
    assert model.optimizer_steps == reference.optimizer_steps == 15

    # the kernels advanced the model's own optimizer: fit continues identically
    reference.fit(X, T, epochs=1, sample_weight=SW, **kw)
    model.fit(X, T, epochs=1, sample_weight=SW, **kw)
    np.testing.assert_array_equal(model.params, reference.params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_consecutive_rows_are_read_in_place_with_the_bits_of_copied_rows(dtype):
    """A batch of consecutive rows of a C-contiguous X is read where it is, any other batch
    is copied into the workspace first: the same batches in either form train to the same
    bits (loss, accuracy, parameters, optimizer state)."""
    case = CASES[1]  # cross-entropy: the accuracy count too
    X, T = _data(case[0], case[2], dtype, n=23)
    perm = np.random.default_rng(1).permutation(X.shape[0])
    Xp, Tp = X[perm], T[perm]  # row i of X is row inv[i] of Xp
    inv = np.argsort(perm)
    runs = []
    for XX, TT, order in ((X, T, np.arange(X.shape[0])), (Xp, Tp, inv)):
        model = _model(case, dtype)
        o = model.optimizer_args(_optimizer("adam", {}))
        got = K.train_epoch(XX, TT, XX[:0, 0], order, model.kernel_args(),
                            model.allocate_workspace(5), o, 0.01, 0.0, 0.0, 5)
        runs.append((np.float64(got[0]).tobytes(), np.float64(got[1]).tobytes(),
                     model.params.tobytes(), model.optimizer_state.tobytes()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name,config", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_named_optimizer_steps_match_fit(name, config):
    case = CASES[0]
    X, T = _data(case[0], case[2], "float64", n=11)
    opt = _optimizer(name, config)
    reference = _model(case, "float64")
    reference.fit(X, T, epochs=4, batch_size=None, learning_rate=0.02, shuffle=False,
                  optimizer=opt, l2=1e-2, clip_norm=0.5)

    model = _model(case, "float64")
    state = opt.init_state(model.params.shape[0], model.dtype)
    hyper = {
        "sgd": lambda: K.sgd_hyper(0.9, 0.0, True),
        "adam": lambda: K.adam_hyper(0.8, 0.99, 1e-6, 0.0),
        "adamw": lambda: K.adam_hyper(0.9, 0.999, 1e-8, 0.1),
        "rmsprop": lambda: K.rmsprop_hyper(0.9, 1e-8, 0.5, True),
        "adagrad": lambda: K.adagrad_hyper(0.01, 1e-10),
    }[name]()
    np.testing.assert_array_equal(hyper, opt.hyper())
    user_full_batch_steps(X, T, model.kernel_args(), model.allocate_workspace(11), state,
                          hyper, K.OPTIMIZER_CODES[name], 4, 0.02, 1e-2, 0.5)
    np.testing.assert_allclose(model.params, reference.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state, reference.optimizer_state, rtol=1e-12, atol=1e-14)


def test_l2_and_norm_kernels():
    model = _model(CASES[0], "float64")
    k = model.kernel_args()
    k.grads[:] = 0.0

    @njit
    def penalty(k, l2):
        return K.add_l2(k.params, k.grads, l2, k.sizes, k.w_off)

    value = penalty(k, 0.5)
    W = np.concatenate([w.ravel() for w in model.weights])
    assert value == pytest.approx(0.25 * (W @ W), rel=1e-12)
    np.testing.assert_allclose(np.concatenate([g.ravel() for g in _views(model.grads, model)]),
                               0.5 * W, rtol=1e-15)
    assert K.grad_norm(k.grads) == pytest.approx(np.linalg.norm(k.grads), rel=1e-12)
    before = K.clip_grad_norm(k.grads, 0.1)
    assert before == pytest.approx(0.5 * np.linalg.norm(W), rel=1e-12)
    assert np.linalg.norm(k.grads) == pytest.approx(0.1, rel=1e-5)


def _views(flat, model):
    k = model.kernel_args()
    return [flat[k.w_off[p] : k.b_off[p]] for p in range(len(k.w_off))]


def test_optimizer_args_rejects_lbfgs():
    model = _model(CASES[0], "float64")
    with pytest.raises(ValueError, match="L-BFGS"):
        model.optimizer_args("lbfgs")


@njit
def user_weighted_l2_gradient(X, T, SW, k, ws, l2):
    value = K.loss_and_gradient_weighted(X, T, SW, k, ws)
    return value + K.add_l2(k.params, k.grads, l2, k.sizes, k.w_off)


@njit
def user_generic_step(k, state, kind, hyper, lr, l2, max_norm):
    before = K.grad_norm(k.grads)
    clipped_from = K.clip_grad_norm(k.grads, max_norm)
    K.optimizer_step(k.params, k.grads, state, kind, hyper, lr, 1, l2, k.sizes, k.w_off,
                     k.b_off)
    return before, clipped_from


@njit
def user_hypers():
    return (K.sgd_hyper(0.9, 0.1, False), K.adam_hyper(0.8, 0.9, 1e-7, 0.01),
            K.rmsprop_hyper(0.95, 1e-6, 0.3, True), K.adagrad_hyper(0.1, 1e-9))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[1]}")
def test_weighted_gradient_matches_facade(case, dtype):
    model = _model(case, dtype)
    X, T = _data(case[0], case[2], dtype)
    SW = np.random.default_rng(3).uniform(0.1, 3.0, X.shape[0]).astype(dtype)
    loss, grad = model.gradient(X, T, sample_weight=SW, l2=0.05)
    model.grads[:] = np.nan
    # same chunking as the facade (one chunk) for bitwise equality
    got = user_weighted_l2_gradient(X, T, SW, model.kernel_args(),
                                    model.allocate_workspace(X.shape[0]), 0.05)
    assert got == loss
    np.testing.assert_array_equal(model.grads, grad)


def test_generic_optimizer_step_norms_and_hypers_from_njit():
    from fastbp import optim

    sgd, adam, rms, ada = user_hypers()
    np.testing.assert_array_equal(sgd, optim.SGD(momentum=0.9, dampening=0.1).hyper())
    np.testing.assert_array_equal(adam, optim.AdamW(betas=(0.8, 0.9), eps=1e-7,
                                                    weight_decay=0.01).hyper())
    np.testing.assert_array_equal(rms, optim.RMSprop(alpha=0.95, eps=1e-6, momentum=0.3,
                                                     centered=True).hyper())
    np.testing.assert_array_equal(ada, optim.Adagrad(lr_decay=0.1, eps=1e-9).hyper())

    case = CASES[0]
    X, T = _data(case[0], case[2], "float64")
    model, reference = _model(case, "float64"), _model(case, "float64")
    # one Adam step with clipping and L2, through the generic kernel ...
    model.gradient(X, T)
    norm = np.linalg.norm(model.grads)
    state = np.zeros((K.OPT_STATE_ROWS[K.OPT_ADAM], model.params.size))
    before, clipped_from = user_generic_step(model.kernel_args(), state, K.OPT_ADAM, adam,
                                             0.01, 1e-3, 0.5 * norm)
    assert before == clipped_from == pytest.approx(norm, rel=1e-12)
    # ... equals one full-batch epoch of Model.fit with the same settings
    reference.fit(X, T, epochs=1, batch_size=None, learning_rate=0.01, shuffle=False,
                  optimizer=optim.AdamW(betas=(0.8, 0.9), eps=1e-7, weight_decay=0.01),
                  l2=1e-3, clip_norm=0.5 * norm)
    np.testing.assert_allclose(model.params, reference.params, rtol=1e-12, atol=1e-15)


def test_layer_block_views():
    model = _model(CASES[0], "float64")
    X, _ = _data(CASES[0][0], CASES[0][2], "float64", n=5)
    ws = model.allocate_workspace(8)
    k = model.kernel_args()

    @njit
    def hidden_of(X, k, ws):
        n = X.shape[0]
        K.layer_block(ws.act, k.sizes, ws.a_off, 0, n)[:, :] = X
        K.forward(k, ws, n)
        return K.layer_block(ws.act, k.sizes, ws.a_off, 1, n).copy()

    expected = np.tanh(X @ model.weights[0].T + model.biases[0])
    np.testing.assert_allclose(hidden_of(X, k, ws), expected, rtol=1e-12, atol=1e-14)



def test_blocks_outside_the_workspace_raise():
    model = _model(CASES[0], "float64")
    k = model.kernel_args()
    ws = model.allocate_workspace(4)
    out = K.output_block(ws.act, k.sizes, ws.a_off, 4)
    assert out.shape == (4, k.sizes[-1]) and out.flags.c_contiguous
    out[:] = 7.0  # a view: writes reach the workspace
    assert np.all(ws.act[ws.a_off[-1]:] == 7.0)
    with pytest.raises(ValueError, match="outside its buffer"):
        K.output_block(ws.act, k.sizes, ws.a_off, 5)
    with pytest.raises(ValueError, match="outside its buffer"):
        K.layer_block(ws.act, k.sizes, ws.a_off, 0, -1)

def test_train_epoch_with_dropout_matches_fit():
    sizes, act, loss, out = CASES[0]
    X, T = _data(sizes, loss, "float32", n=17)

    def new():
        return fastbp.Model(sizes, activation=act, loss=loss, dtype="float32", seed=4,
                            dropout=[0.3, 0.1])

    reference = new()
    reference.fit(X, T, epochs=2, batch_size=4, learning_rate=0.05, shuffle=False,
                  optimizer="adam")
    model = new()
    k = model.kernel_args()
    assert list(k.drop_rates) == pytest.approx([0.3, 0.1])
    got = user_train_epochs_opt(X, T, np.zeros(0, np.float32), k, model.allocate_workspace(4),
                                model.optimizer_args("adam"), 2, 4, 0.05, 0.0, 0.0)
    assert got == pytest.approx(reference.history["loss"][-1], rel=1e-6)
    np.testing.assert_array_equal(model.params, reference.params)


def test_bundles_that_do_not_fit_raise():
    """Bundles that do not fit together raise ValueError before any loop reads or writes
    outside a buffer."""
    model = _model(CASES[0], "float64")
    X, T = _data(CASES[0][0], CASES[0][2], "float64", n=9)
    k, ws = model.kernel_args(), model.allocate_workspace(4)
    out = np.empty((9, 2))
    other = fastbp.Model([3, 5, 2], dtype="float64", seed=0).allocate_workspace(4)
    with pytest.raises(ValueError, match="same layers"):
        K.predict(X, k, other, out)  # a workspace of another network
    with pytest.raises(ValueError, match="act_codes"):
        K.loss(X, T, k._replace(act_codes=k.act_codes[:1]), ws)
    with pytest.raises(ValueError, match="fewer rows"):
        K.predict(X, k, ws._replace(capacity=5), out)  # claims more rows than it holds
    with pytest.raises(ValueError, match="grads"):
        K.loss_and_gradient(X, T, k._replace(grads=k.grads[:-1]), ws)
    with pytest.raises(ValueError, match="fewer rows"):
        K.forward(k, ws, 5)
    with pytest.raises(ValueError, match="batch_size"):
        K.train_epoch_sgd(X, T, np.arange(9), k, ws, 5, 0.1)
    with pytest.raises(ValueError, match="t_buf"):
        K.train_epoch(X, T, X[:0, 0], np.arange(9), k, ws._replace(t_buf=ws.t_buf[:3]),
                      model.optimizer_args(), 0.1, 0.0, 0.0, 4)
    np.testing.assert_array_equal(k.params, _model(CASES[0], "float64").params)  # untouched
