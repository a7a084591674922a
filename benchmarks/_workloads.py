"""Workload definitions and one runner per system (fastbp, PyTorch, JAX, scikit-learn).

Shared by the pytest-benchmark profiles (``bench_*.py``) and ``report.py``. Every runner
trains the same network (same initial weights, copied from a fastbp ``Model``) on the same
synthetic data with one epoch of plain minibatch SGD, lr 0.01, no shuffling, so their losses
can be compared with each other as a correctness check.

Workloads (float32; ReLU hidden layers; softmax + cross-entropy, or identity + squared error
for one output):

| name        | layers             | batch | samples |
|-------------|--------------------|-------|---------|
| tiny_online | 16-32-1            | 1     | 20,000  |
| small       | 64-32-10           | 32    | 50,000  |
| mnist       | 784-256-128-10     | 128   | 60,000  |
| wide        | 1024-2048-2048-10  | 256   | 16,384  |
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]
    batch: int
    samples: int

    @property
    def regression(self) -> bool:
        return self.sizes[-1] == 1

    @property
    def loss(self) -> str:
        return "squared_error" if self.regression else "cross_entropy"

    def scaled(self, samples: int) -> Workload:
        """The same network and batch size on fewer samples (plain-test stand-in)."""
        return Workload(self.name, self.sizes, self.batch, min(samples, self.samples))

    def shrunk(self) -> Workload:
        """A small stand-in (narrower layers, few steps) for running as a plain test."""
        sizes = tuple(min(s, 96) for s in self.sizes[:-1]) + (self.sizes[-1],)
        return Workload(self.name, sizes, min(self.batch, 32), 4 * min(self.batch, 32) + 3)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("tiny_online", (16, 32, 1), 1, 20_000),
        Workload("small", (64, 32, 10), 32, 50_000),
        Workload("mnist", (784, 256, 128, 10), 128, 60_000),
        Workload("wide", (1024, 2048, 2048, 10), 256, 16_384),
    )
}


def training_macs_per_sample(sizes) -> int:
    """Multiply-adds of one training sample: forward, backward deltas (not into the input
    layer) and weight gradients."""
    fwd = sum(sizes[p] * sizes[p + 1] for p in range(len(sizes) - 1))
    dlt = sum(sizes[p] * sizes[p + 1] for p in range(1, len(sizes) - 1))
    return 2 * fwd + dlt


def training_flops_per_sample(sizes) -> int:
    return 2 * training_macs_per_sample(sizes)


def make_data(w: Workload, seed: int = 0):
    """Synthetic Gaussian inputs; Gaussian targets (regression) or uniform labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((w.samples, w.sizes[0]), dtype=np.float32)
    if w.regression:
        y = rng.standard_normal((w.samples, 1), dtype=np.float32)
    else:
        y = rng.integers(0, w.sizes[-1], w.samples).astype(np.int64)
    return X, y


def one_hot(y, m, dtype=np.float32):
    T = np.zeros((y.shape[0], m), dtype=dtype)
    T[np.arange(y.shape[0]), y] = 1
    return T


def initial_weights(w: Workload, seed: int = 0):
    """fastbp's initial weights ``[(W (n_out, n_in), b (n_out,)), ...]`` (copies)."""
    import fastbp

    m = fastbp.Model(list(w.sizes), loss=w.loss, seed=seed)
    return [(W.copy(), b.copy()) for W, b in zip(m.weights, m.biases)]


def available(system: str) -> bool:
    mod = {"fastbp": "fastbp", "torch": "torch", "jax": "jax", "sklearn": "sklearn"}[system]
    return importlib.util.find_spec(mod) is not None


