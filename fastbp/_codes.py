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

ACTIVATIONS = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}
#: activations allowed on hidden layers (softmax is row-wise and only meaningful at the output)
HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu")

#: negative-side slope of ``leaky_relu`` (the same default as ``torch.nn.LeakyReLU``)
LEAKY_SLOPE = 0.01

SQUARED_ERROR = 0
CROSS_ENTROPY = 1
BINARY_CROSS_ENTROPY = 2

LOSSES = {
    "squared_error": SQUARED_ERROR,
    "cross_entropy": CROSS_ENTROPY,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
}

#: output activation used when ``output=`` is not given
DEFAULT_OUTPUT = {
    "squared_error": "identity",
    "cross_entropy": "softmax",
    "binary_cross_entropy": "logistic",
}
#: output activations a loss accepts (the fused, numerically stable pairs are enforced)
ALLOWED_OUTPUTS = {
    "squared_error": ("identity", "logistic", "tanh", "relu", "leaky_relu", "softmax"),
    "cross_entropy": ("softmax",),
    "binary_cross_entropy": ("logistic",),
}
