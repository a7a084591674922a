"""Converters between ``fastbp.Model`` and PyTorch, ONNX and scikit-learn.

- ``to_torch(model)`` / ``from_torch(module, loss)``: a ``torch.nn.Sequential`` of
  ``Linear`` layers and activation modules, in the model's dtype.
- ``to_onnx(model, path)``: an ONNX graph (``Gemm`` and activation nodes) for
  onnxruntime and other ONNX runtimes.
- ``from_sklearn(estimator)``: a fitted ``sklearn.neural_network.MLPClassifier`` or
  ``MLPRegressor`` (or one of ``fastbp.sklearn``'s).

``Model.to_torch``, ``Model.to_onnx``, ``Model.from_torch`` and ``Model.from_sklearn``
delegate here. PyTorch, ``onnx`` and scikit-learn are optional: each is imported inside the
function that needs it, never by ``import fastbp``.

Layouts agree: fastbp stores each weight matrix row-major as ``(n_out, n_in)``, as
``torch.nn.Linear.weight`` and ONNX ``Gemm`` with ``transB=1`` do; scikit-learn's
``coefs_[l]`` is its transpose ``(n_in, n_out)``.
"""

from __future__ import annotations

import sys

import numpy as np

from ._validation import Choice, Int, check_finite
from .kernels import _codes

__all__ = ["from_sklearn", "from_torch", "to_onnx", "to_torch", "TORCH_MODULES",
           "DEFAULT_OPSET"]

#: fastbp activation name -> the ``torch.nn`` module class that computes it
TORCH_MODULES = {
    "identity": "Identity",
    "logistic": "Sigmoid",
    "tanh": "Tanh",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",  # negative_slope must be fastbp's 0.01 (torch's default)
    "softmax": "Softmax",  # output layer only, over the features (dim=1 or -1)
}
#: every module ``from_torch`` accepts, for error messages
_ACCEPTED = ("Linear", "ReLU", "LeakyReLU(negative_slope=0.01)", "Tanh", "Sigmoid",
             "Softmax(dim=1) (last layer only)", "Identity", "Dropout (after an activation)",
             "nested Sequential")

#: ONNX operator of each activation (float32; see ``_onnx_activation`` for leaky_relu)
ONNX_OPS = {"identity": "Identity", "logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
            "leaky_relu": "LeakyRelu", "softmax": "Softmax", "exp": "Exp"}
#: opset ``to_onnx`` writes by default (onnxruntime >= 1.12 runs it)
DEFAULT_OPSET = 17
#: oldest opset accepted (Softmax over one axis, as fastbp's, since opset 13)
MIN_OPSET = 13
#: one ONNX protobuf holds at most 2 GiB; leave room for the graph around the weights
_ONNX_MAX_BYTES = 2**31 - 2**24

_LOSS = Choice(_codes.LOSSES)


def _model_class(cls):
    if cls is not None:
        return cls
    from .model import Model

    return Model