# ----------------------------------------------------------------------------------- fastbp
class FastbpRunner:
    system = "fastbp"

    def __init__(self, w: Workload, X, y, seed: int = 0):
        import fastbp
        from fastbp.kernels import _network

        self._net = _network
        self.w, self.X, self.y = w, X, y
        self.model = fastbp.Model(list(w.sizes), loss=w.loss, seed=seed)
        self.initial = self.model.params.copy()
        m = self.model
        self.ws = m.network.workspace(w.batch)
        self._T = (
            np.ascontiguousarray(y, dtype=np.float32) if w.regression
            else one_hot(y, w.sizes[-1])
        )
        self.nb = min(w.batch, X.shape[0])
        ws = self.ws
        L = len(w.sizes) - 1
        # one batch loaded into the workspace for the forward/backward profiles
        a0 = ws.act[ws.a_off[0] : ws.a_off[0] + self.nb * w.sizes[0]]
        a0[:] = X[: self.nb].ravel()
        self._t = self._T[: self.nb]
        self._L = L
        self._k, self._wsa = m.network.args(), ws.arrays(dropout=False)  # the kernels' bundles

    def reset(self):
        self.model.params[:] = self.initial

    def epoch(self) -> float:
        import warnings

        import fastbp

        with warnings.catch_warnings():
            # random labels: "no progress" is the truth here, and not what is measured
            warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
            self.model.fit(self.X, self.y, epochs=1, batch_size=self.w.batch,
                           learning_rate=LEARNING_RATE, shuffle=False)
        return self.model.history.metrics["loss"][-1]

    def predict(self, X):
        return self.model.predict(X)

    def forward(self):
        ws = self.ws
        self._net.forward(self._k, self._wsa, self.nb)
        n_out = self.w.sizes[-1]
        off = ws.a_off[self._L]
        return ws.act[off : off + self.nb * n_out].reshape(self.nb, n_out)

    def backward(self):
        """Output delta and the backward sweep of the batch last run through ``forward``."""
        m, ws, n = self.model, self.ws, self.nb
        n_out = self.w.sizes[-1]
        off = ws.a_off[self._L]
        loss = self._net.output_delta(
            ws.z_out[: n * n_out].reshape(n, n_out),
            ws.act[off : off + n * n_out].reshape(n, n_out),
            self._t, m.network.loss_code, m.network.act_codes[-1], 1.0 / n,
            ws.delta[off : off + n * n_out].reshape(n, n_out),
        )
        self._net.backward(self._k, self._wsa, n, False)
        return loss, m.grads

    def forward_backward(self):
        """Forward pass, output delta and backward sweep of one batch: what the peers'
        backward profiles time (their autograd needs its forward pass)."""
        self.forward()
        return self.backward()


