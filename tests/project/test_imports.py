"""The house's layers, read from the source: no import circle, and no import upwards.

Every ``import`` in ``fastbp/`` counts, those inside functions included."""

import ast
import os

import fastbp

ROOT = os.path.dirname(fastbp.__file__)

#: each layer may import from itself and the layers listed after it (arrows point down)
LAYERS = [
    ("front-ends", ("fastbp.model", "fastbp.sklearn", "fastbp.distributed", "fastbp._io",
                    "fastbp.interop", "fastbp._warmup", "fastbp.__main__")),
    ("training engine", ("fastbp._training",)),
    ("descriptions", ("fastbp.optim", "fastbp.schedules", "fastbp.callbacks")),
    ("support", ("fastbp._validation", "fastbp._initializers", "fastbp._threads",
                 "fastbp._errors", "fastbp._version")),
    ("kernels", ("fastbp.kernels",)),
]


def _modules():
    mods = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path[:-3], os.path.dirname(ROOT)).replace(os.sep, ".")
                mods[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return mods


def _graph():
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.endswith("__init__.py") else m.rpartition(".")[0]
        with open(path) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m:
                    graph[m].add(t)
    return graph


def _layer(module):
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_no_import_circle():
    graph = _graph()
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                circles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert circles == [], " ; ".join(" -> ".join(c) for c in circles)


def test_no_import_points_up():
    upward = []
    for m, targets in _graph().items():
        here = _layer(m)
        for t in targets:
            there = _layer(t)
            if here is not None and there is not None and there < here:
                upward.append(f"{m} ({LAYERS[here][0]}) -> {t} ({LAYERS[there][0]})")
    assert upward == [], "\n".join(upward)