def _snapshot(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies of every layer's ``(W, b)``, taken at a step boundary (consistent even while
    another thread trains the model)."""
    with model.network.boundary:
        return [(np.array(W), np.array(b)) for W, b in zip(model.weights, model.biases)]


def _layer_activations(model) -> list[str]:
    """Activation applied after each weight layer, the output activation last."""
    return list(model.activations) + [model.output]


def _check_model(model, func: str):
    from .model import Model

    if not isinstance(model, Model):
        raise TypeError(f"{func} converts a fastbp.Model; got {type(model).__name__} "
                        f"{model!r}.")


def _set_params(model, layers) -> None:
    for W_dst, b_dst, (W, b) in zip(model.weights, model.biases, layers, strict=True):
        W_dst[...] = W
        b_dst[...] = b


# ============================================================================ PyTorch
def _import_torch(func: str):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{func} needs PyTorch, which is not installed. fastbp cannot declare it as a "
            "dependency (from PyPI a plain `torch` requirement installs the multi-gigabyte "
            "CUDA build on Linux); install the CPU build with\n"
            "    pip install torch --index-url https://download.pytorch.org/whl/cpu"
        ) from None
    return torch


def to_torch(model):
    """The model as a ``torch.nn.Sequential`` that computes ``model.predict``.

    Parameters
    ----------
    model : fastbp.Model

    Returns
    -------
    torch.nn.Sequential
        For each weight layer a ``torch.nn.Linear`` (weights copied, in the model's dtype,
        on the CPU) followed by its activation module: ``ReLU``, ``LeakyReLU(0.01)``,
        ``Tanh``, ``Sigmoid``, ``Identity``, and after the last layer the output activation
        too (``Softmax(dim=1)`` for cross-entropy, ``Sigmoid`` for binary cross-entropy,
        ``Identity`` for an identity output). A hidden layer with dropout rate ``p > 0``
        has ``Dropout(p)`` after its activation. The module is returned in evaluation mode (dropout
        off) and its output on ``(n, n_in)`` inputs equals ``model.predict`` up to
        floating-point rounding; call ``.train()`` before training it.

    Raises
    ------
    ImportError
        PyTorch is not installed (the message says how to install the CPU build).

    Notes
    -----
    To train the module on the loss fastbp used, drop its final ``Softmax`` / ``Sigmoid``
    and use ``torch.nn.CrossEntropyLoss`` / ``BCEWithLogitsLoss`` on the logits; fastbp's
    ``squared_error`` is ``0.5 * MSELoss(reduction="sum") / n``.
    """
    _check_model(model, "to_torch")
    torch = _import_torch("Model.to_torch")
    nn = torch.nn
    tdtype = {"float32": torch.float32, "float64": torch.float64}[model.dtype.name]
    layers = _snapshot(model)
    acts = _layer_activations(model)
    modules = []
    for p, (W, b) in enumerate(layers):
        lin = nn.utils.skip_init(nn.Linear, W.shape[1], W.shape[0], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        modules.append(lin)
        modules.append(_torch_activation(nn, acts[p]))
        if p < len(layers) - 1 and model.dropout[p] > 0:
            modules.append(nn.Dropout(model.dropout[p]))
    return nn.Sequential(*modules).eval()


def _torch_activation(nn, name: str):
    if name == "leaky_relu":
        return nn.LeakyReLU(_codes.LEAKY_SLOPE)
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name == "exp":  # the Poisson loss's output; torch has no module for it
        return _torch_exp_module(nn)()
    return getattr(nn, TORCH_MODULES[name])()


def _torch_exp_module(nn):
    """An ``nn.Module`` computing ``exp`` elementwise (the output of ``loss='poisson'``)."""

    class Exp(nn.Module):
        def forward(self, z):
            return z.exp()

    return Exp


def _flatten(nn, module, where: str):
    """``(where, module)`` of every leaf of a (nested) ``Sequential``, each checked to
    compute exactly what its class computes (``_check_plain``)."""
    for i, m in enumerate(module):
        at = f"{where}[{i}]"
        _check_plain(nn, at, m)
        if type(m) is nn.Sequential:
            yield from _flatten(nn, m, at)
        else:
            yield at, m


def _hook_name(hook) -> str:
    """What registered a forward (pre-)hook, in words, where torch says so."""
    kind = type(hook).__name__
    known = {"WeightNorm": "torch.nn.utils.weight_norm: the weight is recomputed from "
                           "weight_g and weight_v at every call",
             "SpectralNorm": "torch.nn.utils.spectral_norm: the weight is renormalised at "
                             "every call"}
    if kind in known:
        return known[kind]
    if any(c.__name__ == "BasePruningMethod" for c in type(hook).__mro__):
        return "torch.nn.utils.prune: the weight is masked at every call"
    return getattr(hook, "__qualname__", kind)


def _check_plain(nn, at: str, m) -> None:
    """Refuse a module whose call does more than its class's ``forward`` (hooks, or a
    ``forward`` of its own): fastbp reproduces the plain composition only."""
    where = f"module{at}" if at else "module"
    cls = type(m)
    base = nn.Sequential if isinstance(m, nn.Sequential) else cls
    if "forward" in vars(m) or cls.forward is not base.forward or (
            cls.__call__ is not nn.Module.__call__):
        raise ValueError(
            f"{where} ({cls.__name__}) has a forward of its own, which fastbp cannot read: "
            f"it reproduces only the plain composition of an nn.Sequential's layers. Build "
            f"the layers as an nn.Sequential itself, or build a fastbp.Model and copy the "
            f"weights into model.weights / model.biases yourself.")
    for what, hooks in (("forward pre-hook", m._forward_pre_hooks),
                        ("forward hook", m._forward_hooks)):
        if hooks:
            hook = next(iter(hooks.values()))
            raise ValueError(
                f"{where} ({cls.__name__}) has a {what} ({_hook_name(hook)}), which changes "
                f"what it computes and which fastbp cannot reproduce. Remove the hook (e.g. "
                f"torch.nn.utils.remove_weight_norm({where}) folds a weight norm into the "
                f"weight) and import again.")


def _check_no_global_hooks(torch) -> None:
    module = torch.nn.modules.module
    for what in ("forward_pre_hooks", "forward_hooks"):
        if getattr(module, f"_global_{what}", None):
            raise ValueError(
                f"global {what.replace('_', ' ')[:-1]}s are registered "
                f"(torch.nn.modules.module.register_module_{what[:-1]}): they change what "
                f"every module computes, which fastbp cannot reproduce. Remove them and "
                f"import again.")


def _unsupported(at: str, m, why: str = "") -> ValueError:
    return ValueError(
        f"module{at} ({type(m).__name__}) is not supported by fastbp{why}; an nn.Sequential "
        f"may hold {', '.join(_ACCEPTED)}. Rewrite the model with these layers, or build a "
        "fastbp.Model and copy the weights into model.weights / model.biases yourself."
    )


def _torch_array(torch, tensor, name: str, dtype) -> np.ndarray:
    if tensor.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {tensor.dtype} but the module's first weight has {dtype}; "
            f"fastbp models have one dtype, convert the module with .float() or .double()."
        )
    arr = tensor.detach().to("cpu").numpy().copy()
    check_finite(arr, name)
    return arr


def from_torch(module, loss: str, *, seed: int | None = None, cls=None):
    """A fastbp ``Model`` with the layers and weights of a PyTorch ``nn.Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Linear`` layers, each optionally followed by an activation module (``ReLU``,
        ``LeakyReLU`` with ``negative_slope=0.01``, ``Tanh``, ``Sigmoid``, ``Identity``,
        and after the last ``Linear`` also ``Softmax(dim=1)``), and after a hidden layer's
        activation optionally a ``Dropout``. A ``Linear`` followed directly by another has
        the identity activation; ``Identity`` modules are skipped anywhere; nested
        ``Sequential`` modules are flattened. A ``Linear`` without bias gets a zero bias.
        All parameters must be float32 or float64 (the model's dtype), on any device.
    loss : {"squared_error", "cross_entropy", "binary_cross_entropy", "poisson"}
        The loss the model trains on. An activation module after the last ``Linear`` must
        match it: none or ``Softmax`` for ``cross_entropy``, none or ``Sigmoid`` for
        ``binary_cross_entropy`` (a module ending in logits then predicts their softmax /
        logistic), any supported one for ``squared_error`` (none is the identity).
    seed : int, optional
        The model's seed (shuffling and dropout when it is trained further).
    cls : type, optional
        The class to build, ``fastbp.Model`` (or a subclass) by default.

    Returns
    -------
    fastbp.Model
        A model whose ``predict`` equals the module's output (after softmax / logistic
        where the loss adds it, and in evaluation mode: ``Dropout`` becomes the model's
        ``dropout`` rate, applied only while training), with a fresh optimizer and history.

    Raises
    ------
    TypeError
        ``module`` is not an ``nn.Sequential``, or its parameters are not all float32 or all
        float64.
    ValueError
        An unsupported module, an activation that does not match ``loss``, layer sizes
        that do not chain, or non-finite weights; or a module that computes more than its
        class's plain ``forward``: forward hooks and pre-hooks (``weight_norm``,
        ``spectral_norm``, pruning, global module hooks) or an ``nn.Sequential`` subclass
        (or instance) with a ``forward`` of its own. The message names the module.
    """
    torch = _import_torch("Model.from_torch")
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(
            f"module must be a torch.nn.Sequential of Linear layers and activation modules; "
            f"got {type(module).__name__}. Wrap the layers as nn.Sequential(nn.Linear(...), "
            f"nn.ReLU(), ...) (a custom nn.Module's forward cannot be read)."
        )
    loss = _LOSS(loss, "loss")
    _check_no_global_hooks(torch)
    _check_plain(nn, "", module)
    activations = {getattr(nn, cls): name for name, cls in TORCH_MODULES.items()}
    dtype = None
    linears = []  # (where, W, b)
    acts: list[str | None] = []  # activation after each Linear (None: none seen yet)
    drops: list[float] = []
    for at, m in _flatten(nn, module, ""):
        kind = type(m)
        if kind is nn.Identity:
            continue
        if kind is nn.Linear:
            if dtype is None:
                dtype = m.weight.dtype
                if dtype not in (torch.float32, torch.float64):
                    raise TypeError(
                        f"module{at}.weight has dtype {dtype}; fastbp models are float32 or "
                        f"float64. Convert the module with .float() or .double() first."
                    )
            if linears and m.in_features != linears[-1][1].shape[0]:
                prev = linears[-1][0]
                raise ValueError(
                    f"module{at} (Linear) takes {m.in_features} inputs but module{prev} "
                    f"(Linear) gives {linears[-1][1].shape[0]} outputs; the layer sizes must "
                    f"chain."
                )
            W = _torch_array(torch, m.weight, f"module{at}.weight", dtype)
            b = (np.zeros(W.shape[0], dtype=W.dtype) if m.bias is None
                 else _torch_array(torch, m.bias, f"module{at}.bias", dtype))
            linears.append((at, W, b))
            acts.append(None)
            drops.append(0.0)
            continue
        if kind is nn.Dropout:
            if not linears:
                raise _unsupported(at, m, " before the first Linear (fastbp does not drop "
                                          "inputs)")
            if drops[-1] > 0:
                raise _unsupported(at, m, " after another Dropout")
            drops[-1] = float(m.p)
            continue
        name = activations.get(kind)  # exact classes: a subclass may compute otherwise
        if name is None:
            raise _unsupported(at, m)
        if not linears:
            raise _unsupported(at, m, " before the first Linear (fastbp applies "
                                      "activations to layer outputs only)")
        if drops[-1] > 0:
            raise _unsupported(at, m, " after a Dropout (fastbp drops activations: put the "
                                      "Dropout after the activation)")
        if acts[-1] is not None:
            raise _unsupported(at, m, f" after another activation (the Linear "
                                      f"module{linears[-1][0]} already has one)")
        if name == "leaky_relu" and m.negative_slope != _codes.LEAKY_SLOPE:
            raise ValueError(
                f"module{at} is LeakyReLU(negative_slope={m.negative_slope}); fastbp's "
                f"leaky_relu has the fixed slope {_codes.LEAKY_SLOPE} (torch's default). Use "
                f"nn.LeakyReLU() or another activation."
            )
        if name == "softmax" and m.dim not in (None, 1, -1):
            raise ValueError(
                f"module{at} is Softmax(dim={m.dim}); fastbp's softmax normalises each row "
                f"over the features of (n, n_features) inputs: use nn.Softmax(dim=1)."
            )
        acts[-1] = name
    if not linears:
        raise ValueError(
            "module has no Linear layer; fastbp needs at least one, e.g. "
            "nn.Sequential(nn.Linear(n_in, n_out))."
        )
    final = acts[-1]
    for p in range(len(linears) - 1):
        if acts[p] == "softmax":
            raise ValueError(
                f"module's Softmax after the hidden layer module{linears[p][0]} is not "
                f"supported: fastbp uses softmax only as the output activation. Hidden "
                f"layers may use {list(_codes.HIDDEN_ACTIVATIONS)}."
            )
    if drops[-1] > 0:
        raise ValueError(
            f"module has a Dropout after its last Linear (module{linears[-1][0]}); fastbp "
            f"drops hidden units only. Remove it."
        )
    if loss == "poisson" and final is not None:
        raise ValueError(
            f"module ends in {TORCH_MODULES[final]} but loss='poisson' puts an exp on the "
            "last Linear's output: end the module with the last Linear (log rates)."
        )
    needed = {"cross_entropy": "softmax", "binary_cross_entropy": "logistic",
              "poisson": "exp"}.get(loss)
    if loss != "poisson" and needed is not None and final not in (None, needed):
        raise ValueError(
            f"module ends in {TORCH_MODULES[final]} but loss={loss!r} needs the output "
            f"activation {needed} (nn.{TORCH_MODULES[needed]}): end the module with "
            f"nn.{TORCH_MODULES[needed]}" + ("(dim=1)" if needed == "softmax" else "()")
            + " or with the last Linear (logits), or choose another loss."
        )
    output = needed or final or "identity"
    hidden = [a or "identity" for a in acts[:-1]]
    sizes = [linears[0][1].shape[1]] + [W.shape[0] for _, W, _ in linears]
    model = _model_class(cls)(
        sizes, activation=hidden, loss=loss, output=output,
        dtype=np.dtype(linears[0][1].dtype).name, seed=seed, dropout=drops[:-1],
    )
    _set_params(model, [(W, b) for _, W, b in linears])
    return model


# ============================================================================ ONNX
def _import_onnx(func: str):
    try:
        import onnx
    except ImportError:
        raise ImportError(
            f"{func} needs the onnx package, which is not installed: "
            "pip install 'fastbp[onnx]' (or pip install onnx onnxruntime)."
        ) from None
    return onnx


def to_onnx(model, path=None, *, opset: int = DEFAULT_OPSET, input_name: str = "X",
            output_name: str = "Y"):
    """The model as an ONNX graph, optionally written to ``path``.

    Parameters
    ----------
    model : fastbp.Model
    path : str, bytes or os.PathLike, optional
        Where to write the ``.onnx`` file. Written atomically, as ``Model.save`` writes: a
        crash or an error never leaves a partial file or destroys an existing one.
        ``None`` writes nothing.
    opset : int, default 17
        ONNX opset of the graph, at least 13 and at most what the installed ``onnx``
        knows. The file's IR version is the oldest that carries this opset, so older
        runtimes can load it (opset 17: onnxruntime >= 1.12).
    input_name, output_name : str, default "X", "Y"
        Names of the graph's input ``(batch, n_in)`` and output ``(batch, n_out)``; the
        batch dimension is dynamic (named ``"batch"``).

    Returns
    -------
    onnx.ModelProto
        The graph: per weight layer a ``Gemm`` node (``X @ W.T + b``, ``transB=1``, the
        weights as initializers in the model's dtype) and an activation node (``Relu``,
        ``LeakyRelu``, ``Tanh``, ``Sigmoid``, ``Identity``; the output activation included,
        ``Softmax(axis=1)`` for cross-entropy). Its output equals ``model.predict`` up to
        floating-point rounding (float32: within 1e-5), and it is checked with
        ``onnx.checker`` before it is written.

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed.
    ValueError
        ``opset`` or the names are not valid, or the weights exceed the 2 GiB that one
        ONNX file holds (fastbp writes no external data files).

    Notes
    -----
    float64 models give float64 graphs (input, weights and output); onnxruntime runs every
    operator used in both dtypes. ``leaky_relu`` is ``LeakyRelu(alpha=0.01)`` in float32
    and ``PRelu`` with a float64 slope of 0.01 in float64 (``LeakyRelu``'s ``alpha`` is a
    float32 attribute, which would round the slope). Dropout is not exported (inference
    never drops). Metadata properties ``fastbp.loss``, ``fastbp.layer_sizes``,
    ``fastbp.activations`` and ``fastbp.output`` describe the model.
    """
    _check_model(model, "to_onnx")
    onnx = _import_onnx("Model.to_onnx")
    from onnx import TensorProto, helper, numpy_helper

    from . import __version__, _io
    from ._validation import check_path

    opset = Int(MIN_OPSET, onnx.defs.onnx_opset_version())(opset, "opset")
    for value, name in ((input_name, "input_name"), (output_name, "output_name")):
        if not isinstance(value, str) or not value or value.startswith("fastbp/"):
            raise ValueError(f"{name} must be a non-empty string not starting with "
                             f"'fastbp/' (the prefix of the graph's own names); got "
                             f"{value!r}.")
    if input_name == output_name:
        raise ValueError(f"input_name and output_name must differ; both are "
                         f"{input_name!r}.")
    if path is not None:
        check_path(path)
    nbytes = model.params.nbytes
    if nbytes > _ONNX_MAX_BYTES:
        raise ValueError(
            f"the model's {nbytes} bytes of weights do not fit in one ONNX file (a protobuf "
            f"holds at most 2 GiB) and fastbp writes no external data; export a smaller "
            f"model or a float32 one."
        )
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[model.dtype.name]
    layers = _snapshot(model)
    acts = _layer_activations(model)
    nodes, inits = [], []
    x = input_name
    for p, (W, b) in enumerate(layers):
        last = p == len(layers) - 1
        names = {k: f"fastbp/layer{p}/{k}" for k in ("W", "b", "z", "slope")}
        inits += [numpy_helper.from_array(W, names["W"]), numpy_helper.from_array(b, names["b"])]
        nodes.append(helper.make_node("Gemm", [x, names["W"], names["b"]], [names["z"]],
                                      name=f"fastbp/layer{p}/Gemm", transB=1))
        a = output_name if last else f"fastbp/layer{p}/a"
        act = acts[p]
        node_name = f"fastbp/layer{p}/{act}"
        if act == "leaky_relu" and model.dtype == np.float64:
            inits.append(numpy_helper.from_array(np.array(_codes.LEAKY_SLOPE, np.float64),
                                                 names["slope"]))
            nodes.append(helper.make_node("PRelu", [names["z"], names["slope"]], [a],
                                          name=node_name))
        elif act == "leaky_relu":
            nodes.append(helper.make_node("LeakyRelu", [names["z"]], [a], name=node_name,
                                          alpha=_codes.LEAKY_SLOPE))
        elif act == "softmax":
            nodes.append(helper.make_node("Softmax", [names["z"]], [a], name=node_name,
                                          axis=1))
        else:
            nodes.append(helper.make_node(ONNX_OPS[act], [names["z"]], [a], name=node_name))
        x = a
    sizes = [int(s) for s in model.layer_sizes]
    graph = helper.make_graph(
        nodes, "fastbp_mlp",
        [helper.make_tensor_value_info(input_name, elem, ["batch", sizes[0]])],
        [helper.make_tensor_value_info(output_name, elem, ["batch", sizes[-1]])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="fastbp",
                              producer_version=__version__,
                              doc_string=f"fastbp {model!r}")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(proto, {
        "fastbp.loss": model.loss, "fastbp.layer_sizes": str(sizes),
        "fastbp.activations": str(list(model.activations)), "fastbp.output": model.output,
    })
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        data = proto.SerializeToString()
        _io.write_atomically(path, lambda f: f.write(data), writer="Model.to_onnx")
    return proto


# ============================================================================ scikit-learn
def _mlp_class(estimator):
    """The scikit-learn (or fastbp.sklearn) MLP class ``estimator`` is an instance of, or
    None."""
    classes = []
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:  # not installed: the estimator cannot be one of its classes
        pass
    else:
        classes += [MLPClassifier, MLPRegressor]
    fastbp_sklearn = sys.modules.get("fastbp.sklearn")  # loaded if the estimator is one
    if fastbp_sklearn is not None:
        classes += [fastbp_sklearn.MLPClassifier, fastbp_sklearn.MLPRegressor]
    return next((c for c in classes if isinstance(estimator, c)), None)


#: the methods an MLP's predictions go through (scikit-learn's and fastbp.sklearn's)
_PREDICTING = ("_forward_pass", "_forward_pass_fast", "_forward", "_predict", "predict",
               "predict_proba")


def _check_plain_estimator(estimator, base) -> None:
    """Refuse a subclass (or instance) that predicts otherwise than ``base``."""
    for name in _PREDICTING:
        if not hasattr(base, name):
            continue
        if name in vars(estimator) or getattr(type(estimator), name) is not getattr(base,
                                                                                   name):
            raise ValueError(
                f"estimator ({type(estimator).__name__}) has a {name} of its own, so its "
                f"predictions may not be {base.__name__}'s, which fastbp reproduces; import "
                f"a plain {base.__module__.split('.')[0]} {base.__name__} with the same "
                f"coefs_ and intercepts_.")


def from_sklearn(estimator, *, seed: int | None = None, cls=None):
    """A fastbp ``Model`` with the architecture and weights of a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted (``fastbp.sklearn``'s estimators are accepted too; their trained model is
        also their ``model_`` attribute). Its ``activation`` (identity, logistic, tanh,
        relu) becomes every hidden layer's.
    seed : int, optional
        The model's seed (shuffling when it is trained further).
    cls : type, optional
        The class to build, ``fastbp.Model`` (or a subclass) by default.

    Returns
    -------
    fastbp.Model
        In the dtype of the estimator's ``coefs_`` (float64, or float32 when it was fitted
        on float32 data), with a fresh optimizer and history. Its loss follows the
        estimator's ``out_activation_``:

        - ``softmax`` (multi-class classifier): ``cross_entropy``; ``predict`` equals the
          estimator's ``predict_proba``, columns in the order of ``classes_``.
        - ``logistic`` (binary or multi-label classifier): ``binary_cross_entropy``. A
          binary classifier has one output unit, the probability of ``classes_[1]``:
          ``predict`` is ``(n, 1)`` and equals ``predict_proba(X)[:, 1:]``, and training
          targets are 1 for ``classes_[1]`` and 0 for ``classes_[0]``.
        - ``identity`` (regressor): ``squared_error``; ``predict`` equals the estimator's
          ``predict`` as an ``(n, n_outputs)`` array.

    Raises
    ------
    TypeError
        ``estimator`` is not a scikit-learn MLP.
    sklearn.exceptions.NotFittedError
        The estimator is not fitted (a ``ValueError`` and ``AttributeError``).
    ValueError
        Its output activation has no fastbp counterpart, or it is a subclass (or instance)
        with a prediction method of its own (``predict``, ``predict_proba``, the forward
        pass), whose output fastbp could not reproduce.
    """
    base = _mlp_class(estimator)
    if base is None:
        raise TypeError(
            f"estimator must be a fitted sklearn.neural_network.MLPClassifier or "
            f"MLPRegressor (or fastbp.sklearn's); got {type(estimator).__name__}. For a "
            f"PyTorch module use Model.from_torch."
        )
    _check_plain_estimator(estimator, base)
    from sklearn.base import is_classifier
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, ("coefs_", "intercepts_", "out_activation_"), msg=(
        f"This {type(estimator).__name__} instance is not fitted yet; call its fit method "
        f"with training data before Model.from_sklearn (it has no weights to import)."))
    out = estimator.out_activation_
    loss = ({"softmax": "cross_entropy", "logistic": "binary_cross_entropy"}
            if is_classifier(estimator)
            else {"identity": "squared_error", "exp": "poisson"}).get(out)
    if loss is None:
        raise ValueError(
            f"{type(estimator).__name__} has out_activation_={out!r}, which fastbp does not "
            f"have (loss={getattr(estimator, 'loss', None)!r}); fastbp imports classifiers "
            f"(softmax or logistic outputs) and squared-error (identity output) and Poisson "
            f"(exp output) regressors."
        )
    coefs = [np.asarray(c) for c in estimator.coefs_]
    intercepts = [np.asarray(c) for c in estimator.intercepts_]
    dtype = coefs[0].dtype
    layers = []
    for p, (C, b) in enumerate(zip(coefs, intercepts, strict=True)):
        if C.dtype != dtype or b.dtype != dtype or dtype.name not in ("float32", "float64"):
            raise TypeError(f"estimator.coefs_/intercepts_ must all be float32 or all "
                            f"float64; layer {p} has {C.dtype}/{b.dtype}.")
        if C.ndim != 2 or b.shape != (C.shape[1],) or (p and C.shape[0] != coefs[p - 1].shape[1]):
            raise ValueError(
                f"estimator.coefs_[{p}] has shape {C.shape} and intercepts_[{p}] {b.shape}, "
                f"which do not chain with the other layers; was the estimator edited?"
            )
        check_finite(C, f"estimator.coefs_[{p}]")
        check_finite(b, f"estimator.intercepts_[{p}]")
        layers.append((C.T, b))
    sizes = [coefs[0].shape[0]] + [C.shape[1] for C in coefs]
    model = _model_class(cls)(
        sizes, activation=estimator.activation, loss=loss, output=out, dtype=dtype.name,
        seed=seed,
    )
    _set_params(model, layers)
    return model
