"""Name <-> integer-code tables for activations and losses.

Compiled kernels take small integer codes instead of Python objects so that they can be
called from users' own ``@njit`` code. These tables are the single source of truth.
"""

IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5
EXP = 6  # output only: the log link of the Poisson loss

ACTIVATIONS = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
    "exp": EXP,
}
#: activations allowed on hidden layers (softmax is row-wise and only meaningful at the output;
#: exp is the Poisson loss's output)
HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu")

#: negative-side slope of ``leaky_relu`` (the same default as ``torch.nn.LeakyReLU``)
LEAKY_SLOPE = 0.01

SQUARED_ERROR = 0
CROSS_ENTROPY = 1
BINARY_CROSS_ENTROPY = 2
POISSON = 3  # half Poisson deviance with an exp output (log link)

LOSSES = {
    "squared_error": SQUARED_ERROR,
    "cross_entropy": CROSS_ENTROPY,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
    "poisson": POISSON,
}

#: output activation used when ``output=`` is not given
DEFAULT_OUTPUT = {
    "squared_error": "identity",
    "cross_entropy": "softmax",
    "binary_cross_entropy": "logistic",
    "poisson": "exp",
}
#: output activations a loss accepts (the fused, numerically stable pairs are enforced)
ALLOWED_OUTPUTS = {
    "squared_error": ("identity", "logistic", "tanh", "relu", "leaky_relu", "softmax"),
    "cross_entropy": ("softmax",),
    "binary_cross_entropy": ("logistic",),
    "poisson": ("exp",),
}

# Optimizer kinds understood by the compiled step kernel (``_updates.optimizer_step``).
# L-BFGS is not a per-step kernel: it runs through SciPy (``fastbp._training.lbfgs``).
OPT_SGD = 0
OPT_ADAM = 1  # Adam and AdamW (AdamW = Adam with decoupled weight decay, hyper[3] > 0)
OPT_RMSPROP = 2
OPT_ADAGRAD = 3
# scikit-learn's MLP update rules (``sklearn.neural_network._stochastic_optimizers``)
OPT_SKLEARN_SGD = 4
OPT_SKLEARN_ADAM = 5

#: rows of the optimizer state buffer (each row shaped like ``params``)
OPT_STATE_ROWS = {OPT_SGD: 1, OPT_ADAM: 2, OPT_RMSPROP: 3, OPT_ADAGRAD: 1,
                  OPT_SKLEARN_SGD: 1, OPT_SKLEARN_ADAM: 2}

#: length of the float64 hyperparameter array passed to the step kernel
N_HYPER = 4

#: status codes of the training drivers (``fastbp.kernels._drivers.train_steps``)
STATUS_OK = 0
STATUS_NONFINITE_LOSS = 1
STATUS_NONFINITE_PARAMS = 2
