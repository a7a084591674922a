"""Train a 64-64-10 MLP on scikit-learn's handwritten digits and report accuracy and time.

Run:  python examples/digits.py [--epochs 30] [--batch-size 32] [--lr 0.1] [--dtype float32]
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastbp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )

    def new_model():
        return fastbp.Model([64, args.hidden, 10], activation="relu", loss="cross_entropy",
                            dtype=args.dtype, seed=args.seed)

    # first call compiles the kernels (or loads them from Numba's on-disk cache)
    t0 = time.perf_counter()
    new_model().fit(X_train[:64], y_train[:64], epochs=1, batch_size=args.batch_size)
    compile_s = time.perf_counter() - t0

    model = new_model()
    t0 = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.lr)
    train_s = time.perf_counter() - t0
    acc = float((model.predict(X_test).argmax(axis=1) == y_test).mean())

    print(f"data: {len(X_train)} train / {len(X_test)} test samples, 64 features, 10 classes")
    print(f"model: {model}")
    print(f"compile/load of kernels: {compile_s:.2f} s (first call only)")
    print(f"training: {args.epochs} epochs in {train_s * 1e3:.1f} ms, "
          f"median epoch {np.median(history['time']) * 1e3:.2f} ms, "
          f"final training loss {history['loss'][-1]:.4f}")
    print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
