"""Online learning of a drifting signal, written entirely in ``@njit`` code.

A sensor produces one reading ``y_t = f_t(x_t)`` per time step, where the curve ``f_t`` drifts
slowly (its amplitude, frequency and offset change with ``t``). A small MLP learns it online:
at every step it predicts ``y_t`` from ``x_t``, records the error, then takes one SGD step on
that single sample. The whole simulation — signal generation, prediction, training — runs
inside one ``@njit`` function that calls the public kernels of ``fastbp.kernels``, so no
Python runs per step.

The same work is then done from a Python loop that calls ``Model.fit`` once per sample (one
sample, ``batch_size=1``), and the two are compared: same final parameters, bit for bit, and
the speed-up of the embedded loop.

With ``--adam`` the steps use Adam instead of plain SGD: the embedded loop calls
``fastbp.kernels.loss_and_gradient`` and ``fastbp.kernels.adam_step`` on the model's own
optimizer state (``Model.optimizer_args``), the Python loop calls
``Model.fit(..., optimizer=fastbp.optim.Adam())``.

Run: ``python examples/embedded_online_learning.py [n_steps] [--adam]``
"""

import argparse
import time

import numpy as np
from numba import njit

import fastbp
from fastbp import kernels as K
from fastbp.optim import Adam

GOLDEN = 0.6180339887498949


@njit(cache=True)
def curve(t, x):
    """The drifting curve ``f_t(x)``: amplitude, frequency and offset change slowly with t."""
    drift = t / 20_000.0
    amplitude = 1.0 + 0.5 * np.sin(drift)
    frequency = 2.0 + np.cos(0.7 * drift)
    offset = 0.3 * np.sin(1.3 * drift)
    return amplitude * np.sin(frequency * x) + offset


@njit(cache=True)
def sensor(t):
    """Input ``x_t`` (a low-discrepancy sequence in [-1, 1]) and the reading ``y_t``."""
    x = 2.0 * ((t * GOLDEN) % 1.0) - 1.0
    return x, curve(t, x)


@njit(cache=True)
def simulate(n_steps, k, ws, learning_rate, errors):
    """Predict-then-learn loop over ``n_steps`` sensor readings; ``errors[t] = |y_hat - y|``."""
    x_row = np.empty((1, 1), dtype=k.params.dtype)
    y_row = np.empty((1, 1), dtype=k.params.dtype)
    for t in range(n_steps):
        x, y = sensor(t)
        x_row[0, 0] = x
        y_row[0, 0] = y
        # train_step runs forward (the prediction), the loss, backward and the SGD update;
        # it returns the loss *before* the update, 1/2 (y_hat - y)^2
        loss = K.train_step(x_row, y_row, k, ws, learning_rate)
        errors[t] = np.sqrt(2.0 * loss)


@njit(cache=True)
def simulate_adam(n_steps, k, ws, o, learning_rate, errors):
    """As ``simulate``, with Adam steps on the model's optimizer state ``o``."""
    x_row = np.empty((1, 1), dtype=k.params.dtype)
    y_row = np.empty((1, 1), dtype=k.params.dtype)
    for t in range(n_steps):
        x, y = sensor(t)
        x_row[0, 0] = x
        y_row[0, 0] = y
        loss = K.loss_and_gradient(x_row, y_row, k, ws)
        o.counters[0] += 1  # Adam's step number t, kept by the model
        K.adam_step(k.params, k.grads, o.state, o.hyper, learning_rate, o.counters[0], 0.0,
                    k.sizes, k.w_off, k.b_off)
        errors[t] = np.sqrt(2.0 * loss)


def simulate_python(n_steps, model, learning_rate, optimizer=None):
    """The same predict-then-learn loop, calling the ``Model`` facade once per sample."""
    errors = np.empty(n_steps)
    x_row = np.empty((1, 1), dtype=model.dtype)
    y_row = np.empty((1, 1), dtype=model.dtype)
    for t in range(n_steps):
        x, y = sensor(t)
        x_row[0, 0] = x
        y_row[0, 0] = y
        model.fit(x_row, y_row, epochs=1, batch_size=1, learning_rate=learning_rate,
                  shuffle=False, optimizer=optimizer)
        errors[t] = np.sqrt(2.0 * model.history.metrics["loss"][-1])  # no copy
    return errors


def main(n_steps=50_000, adam=False):
    layers, lr = [1, 16, 16, 1], (0.002 if adam else 0.02)
    optimizer = Adam() if adam else None

    def new_model():
        return fastbp.Model(layers, activation="tanh", dtype="float64", seed=0)

    def run_embedded(model, steps, errors):
        k, ws = model.kernel_args(), model.allocate_workspace(1)
        if adam:
            simulate_adam(steps, k, ws, model.optimizer_args(optimizer), lr, errors)
        else:
            simulate(steps, k, ws, lr, errors)

    # warm up: compile the njit loop (and the kernels it calls) before timing
    run_embedded(new_model(), 10, np.empty(10))
    simulate_python(10, new_model(), lr, optimizer)

    embedded = new_model()
    errors = np.empty(n_steps)
    t0 = time.perf_counter()
    run_embedded(embedded, n_steps, errors)
    t_njit = time.perf_counter() - t0

    facade = new_model()
    t0 = time.perf_counter()
    errors_py = simulate_python(n_steps, facade, lr, optimizer)
    t_py = time.perf_counter() - t0

    window = n_steps // 10
    print(f"online regression of a drifting signal, MLP {layers}, {n_steps} steps, 1 sample "
          f"each, {'Adam' if adam else 'SGD'} (lr {lr})")
    print("mean |error| per tenth of the stream (it keeps tracking the drift):")
    print("  " + " ".join(f"{errors[i:i + window].mean():.3f}" for i in range(0, n_steps, window)))
    same = np.array_equal(embedded.params, facade.params) and np.array_equal(errors, errors_py)
    diff = np.abs(embedded.params - facade.params).max()
    print(f"embedded @njit loop and Python loop give identical results: {same} "
          f"(largest weight difference {diff:.1e})")
    for name, seconds in [("@njit loop calling fastbp.kernels", t_njit),
                          ("Python loop calling Model.fit", t_py)]:
        print(f"{name:34s}: {seconds:8.3f} s ({1e6 * seconds / n_steps:7.2f} us/step)")
    print(f"speed-up: {t_py / t_njit:.1f}x")
    # the model sees what the kernels did: predict with the facade after embedded training
    x_test = np.linspace(-1, 1, 5)
    print(f"at x = {np.round(x_test, 2)}:")
    print("  current curve f_t(x)            :", np.round([curve(n_steps, x) for x in x_test], 3))
    print("  Model.predict after @njit steps :",
          np.round(embedded.predict(x_test.reshape(-1, 1)).ravel(), 3))
    return t_py / t_njit


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_steps", type=int, nargs="?", default=50_000)
    parser.add_argument("--adam", action="store_true", help="Adam steps instead of SGD")
    args = parser.parse_args()
    main(args.n_steps, adam=args.adam)
