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

Run: ``python examples/embedded_online_learning.py [n_steps]``
"""

import sys
import time

import numpy as np
from numba import njit

import fastbp
from fastbp import kernels as K

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
        loss = K.train_step(
            x_row, y_row, k.params, k.grads, k.sizes, k.w_off, k.b_off, k.act_codes,
            k.loss_code, learning_rate, ws.act, ws.delta, ws.a_off, ws.z_out,
        )
        errors[t] = np.sqrt(2.0 * loss)


def simulate_python(n_steps, model, learning_rate):
    """The same predict-then-learn loop, calling the ``Model`` facade once per sample."""
    errors = np.empty(n_steps)
    x_row = np.empty((1, 1), dtype=model.dtype)
    y_row = np.empty((1, 1), dtype=model.dtype)
    for t in range(n_steps):
        x, y = sensor(t)
        x_row[0, 0] = x
        y_row[0, 0] = y
        model.fit(x_row, y_row, epochs=1, batch_size=1, learning_rate=learning_rate,
                  shuffle=False)
        errors[t] = np.sqrt(2.0 * model.history["loss"][-1])
    return errors


def main(n_steps=50_000):
    layers, lr = [1, 16, 16, 1], 0.02

    def new_model():
        return fastbp.Model(layers, activation="tanh", dtype="float64", seed=0)

    # warm up: compile the njit loop (and the kernels it calls) before timing
    warm = new_model()
    simulate(10, warm.kernel_args(), warm.allocate_workspace(1), lr, np.empty(10))
    simulate_python(10, new_model(), lr)

    embedded = new_model()
    errors = np.empty(n_steps)
    t0 = time.perf_counter()
    simulate(n_steps, embedded.kernel_args(), embedded.allocate_workspace(1), lr, errors)
    t_njit = time.perf_counter() - t0

    facade = new_model()
    t0 = time.perf_counter()
    errors_py = simulate_python(n_steps, facade, lr)
    t_py = time.perf_counter() - t0

    window = n_steps // 10
    print(f"online regression of a drifting signal, MLP {layers}, {n_steps} steps, 1 sample each")
    print("mean |error| per tenth of the stream (it keeps tracking the drift):")
    print("  " + " ".join(f"{errors[i:i + window].mean():.3f}" for i in range(0, n_steps, window)))
    same = np.array_equal(embedded.params, facade.params) and np.array_equal(errors, errors_py)
    print(f"embedded @njit loop and Python loop give identical results: {same}")
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
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
