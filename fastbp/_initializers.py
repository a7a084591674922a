"""Weight initialisation schemes (biases start at zero).

The default follows the activation a layer feeds: He for the ReLU family (keeps the
activation variance constant through ReLU layers), Glorot/Xavier for everything else.
Weights are drawn in float64 and then cast, so float32 and float64 models built from the
same seed start from the same weights up to rounding.
"""

from __future__ import annotations

import numpy as np


def glorot_uniform(rng, n_out, n_in):
    """U(-s, s), s = sqrt(6 / (fan_in + fan_out))."""
    s = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-s, s, size=(n_out, n_in))


def glorot_normal(rng, n_out, n_in):
    """N(0, 2 / (fan_in + fan_out))."""
    return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))


def he_uniform(rng, n_out, n_in):
    """U(-s, s), s = sqrt(6 / fan_in)."""
    s = np.sqrt(6.0 / n_in)
    return rng.uniform(-s, s, size=(n_out, n_in))


def he_normal(rng, n_out, n_in):
    """N(0, 2 / fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))


def lecun_normal(rng, n_out, n_in):
    """N(0, 1 / fan_in)."""
    return rng.normal(0.0, np.sqrt(1.0 / n_in), size=(n_out, n_in))


INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_normal": lecun_normal,
}


def default_initializer(activation: str) -> str:
    """He uniform for relu/leaky_relu, Glorot uniform otherwise."""
    return "he_uniform" if activation in ("relu", "leaky_relu") else "glorot_uniform"


def initialize(network, seed_sequence) -> None:
    """Draw the initial weights of every layer of ``network`` into its ``params`` (biases 0).

    Each layer gets ``network.init`` if set, else He uniform when it feeds relu/leaky_relu
    and Glorot uniform otherwise, from the generator seeded by ``seed_sequence``."""
    from .kernels._codes import ACTIVATIONS

    names = {code: name for name, code in ACTIVATIONS.items()}
    rng = np.random.Generator(np.random.PCG64(seed_sequence))
    for p in range(network.n_layers):
        W = network.weight(network.params, p)
        name = network.init or default_initializer(names[int(network.act_codes[p])])
        W[:] = INITIALIZERS[name](rng, *W.shape)
        network.bias(network.params, p)[:] = 0
