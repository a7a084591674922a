"""The no-progress check: warn once when classification training learns nothing.

Training on unscaled inputs (pixels 0..255, say) or with far too high a learning rate often
neither diverges nor learns: the hidden units saturate or die, the output learns the class
frequencies and the loss stays at their entropy (``ln 10`` for ten balanced classes), with
the accuracy of always predicting the most frequent class. A far too low learning rate
looks the same, with the loss creeping down. ``StallCheck`` watches for that over the
epochs of one model, across ``fit``/``partial_fit`` calls, and the training loop issues
one ``fastbp.ConvergenceWarning`` naming the likely causes (unscaled inputs when they are
large; a learning rate too high, or too low when the loss is creeping down).

The epochs are grouped into blocks of at least ``BLOCK_STEPS`` optimizer steps and
``BLOCK_ROWS`` rows. The first block is a warm-up and is not judged. A later block is
*stuck* when all three hold:

- its mean loss is at least ``LOSS_RATIO`` times the *baseline*, the loss of always
  predicting the block's class frequencies (their entropy);
- its accuracy is at most that of always predicting the block's most frequent class plus
  ``ACC_MARGIN`` of the remaining fraction;
- its loss is not ``TREND`` below the previous block's (the loss is not going down).

The warning comes once consecutive stuck blocks cover ``STUCK_STEPS`` steps. Healthy
training fails the first or second condition within a block or two, and slow but steady
training fails the third. Only single-label classification is judged (``cross_entropy``,
``binary_cross_entropy`` with one output), with step optimizers; regression has no
accuracy to tell "no signal" from "not learning".
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import _codes

BLOCK_STEPS = 50
BLOCK_ROWS = 500
STUCK_STEPS = 100
LOSS_RATIO = 0.95
ACC_MARGIN = 0.1
TREND = 0.005
#: a stuck run whose loss ends this much below the block before it is falling, slowly
FALLING = 0.002
#: largest absolute input value counted as scaled (standardised data stays well below)
SCALED_INPUT = 10.0


def class_mass(T: np.ndarray, SW: np.ndarray, loss_code: int):
    """The epoch's targets summed per class, ``(n_classes,)`` float64 (weighted by ``SW``
    when given), or ``None`` when the loss is not single-label classification."""
    if loss_code == _codes.CROSS_ENTROPY:
        # einsum sums the columns in float64 2.5x faster than T.sum(axis=0, dtype=float64)
        mass = np.einsum("ij->j", T, dtype=np.float64) if not SW.shape[0] else np.dot(SW, T)
        return np.asarray(mass, dtype=np.float64)
    if loss_code == _codes.BINARY_CROSS_ENTROPY and T.shape[1] == 1:
        ones = float(T.sum(dtype=np.float64) if not SW.shape[0] else np.dot(SW, T[:, 0]))
        total = float(T.shape[0] if not SW.shape[0] else SW.sum(dtype=np.float64))
        return np.array([total - ones, ones])
    return None


class StallCheck:
    """A model's no-progress bookkeeping, kept across training calls (not saved)."""

    def __init__(self):
        self.warned = False
        self.blocks = 0  # blocks judged so far (the first is the warm-up)
        self.stuck_steps = 0  # steps of the current run of stuck blocks
        self.prev_loss = self.ref_loss = math.inf
        self._clear()

    def _clear(self) -> None:
        self.steps = self.rows = 0
        self.loss = self.correct = 0.0
        self.mass = None

    def add(self, steps: int, rows: int, loss: float, accuracy: float,
            mass: np.ndarray) -> dict | None:
        """Record one epoch (``mass``: its ``class_mass``); returns the stuck run's figures
        when it is time to warn."""
        if self.warned or not math.isfinite(loss):
            return None
        self.steps += steps
        self.rows += rows
        self.loss += loss * rows
        self.correct += accuracy * rows
        if self.mass is None or self.mass.shape != mass.shape:
            self.mass = mass.copy()
        else:
            self.mass += mass
        if self.steps < BLOCK_STEPS or self.rows < BLOCK_ROWS:
            return None
        # the baseline: always predicting the block's class frequencies
        p = self.mass / self.mass.sum()
        maj = float(p.max())
        p = p[p > 0]
        B = float(-np.sum(p * np.log(p)))
        L, acc = self.loss / self.rows, self.correct / self.rows
        steps = self.steps
        self._clear()
        first = self.blocks == 0
        self.blocks += 1
        stuck = (not first and L >= LOSS_RATIO * B and acc <= maj + ACC_MARGIN * (1 - maj)
                 and L > (1 - TREND) * self.prev_loss)
        self.prev_loss = L
        if not stuck:
            self.ref_loss = L  # the last block before a stuck run
        self.stuck_steps = self.stuck_steps + steps if stuck else 0
        if self.stuck_steps < STUCK_STEPS:
            return None
        self.warned = True
        return {"loss": L, "baseline": B, "accuracy": acc, "majority": maj,
                "steps": self.stuck_steps, "falling": L < (1 - FALLING) * self.ref_loss}


def message(figures: dict, X: np.ndarray, lr: float) -> str:
    """The warning's text: what was seen, and the likely causes (unscaled inputs first when
    the inputs are large)."""
    f = figures
    text = (
        f"training is making no progress: over the last {f['steps']} steps the mean loss "
        f"is {f['loss']:.4g}, no better than the {f['baseline']:.4g} of predicting the class "
        f"frequencies, and the accuracy ({f['accuracy']:.1%}) is that of always predicting "
        f"the most frequent class ({f['majority']:.1%})."
    )
    lo, hi = float(X.min()), float(X.max())
    scale = (
        f" Scale the inputs: they span [{lo:.4g}, {hi:.4g}], and inputs this large saturate "
        "or kill the hidden units; standardise them (sklearn.preprocessing.StandardScaler, "
        "or X / 255 for 8-bit pixels)."
    )
    if f["falling"]:
        rate = (f" The loss is falling, but very slowly: the learning rate ({lr:.3g}) may be "
                "too low; try 10 times higher.")
    else:
        rate = (f" Lower the learning rate (it is {lr:.3g}; try 10 times lower), or clip "
                "gradients with clip_norm.")
    if max(abs(lo), abs(hi)) > SCALED_INPUT:
        return text + scale + rate + " Then train again with reset=True."
    return text + rate + (" Check too that the labels go with the inputs; then train "
                          "again with reset=True.")
