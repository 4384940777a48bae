"""Backend-specific code lives in `keras_mlcl/backend/`, chosen once at import.

The other modules call `keras_mlcl.backend`'s functions: they neither import
a backend library nor compare the backend's name, except the few listed in
`EXCEPTIONS` with the reason they need it.
"""

import ast
import os

import keras
import pytest

from keras_mlcl import backend

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPOSITORY, "keras_mlcl")
BACKEND_FOLDER = os.path.join(PACKAGE, "backend")
BACKEND_LIBRARIES = {"tensorflow", "jax", "jaxlib", "torch"}

# Path (from the repository root) -> why it may import TensorFlow or test the backend's name.
EXCEPTIONS = {
    "keras_mlcl/models/text_export.py": (
        "the text SavedModel holds TensorFlow tokenizer ops: it is written in-process on the "
        "TensorFlow backend, from a TensorFlow child process on the others"
    ),
    "keras_mlcl/bench/speed_cases.py": (
        "torch-only cases: the torch.compile mode and the pytorch-metric-learning peer"
    ),
    "keras_mlcl_launcher.py": "imports TensorFlow early to mute its start-up logging",
}


def _sources():
    paths = [os.path.join(REPOSITORY, "keras_mlcl_launcher.py")]
    for folder, _, files in os.walk(PACKAGE):
        if os.path.commonpath([folder, BACKEND_FOLDER]) == BACKEND_FOLDER:
            continue
        paths += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    return sorted(paths)


def _imported_libraries(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]


def _is_backend_name(node):
    """`keras.backend.backend()` or a backend's name as a string constant."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "backend" and ast.unparse(node.func).endswith("backend.backend")
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_backend_name(element) for element in node.elts)
    return isinstance(node, ast.Constant) and node.value in BACKEND_LIBRARIES


def _backend_tests(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            _is_backend_name(operand) for operand in [node.left, *node.comparators]
        ):
            yield node.lineno


def test_the_active_backend_module_is_bound_at_import():
    assert backend.name == keras.backend.backend()
    assert backend.active.__name__ == f"keras_mlcl.backend.{keras.backend.backend()}"
    for name in backend.__all__:
        assert getattr(backend, name) is getattr(backend.active, name), name


@pytest.mark.backend_independent  # reads the source files
def test_every_backend_module_defines_the_whole_interface():
    for library in backend.BACKENDS:
        with open(os.path.join(BACKEND_FOLDER, f"{library}.py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        # Functions shared by several backends come from a module of this folder.
        defined |= {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("keras_mlcl.backend.")
            for alias in node.names
        }
        assert set(backend.__all__) <= defined, (library, set(backend.__all__) - defined)
        # Each backend module holds only its own backend's code.
        others = BACKEND_LIBRARIES - {library, "jaxlib"}
        assert not others & set(_imported_libraries(tree)), library
        assert not list(_backend_tests(tree)), library


@pytest.mark.backend_independent  # reads the source files
def test_no_module_outside_the_backend_folder_imports_or_tests_the_backend():
    found = {}
    for path in _sources():
        relative = os.path.relpath(path, REPOSITORY).replace(os.sep, "/")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        libraries = BACKEND_LIBRARIES & set(_imported_libraries(tree))
        lines = list(_backend_tests(tree))
        if libraries or lines:
            found[relative] = (sorted(libraries), lines)
    unexpected = {path: what for path, what in found.items() if path not in EXCEPTIONS}
    assert not unexpected, f"backend-specific code outside keras_mlcl/backend/: {unexpected}"
    stale = set(EXCEPTIONS) - set(found)
    assert not stale, f"listed as exceptions but backend-neutral now: {stale}"
