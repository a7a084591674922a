"""Train on a file larger than the memory the process is given.

1. Writes a data set to ``.npy`` files a block at a time (default 2,000,000 rows x 64
   float32 features, 0.5 GB, and int64 labels of 10 classes), never holding more than a
   block in memory.
2. Starts fastbp (a tiny fit compiles the kernels, or loads them from the cache), then
   limits the process's private memory (``RLIMIT_DATA``, Linux) to what it holds now plus
   ``--budget`` MiB (default 64). Loading the file whole now fails with ``MemoryError``
   (shown). A read-only memory map is not private memory: its pages come from the page
   cache, which the kernel reads in and drops as it needs.
3. Opens the files as read-only memory maps, computes the features' mean and standard
   deviation in one streaming pass, and trains with ``partial_fit`` over chunks of 10,000
   rows in a shuffled chunk order (each chunk also shuffled), saving a checkpoint after
   every pass over the data (``Model.save``: atomic).
4. Reports the accuracy on the held-out last 10% of the rows, predicted chunk by chunk,
   and the private memory the process used against its limit.

Run:  python examples/out_of_core.py [--rows 2000000] [--budget 64] [--epochs 3]
          [--dir FOLDER] [--keep]

The data files go to ``--dir`` (default: a temporary folder, removed at the end unless
``--keep``). With the defaults the data (504 MiB) are larger than the process's whole
private-memory limit (about 320 MiB, of which Python, NumPy and Numba's runtime hold about
255 MiB), and one pass over them takes about 3 s on the project's 2-core test VM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import fastbp

CLASSES = 10


def private_memory() -> int | None:
    """The process's private data memory in bytes (``VmData``, what ``RLIMIT_DATA``
    limits), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def write_data(folder: str, rows: int, features: int, seed: int = 0) -> tuple[str, str]:
    """Features on very different scales (as raw tabular data) and labels from a random
    nonlinear teacher, written 100,000 rows at a time."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-2, 3, features)
    offset = rng.normal(0, 5, features) * scale
    teacher = rng.standard_normal((features, CLASSES))
    x_path, y_path = os.path.join(folder, "X.npy"), os.path.join(folder, "y.npy")
    X = np.lib.format.open_memmap(x_path, "w+", np.float32, (rows, features))
    y = np.lib.format.open_memmap(y_path, "w+", np.int64, (rows,))
    for i in range(0, rows, 100_000):
        z = rng.standard_normal((min(100_000, rows - i), features))
        X[i:i + len(z)] = z * scale + offset
        y[i:i + len(z)] = np.argmax(np.tanh(z) @ teacher + 0.3 * z[:, :CLASSES], axis=1)
    X.flush()
    y.flush()
    del X, y
    return x_path, y_path


def limit_private_memory(budget: int) -> int | None:
    """Limit private memory to what the process holds now plus ``budget`` bytes; returns
    the limit (None where it cannot be set)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    held = private_memory()
    if held is None or not sys.platform.startswith("linux"):
        return None  # RLIMIT_DATA counts file mappings elsewhere (or nothing)
    limit = held + budget
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(
        resource.RLIMIT_DATA)[1]))
    return limit


def feature_stats(X, train_rows: int, chunk: int):
    """Per-feature mean and standard deviation of the training rows, in one pass: float64
    sums of each chunk by ``einsum``, which makes no float64 copy of the chunk."""
    s1, s2 = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for i in range(0, train_rows, chunk):
        block = X[i:min(i + chunk, train_rows)]
        s1 += np.einsum("ij->j", block, dtype=np.float64)
        s2 += np.einsum("ij,ij->j", block, block, dtype=np.float64)
    mean = s1 / train_rows
    std = np.sqrt(np.maximum(s2 / train_rows - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-12).astype(np.float32)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--budget", type=float, default=64, help="MiB of private memory on top "
                    "of what the process holds after start-up")
    ap.add_argument("--epochs", type=int, default=3, help="passes over the data")
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--dir", default=None, help="folder for the data files")
    ap.add_argument("--keep", action="store_true", help="keep the data files")
    args = ap.parse_args(argv)

    folder = args.dir or tempfile.mkdtemp(prefix="fastbp-out-of-core-")
    os.makedirs(folder, exist_ok=True)
    try:
        t0 = time.perf_counter()
        x_path, y_path = write_data(folder, args.rows, args.features)
        size = os.path.getsize(x_path) + os.path.getsize(y_path)
        print(f"wrote {args.rows:,} rows x {args.features} features ({size / 2**20:.0f} MiB) "
              f"to {folder} in {time.perf_counter() - t0:.1f} s")

        sizes = [args.features, 128, 64, CLASSES]
        model = fastbp.Model(sizes, activation="relu", loss="cross_entropy", seed=0)
        warm = fastbp.Model(sizes, loss="cross_entropy", seed=0)  # compile before the limit
        warm.fit(np.zeros((4, args.features), np.float32), np.arange(4), epochs=1)
        warm.predict(np.zeros((4, args.features), np.float32))

        limit = limit_private_memory(int(args.budget * 2**20))
        if limit is None:
            print("(no memory limit on this platform: RLIMIT_DATA is used on Linux only)")
        else:
            print(f"private memory limited to {limit / 2**20:.0f} MiB (held after start-up "
                  f"plus a {args.budget:.0f} MiB budget); the data file is "
                  f"{size / 2**20:.0f} MiB")
            try:
                np.load(x_path)
                print("  loading the file whole worked: it is not larger than the budget")
            except MemoryError:
                print("  loading the file whole: MemoryError, as it should")

        X = np.load(x_path, mmap_mode="r")  # read-only memory maps: read in place
        y = np.load(y_path, mmap_mode="r")
        train = int(0.9 * args.rows) // args.chunk * args.chunk
        mean, std = feature_stats(X, train, args.chunk)
        rng = np.random.default_rng(0)
        checkpoint = os.path.join(folder, "model.npz")
        for epoch in range(args.epochs):
            t0 = time.perf_counter()
            starts = rng.permutation(np.arange(0, train, args.chunk))
            losses = []
            for s in starts:
                Xc = (X[s:s + args.chunk] - mean) / std  # a scaled copy of one chunk
                h = model.partial_fit(Xc, y[s:s + args.chunk], batch_size=64,
                                      learning_rate=1e-3, optimizer="adam")
                losses.append(h["loss"][-1])
            model.save(checkpoint)  # atomic: a crash leaves the previous checkpoint
            dt = time.perf_counter() - t0
            print(f"epoch {epoch + 1}: mean loss {np.mean(losses):.4f}, {dt:.1f} s, "
                  f"{train / dt / 1e3:.0f} k samples/s; checkpoint {checkpoint}")

        correct = 0
        for s in range(train, args.rows, args.chunk):
            Xc = (X[s:s + args.chunk] - mean) / std
            correct += int((model.predict(Xc).argmax(axis=1) == y[s:s + args.chunk]).sum())
        accuracy = correct / (args.rows - train)
        used = private_memory()
        print(f"held-out accuracy {accuracy:.3f} on {args.rows - train:,} rows")
        if limit is not None and used is not None:
            print(f"private memory at the end: {used / 2**20:.0f} MiB of the "
                  f"{limit / 2**20:.0f} MiB limit; the file: {size / 2**20:.0f} MiB")
        del X, y
        return {"accuracy": accuracy, "limit": limit, "file_bytes": size, "used": used}
    finally:
        if not (args.keep or args.dir):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