# ------------------------------------------------------------------------------------ torch
class TorchRunner:
    system = "torch"

    def __init__(self, w: Workload, X, y, seed: int = 0, threads: int | None = None):
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        self.torch, self.w = torch, w
        layers = []
        init = initial_weights(w, seed)
        for p, (W, b) in enumerate(init):
            lin = torch.nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if p < len(init) - 1:
                layers.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers)
        self.initial = [p.detach().clone() for p in self.net.parameters()]
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LEARNING_RATE)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)
        self.nb = min(w.batch, X.shape[0])

    def reset(self):
        with self.torch.no_grad():
            for p, p0 in zip(self.net.parameters(), self.initial):
                p.copy_(p0)

    def _loss(self, out, t):
        F = self.torch.nn.functional
        if self.w.regression:
            return 0.5 * ((out - t) ** 2).sum(1).mean()
        return F.cross_entropy(out, t)

    def epoch(self) -> float:
        X, y, bs, n = self.X, self.y, self.w.batch, self.X.shape[0]
        total = 0.0
        losses = []
        for s in range(0, n, bs):
            xb, tb = X[s : s + bs], y[s : s + bs]
            loss = self._loss(self.net(xb), tb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses.append(loss.detach() * xb.shape[0])
        total = float(self.torch.stack(losses).sum()) / n
        return total

    def predict(self, X):
        torch = self.torch
        with torch.inference_mode():
            out = self.net(torch.from_numpy(X))
            if not self.w.regression:
                out = torch.softmax(out, 1)
        return out.numpy()

    def forward(self):
        with self.torch.inference_mode():
            return self.net(self.X[: self.nb])

    def backward(self):
        """Forward with autograd, then the backward sweep (the forward is included)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self._loss(self.net(self.X[: self.nb]), self.y[: self.nb])
        loss.backward()
        return float(loss.detach())


# -------------------------------------------------------------------------------------- jax
class JaxRunner:
    system = "jax"

    def __init__(self, w: Workload, X, y, seed: int = 0):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.w = jax, jnp, w
        self.params0 = [(jnp.asarray(W), jnp.asarray(b)) for W, b in initial_weights(w, seed)]
        self.params = self.params0
        n, bs = X.shape[0], w.batch
        self.nb = min(bs, n)
        nfull = n // bs
        T = y.astype(np.float32) if w.regression else one_hot(y, w.sizes[-1])
        self.Xf = jnp.asarray(X[: nfull * bs].reshape(nfull, bs, -1))
        self.Tf = jnp.asarray(T[: nfull * bs].reshape(nfull, bs, -1))
        self.Xr = jnp.asarray(X[nfull * bs :])
        self.Tr = jnp.asarray(T[nfull * bs :])
        self.X, self.T = jnp.asarray(X), jnp.asarray(T)
        regression = w.regression

        def net(params, x):
            for W, b in params[:-1]:
                x = jax.nn.relu(x @ W.T + b)
            W, b = params[-1]
            return x @ W.T + b

        def loss_fn(params, x, t):
            out = net(params, x)
            if regression:
                return 0.5 * jnp.mean(jnp.sum((out - t) ** 2, axis=1))
            return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(out), axis=1))

        def step(params, x, t):
            loss, g = jax.value_and_grad(loss_fn)(params, x, t)
            params = jax.tree_util.tree_map(lambda p, q: p - LEARNING_RATE * q, params, g)
            return params, loss

        def epoch(params, Xf, Tf, Xr, Tr):
            def body(p, xt):
                p, loss = step(p, xt[0], xt[1])
                return p, loss

            params, losses = jax.lax.scan(body, params, (Xf, Tf))
            total = jnp.sum(losses) * Xf.shape[1]
            if Xr.shape[0]:
                params, lr_ = step(params, Xr, Tr)
                total = total + lr_ * Xr.shape[0]
            return params, total / (Xf.shape[0] * Xf.shape[1] + Xr.shape[0])

        def vloss(params, x, t):
            """One sample as vectors: XLA's fastest form for online learning (batch 1),
            about 1.3x the (1, n) matrix form; the loss is the same."""
            for W, b in params[:-1]:
                x = jax.nn.relu(W @ x + b)
            W, b = params[-1]
            out = W @ x + b
            if regression:
                return 0.5 * jnp.sum((out - t) ** 2)
            return -jnp.sum(t * jax.nn.log_softmax(out))

        def epoch_online(params, X, T):
            def body(p, xt):
                loss, g = jax.value_and_grad(vloss)(p, xt[0], xt[1])
                return jax.tree_util.tree_map(lambda a, b: a - LEARNING_RATE * b, p, g), loss

            params, losses = jax.lax.scan(body, params, (X, T))
            return params, jnp.mean(losses)

        def predict(params, x):
            out = net(params, x)
            return out if regression else jax.nn.softmax(out, axis=1)

        self._epoch = jax.jit(epoch_online if bs == 1 else epoch)
        self._online = bs == 1
        self._predict = jax.jit(predict)
        self._forward = jax.jit(net)
        self._grad = jax.jit(jax.value_and_grad(loss_fn))

    def reset(self):
        self.params = self.params0

    def epoch(self) -> float:
        if self._online:
            self.params, loss = self._epoch(self.params, self.X, self.T)
        else:
            self.params, loss = self._epoch(self.params, self.Xf, self.Tf, self.Xr, self.Tr)
        return float(loss)

    def predict(self, X):
        return np.asarray(self._predict(self.params, self.jnp.asarray(X)).block_until_ready())

    def forward(self):
        return self._forward(self.params, self.X[: self.nb]).block_until_ready()

    def backward(self):
        loss, g = self._grad(self.params, self.X[: self.nb], self.T[: self.nb])
        self.jax.block_until_ready(g)
        return float(loss)


# ---------------------------------------------------------------------------------- sklearn
class SklearnRunner:
    system = "sklearn"

    def __init__(self, w: Workload, X, y, seed: int = 0):
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.w, self.X, self.y = w, X, (y.ravel() if w.regression else y)
        cls = MLPRegressor if w.regression else MLPClassifier
        self.init = initial_weights(w, seed)
        self.est = cls(
            hidden_layer_sizes=w.sizes[1:-1], activation="relu", solver="sgd", alpha=0.0,
            batch_size=w.batch, learning_rate_init=LEARNING_RATE, momentum=0.0,
            nesterovs_momentum=False, shuffle=False, max_iter=1, random_state=seed,
        )
        self.reset()

    def reset(self):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # (2 rows are fewer than a batch: scikit-learn says it clips the batch size)
            warnings.filterwarnings("ignore", "Got `batch_size`", UserWarning)
            # build the estimator's structures on 2 rows, then load the shared weights
            cls_kw = {} if self.w.regression else {"classes": np.arange(self.w.sizes[-1])}
            self.est.partial_fit(self.X[:2], self.y[:2], **cls_kw)
        self.est.coefs_ = [W.T.copy() for W, _ in self.init]
        self.est.intercepts_ = [b.copy() for _, b in self.init]

    def epoch(self) -> float:
        self.est.partial_fit(self.X, self.y)
        return float(self.est.loss_)

    def predict(self, X):
        if self.w.regression:
            return self.est.predict(X).reshape(-1, 1)
        return self.est.predict_proba(X)


RUNNERS = {"fastbp": FastbpRunner, "torch": TorchRunner, "jax": JaxRunner, "sklearn": SklearnRunner}


# ------------------------------------------------------------------ NumPy float64 reference
def reference_forward(init, X, regression):
    """Output activations (softmax probabilities or identity) of ``X`` in float64."""
    a = np.asarray(X, dtype=np.float64)
    for p, (W, b) in enumerate(init):
        z = a @ np.asarray(W, np.float64).T + b
        a = np.maximum(z, 0) if p < len(init) - 1 else z
    if regression:
        return a
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def reference_loss_and_grad(init, X, T, regression):
    """Mean loss of the batch and the gradient ``[(dW, db), ...]`` in float64."""
    acts = [np.asarray(X, np.float64)]
    for p, (W, b) in enumerate(init):
        z = acts[-1] @ np.asarray(W, np.float64).T + b
        acts.append(np.maximum(z, 0) if p < len(init) - 1 else z)
    out, n = acts[-1], X.shape[0]
    if regression:
        loss = 0.5 * np.sum((out - T) ** 2) / n
        delta = (out - T) / n
    else:
        m = out.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(out - m).sum(1))
        loss = np.sum(T * (lse[:, None] - out)) / n
        delta = (np.exp(out - lse[:, None]) - T) / n
    grads = [None] * len(init)
    for p in range(len(init) - 1, -1, -1):
        grads[p] = (delta.T @ acts[p], delta.sum(0))
        if p > 0:
            delta = (delta @ np.asarray(init[p][0], np.float64)) * (acts[p] > 0)
    return loss, grads


def reference_epoch(init, X, y, w: Workload):
    """One epoch of plain minibatch SGD in float64: (mean loss before each step, weights)."""
    T = y.astype(np.float64) if w.regression else one_hot(y, w.sizes[-1], np.float64)
    params = [(np.asarray(W, np.float64).copy(), np.asarray(b, np.float64).copy()) for W, b in init]
    total, n = 0.0, X.shape[0]
    for s in range(0, n, w.batch):
        xb, tb = X[s : s + w.batch], T[s : s + w.batch]
        loss, grads = reference_loss_and_grad(params, xb, tb, w.regression)
        total += loss * xb.shape[0]
        params = [(W - LEARNING_RATE * gW, b - LEARNING_RATE * gb)
                  for (W, b), (gW, gb) in zip(params, grads)]
    return total / n, params
