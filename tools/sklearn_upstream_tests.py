"""Run scikit-learn's own ``neural_network/tests/test_mlp.py`` against fastbp's estimators.

The installed scikit-learn's test file is copied to a temporary folder with one change:
``from sklearn.neural_network import MLPClassifier, MLPRegressor`` becomes
``from fastbp.sklearn import ...``, and scikit-learn's ``global_random_seed`` fixture
(its default seed, 42) is provided. Nothing else is edited, so every failure is either a
difference in behaviour or a test that inspects scikit-learn internals (listed in the
summary, with pytest's short reason).

    python tools/sklearn_upstream_tests.py            # summary on stdout
    python tools/sklearn_upstream_tests.py -- -k adam # extra pytest arguments after --
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"


def main(argv: list[str]) -> int:
    import sklearn

    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    src = os.path.join(os.path.dirname(sklearn.__file__), "neural_network", "tests",
                       "test_mlp.py")
    with open(src) as f:
        text = f.read()
    if IMPORT not in text:
        print(f"the import line was not found in {src}; update IMPORT", file=sys.stderr)
        return 2
    text = text.replace(IMPORT, "from fastbp.sklearn import MLPClassifier, MLPRegressor")
    with tempfile.TemporaryDirectory(prefix="fastbp-upstream-") as d:
        path = os.path.join(d, "test_mlp_fastbp.py")
        with open(path, "w") as f:
            f.write(text)
        with open(os.path.join(d, "conftest.py"), "w") as f:  # scikit-learn's, by default
            f.write("import pytest\n\n\n@pytest.fixture\ndef global_random_seed():\n"
                    "    return 42\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", path, "-q", "-rfE", "-p", "no:cacheprovider",
             "-W", "ignore::DeprecationWarning", *extra],
            capture_output=True, text=True, cwd=d)
    out = proc.stdout
    print(f"scikit-learn {sklearn.__version__}: {src}")
    for line in out.splitlines():
        if line.startswith(("FAILED", "ERROR")) or re.search(r"\d+ (passed|failed)", line):
            print(line[:240])
    return 0 if proc.returncode in (0, 1) else proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
