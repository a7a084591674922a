"""Correctness checks shared by the peer profiles (PyTorch, JAX, scikit-learn)."""

import numpy as np
import pytest
from _workloads import initial_weights, reference_epoch, reference_forward


def check_epoch_loss(loss, w, X, y, timing):
    """The peer's epoch loss equals the NumPy reference (stand-in) or is finite (full size)."""
    assert np.isfinite(loss)
    if not timing:
        ref, _ = reference_epoch(initial_weights(w), X, y, w)
        assert loss == pytest.approx(ref, rel=1e-4)


def check_predict(out, params, w, X):
    np.testing.assert_allclose(np.asarray(out), reference_forward(params, X, w.regression),
                               rtol=1e-3, atol=1e-4)


def check_forward(out, params, w, X):
    """A peer's forward pass (logits for classification) against the NumPy reference."""
    z = np.asarray(out, dtype=np.float64)
    if not w.regression:
        e = np.exp(z - z.max(1, keepdims=True))
        z = e / e.sum(1, keepdims=True)
    check_predict(z, params, w, X)
