"""Every `>>>` example in keras_mlcl's docstrings, run with doctest.

The examples are found by reading the sources (`ast`), so every backend of a `make test` run
collects the same tests, one per docstring, named `module.qualname`, without importing the
package. Each test imports its module under the active backend and runs the docstring's
examples in a namespace of the module's globals plus `keras`, `np` and `keras_mlcl`, in a
temporary working folder (some examples write files). Outputs are compared with `ELLIPSIS`
(write `0.5514...` for a float whose last digits depend on the backend) and
`NORMALIZE_WHITESPACE`. An example that cannot run here (a GPU, several processes, a file the
tests cannot have) says why in its text and carries `# doctest: +SKIP`.

Examples of the host-side packages (`HOST_SIDE`: data, evaluation, experiments, bench, the
command) run once per `make test` (`backend_independent`); the others touch tensors and run
under every backend, except the `COSTLY` ones, spread over the backends; a module of one
backend's code (`keras_mlcl.backend.torch_supcon`) runs under that backend only.
"""

import ast
import doctest
import importlib
import os

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_mlcl")
LAUNCHER = os.path.join(ROOT, "keras_mlcl_launcher.py")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
BACKENDS = ("jax", "tensorflow", "torch")
HOST_SIDE = (
    "keras_mlcl.bench",
    "keras_mlcl.cli",
    "keras_mlcl.data",
    "keras_mlcl.evaluation",
    "keras_mlcl.experiments",
    "keras_mlcl_launcher",
)
# Examples that cost seconds per backend: run on one backend of a `make test` run, by turns.
COSTLY = {
    "keras_mlcl.encoders.text.text_encoder",  # a keras-hub backbone and its WordPiece vocabulary
}


def module_files():
    """`(module name, path)` of every module of the package, and of the launcher."""
    found = [("keras_mlcl_launcher", LAUNCHER)]
    for folder, folders, files in os.walk(PACKAGE):
        folders[:] = sorted(f for f in folders if not f.startswith(("_", ".")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found.append((".".join(parts), path))
    return found


def docstrings(node, qualname):
    """`(qualname, docstring, line)` of `node` and of every class and function defined in it."""
    docstring = ast.get_docstring(node, clean=False)
    if docstring is not None:
        yield qualname, docstring, node.body[0].lineno
    for child in _direct_definitions(node):
        yield from docstrings(child, f"{qualname}.{child.name}")


def _direct_definitions(node):
    """The classes and functions defined in `node`'s body (within `if` / `try` blocks too)."""
    found, pending = [], list(node.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(statement)
        elif isinstance(statement, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(statement, block, []))
        elif isinstance(statement, ast.ExceptHandler):
            pending.extend(statement.body)
    return found


def backend_of(module):
    """The backend a module of backend-specific code needs, else `None`."""
    package, _, name = module.rpartition(".")
    if package.endswith(".backend"):
        for backend in BACKENDS:
            if name == backend or name.startswith(f"{backend}_"):
                return backend
    return None


def examples():
    """One `pytest.param` per docstring holding a `>>>` example."""
    params = []
    for module, path in module_files():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        for qualname, docstring, line in docstrings(tree, module):
            if ">>>" not in docstring:
                continue
            marks = []
            if module.startswith(HOST_SIDE):
                marks.append(pytest.mark.backend_independent)
            elif qualname in COSTLY:
                marks.append(pytest.mark.spread_over_backends)
            params.append(pytest.param(module, docstring, path, line, id=qualname, marks=marks))
    return params


@pytest.mark.parametrize("module, docstring, path, line", examples())
def test_docstring_examples(module, docstring, path, line, request, tmp_path, monkeypatch):
    """The docstring's examples give the outputs they show."""
    backend = backend_of(module)
    if backend is not None and backend != keras.backend.backend():
        pytest.skip(f"{module} runs under the {backend} backend only")
    monkeypatch.chdir(tmp_path)
    registry = importlib.import_module("keras_mlcl.data.registry")
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))  # examples may register
    globs = {"keras": keras, "np": np, "keras_mlcl": importlib.import_module("keras_mlcl")}
    globs.update(vars(importlib.import_module(module)))
    name = request.node.callspec.id
    test = doctest.DocTestParser().get_doctest(docstring, globs, name, path, line - 1)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = []
    runner.run(test, out=report.append, clear_globs=True)
    if runner.failures:
        pytest.fail("".join(report), pytrace=False)


@pytest.mark.backend_independent
def test_every_example_is_collected():
    """Each `>>>` line of the sources lies in a collected docstring (none hides elsewhere)."""
    collected = {}
    for param in examples():
        _, docstring, path, _ = param.values
        collected[path] = collected.get(path, 0) + docstring.count(">>>")
    for _, path in module_files():
        with open(path, encoding="utf-8") as f:
            in_source = f.read().count(">>>")
        assert collected.get(path, 0) == in_source, path
