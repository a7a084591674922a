"""``coefs_`` and ``intercepts_``: the estimators' assignable layers.

One descriptor, ``Layers``, is both attributes. On a fitted estimator they are views into
its model's flat parameter buffer (the transpose of fastbp's row-major ``(n_out, n_in)``
matrices): writing into them, assigning an item (``est.coefs_[i] = W``) or a new list
writes into the model, shapes checked at once. On an unfitted estimator what is assigned is
kept as it is given, as scikit-learn keeps it, so its idiom of placeholders filled item by
item works (``est.coefs_ = [0] * 2`` then ``est.coefs_[0] = W0``, ...); the arrays are
checked when they are used -- by ``predict``, and by the first ``partial_fit`` or
``fit(warm_start=True)``, which train from them -- with the same errors.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from .._validation.arrays import as_finite

NAMES = ("coefs_", "intercepts_")
_SHAPES = ("(fan_in, fan_out)", "(fan_out,)")
_REFIT = ("To change the architecture, set hidden_layer_sizes and fit again, or assign "
          "coefs_ and intercepts_ on an unfitted estimator (sklearn.base.clone(est)).")


def layer_arrays(value, which: int) -> list:
    """``value`` as a list of finite float arrays, ``coefs_`` (``which=0``: 2-D) or
    ``intercepts_`` (1-D), checked."""
    name, ndim = NAMES[which], 2 - which
    if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
        raise TypeError(
            f"{name} must be a list of arrays, one per layer; got {type(value).__name__}.")
    if len(value) == 0:
        raise ValueError(f"{name} must hold one array per layer; got an empty list.")
    out = []
    for i, a in enumerate(value):
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged nested lists and the like
            raise ValueError(f"{name}[{i}] could not be converted to an array: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{i}] must hold real numbers; got dtype {arr.dtype}.")
        if arr.ndim != ndim:
            raise ValueError(f"{name}[{i}] must be a {ndim}-D array of shape "
                             f"{_SHAPES[which]}; got shape {arr.shape}.")
        if arr.size == 0:
            raise ValueError(f"{name}[{i}] is empty (shape {arr.shape}); every layer needs "
                             "at least one unit.")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}[{i}] contains NaN or infinity.")
        out.append(np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64))
    return out


def check_chain(coefs, intercepts, layer_units=None) -> None:
    """``coefs`` and ``intercepts`` (checked arrays) describe one chain of layers: each
    ``coefs[i]`` maps the previous layer's units, each ``intercepts[i]`` matches it, and,
    given ``layer_units``, the units are those."""
    for i in range(1, len(coefs)):
        if coefs[i].shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(
                f"coefs_[{i}] has shape {coefs[i].shape}, but coefs_[{i - 1}] has "
                f"{coefs[i - 1].shape[1]} outputs, so coefs_[{i}] must have "
                f"{coefs[i - 1].shape[1]} rows (coefs_[i] is (fan_in, fan_out)).")
    if len(intercepts) != len(coefs):
        raise ValueError(f"intercepts_ has {len(intercepts)} arrays but coefs_ has "
                         f"{len(coefs)}; give one of each per layer.")
    for i, (c, b) in enumerate(zip(coefs, intercepts, strict=True)):
        if b.shape != (c.shape[1],):
            raise ValueError(f"intercepts_[{i}] has shape {b.shape}; coefs_[{i}] has "
                             f"{c.shape[1]} outputs, so it must have shape ({c.shape[1]},).")
    if layer_units is not None:
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if units != list(layer_units):
            raise ValueError(
                f"the assigned coefs_ and intercepts_ have layer sizes {units}, but the data "
                f"and hidden_layer_sizes give {list(layer_units)}; set "
                f"hidden_layer_sizes={tuple(units[1:-1])} (and pass data with {units[0]} "
                "features and matching targets), or assign weights of those shapes.")


class _Views(list):
    """A fitted estimator's ``coefs_`` / ``intercepts_``: the model's layer views, whose
    item assignment writes into the model (checked); its length is fixed."""

    def __init__(self, views, owner, which):
        super().__init__(views)
        self._owner, self._which = owner, which

    def __setitem__(self, index, value):
        new = list(self)
        new[index] = value
        Layers.write(self._owner.model_, self._which, new)

    def _fixed(self, *args, **kwargs):
        name = NAMES[self._which]
        raise TypeError(f"{name} has one array per layer; assign arrays of the same shapes "
                        f"(est.{name}[i] = ...) or a whole new list (est.{name} = [...]).")

    __delitem__ = __iadd__ = __imul__ = _fixed
    append = extend = insert = pop = remove = clear = sort = reverse = _fixed

    def __reduce__(self):
        return (list, (list(self),))


class Layers:
    """The descriptor of ``coefs_`` (``which=0``) and ``intercepts_`` (``which=1``); see the
    module docstring. What an unfitted estimator was given is in its ``_assigned`` dict."""

    def __init__(self, which: int):
        self.which = which

    def __get__(self, est, owner=None):
        if est is None:
            return self
        model = getattr(est, "model_", None)
        if model is not None:
            views = [W.T for W in model.weights] if self.which == 0 else list(model.biases)
            return _Views(views, est, self.which)
        assigned = getattr(est, "_assigned", {})
        if NAMES[self.which] not in assigned:
            raise AttributeError(
                f"{type(est).__name__!r} object has no attribute {NAMES[self.which]!r} (it is "
                f"not fitted; fit it, or assign {NAMES[self.which]} and "
                f"{NAMES[1 - self.which]})")
        return assigned[NAMES[self.which]]

    def __set__(self, est, value):
        model = getattr(est, "model_", None)
        if model is not None:
            self.write(model, self.which, value)
            return
        if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
            layer_arrays(value, self.which)  # the TypeError
        # kept as given (a new dict: a failed call's rollback puts the old one back)
        est._assigned = {**getattr(est, "_assigned", {}), NAMES[self.which]:
                         value if isinstance(value, list) else list(value)}

    @staticmethod
    def write(model, which: int, value) -> None:
        """Assign ``value`` to a fitted model's layers: checked against their shapes, then
        written into its buffer at a step boundary."""
        name = NAMES[which]
        arrays = layer_arrays(value, which)
        views = [W.T for W in model.weights] if which == 0 else list(model.biases)
        if len(arrays) != len(views):
            raise ValueError(f"{name} must hold {len(views)} arrays, one per layer of this "
                             f"fitted estimator; got {len(arrays)}. {_REFIT}")
        for i, (a, view) in enumerate(zip(arrays, views, strict=True)):
            if a.shape != view.shape:
                raise ValueError(f"{name}[{i}] must have shape {view.shape}, the shape of "
                                 f"this fitted estimator's layer {i}; got {a.shape}. {_REFIT}")
        # in the model's dtype, checked after the cast: 1e39 overflows float32 to inf
        arrays = [as_finite(a, view.dtype, f"{name}[{i}]")
                  for i, (a, view) in enumerate(zip(arrays, views, strict=True))]
        with model.network.boundary:
            for a, view in zip(arrays, views, strict=True):
                view[...] = a

    @staticmethod
    def assigned(est) -> bool:
        """Whether ``est`` (unfitted) was given any layers."""
        return bool(getattr(est, "_assigned", None))

    @staticmethod
    def take(est, layer_units=None, dtype=None) -> tuple[list, list]:
        """The layers assigned to an unfitted ``est``, checked (``layer_units``: the sizes
        they must have; ``dtype``: the model's, checked after the cast), as
        ``(coefs, intercepts)``."""
        assigned = getattr(est, "_assigned", {})
        missing = [name for name in NAMES if name not in assigned]
        if missing:
            have = NAMES[missing[0] == NAMES[0]]
            raise NotFittedError(
                f"this {type(est).__name__} has {have} but no {missing[0]}; assign "
                f"{missing[0]} too (or fit the estimator) before predicting or training "
                "from them.")
        coefs = layer_arrays(assigned[NAMES[0]], 0)
        intercepts = layer_arrays(assigned[NAMES[1]], 1)
        check_chain(coefs, intercepts, layer_units)
        if dtype is not None:  # 1e39 overflows float32 to inf
            coefs, intercepts = ([as_finite(a, dtype, f"{name}[{i}]") for i, a in enumerate(arrays)]
                                 for name, arrays in zip(NAMES, (coefs, intercepts)))
        return coefs, intercepts
