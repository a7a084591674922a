"""Training features on scikit-learn's digits: validation, early stopping, a learning-rate
schedule, save/load and resumption, then the time per epoch of every optimizer.

Run:  python examples/train_features.py [--epochs 60] [--no-timings]

On a machine shared with other busy processes, parallel regions wait for descheduled
threads; ``NUMBA_NUM_THREADS=1 python examples/train_features.py`` gives stable timings
(results are bitwise the same for any thread count).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastbp
from fastbp.optim import SGD, Adam


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--no-timings", action="store_true", help="skip the optimizer timings")
    args = ap.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    model = fastbp.Model([64, 64, 10], activation="relu", loss="cross_entropy", seed=0,
                         dropout=0.1)
    stopper = fastbp.EarlyStopping(patience=8, min_delta=1e-4, restore_best=True)
    t0 = time.perf_counter()
    history = model.fit(
        X_train, y_train, epochs=args.epochs, batch_size=32, learning_rate=2e-3,
        optimizer=Adam(), schedule=fastbp.schedules.CosineAnnealing(T_max=args.epochs),
        l2=1e-4, validation_split=0.15, early_stopping=stopper, verbose=True,
    )
    wall = time.perf_counter() - t0
    print(f"trained {history.epochs} epochs in {wall:.2f} s (the first call includes Numba "
          f"compilation); median epoch {1e3 * np.median(history['time']):.2f} ms")
    print(f"best epoch {stopper.best_epoch}: val_loss {stopper.best:.4f}, "
          f"val_accuracy {history['val_accuracy'][stopper.best_epoch]:.3f}; "
          f"stopped early: {stopper.stopped_epoch is not None}")
    print("lr of the first and last epochs:", history["lr"][0], history["lr"][-1])
    print("test:", model.evaluate(X_test, y_test))

    # save, load (bit-exact), and resume training where it stopped
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.npz")
        model.save(path)
        loaded = fastbp.Model.load(path)
        assert np.array_equal(loaded.params, model.params)
        assert np.array_equal(loaded.predict(X_test), model.predict(X_test))
        print(f"saved {os.path.getsize(path)} bytes; reloaded model test accuracy "
              f"{loaded.evaluate(X_test, y_test)['accuracy']:.3f}")
        loaded.fit(X_train, y_train, epochs=3, learning_rate=2e-3)  # same optimizer/schedule
        print(f"after 3 more epochs: test accuracy "
              f"{loaded.evaluate(X_test, y_test)['accuracy']:.3f}, "
              f"Adam step {loaded.optimizer_steps}")

    if not args.no_timings:
        print("\ntime per epoch on digits (1347 rows, [64, 64, 10], batch 32; 20 epochs after "
              "a warm-up; the minimum is the least disturbed by other processes):")
        optimizers = {
            "sgd": SGD(), "sgd momentum": SGD(momentum=0.9), "nesterov": SGD(momentum=0.9,
            nesterov=True), "adam": "adam", "adamw": "adamw", "rmsprop": "rmsprop",
            "adagrad": "adagrad", "lbfgs (1 iteration)": "lbfgs",
        }
        for name, opt in optimizers.items():
            m = fastbp.Model([64, 64, 10], activation="relu", loss="cross_entropy", seed=0)
            m.fit(X_train, y_train, epochs=1, learning_rate=1e-2, optimizer=opt)  # warm-up
            h = m.fit(X_train, y_train, epochs=20, learning_rate=1e-2, optimizer=opt)
            t = 1e3 * np.array(h["time"][-20:])
            acc = m.evaluate(X_test, y_test)["accuracy"]
            print(f"  {name:20s} min {t.min():7.3f} ms, median {np.median(t):7.3f} ms per epoch"
                  f"   (test accuracy after {h.epochs} epochs {acc:.3f})")


if __name__ == "__main__":
    main()
