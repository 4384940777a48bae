"""Backend-specific code lives in two packages, each chosen once at import.

- `keras_mlcl/backend/`: what the library needs at run time (traced or known values,
  collectives, export, the native torch kernel);
- `keras_mlcl/bench/backend/`: what only the speed bench needs (compiled steps to time, their
  peak memory, library versions, the torch profiler, the peer library).

The other modules call these packages' functions: they neither import a backend library nor
compare the backend's name, except the few listed in `EXCEPTIONS` with the reason they need
it. The runtime package holds no bench helper.
"""

import ast
import os
from collections.abc import Iterator

import keras
import pytest

from keras_mlcl import backend
from keras_mlcl.bench import backend as bench_backend

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPOSITORY, "keras_mlcl")
BACKEND_FOLDER = os.path.join(PACKAGE, "backend")
BENCH_BACKEND_FOLDER = os.path.join(PACKAGE, "bench", "backend")
# Each backend package and its folder.
BACKEND_PACKAGES = {
    "runtime": (backend, BACKEND_FOLDER),
    "bench": (bench_backend, BENCH_BACKEND_FOLDER),
}
BACKEND_LIBRARIES = {"tensorflow", "jax", "jaxlib", "torch"}

# Path (from the repository root) -> why it may import TensorFlow or test the backend's name.
EXCEPTIONS = {
    "keras_mlcl/models/text_export.py": (
        "the text SavedModel holds TensorFlow tokenizer ops: it is written in-process on the "
        "TensorFlow backend, from a TensorFlow child process on the others"
    ),
    "keras_mlcl/models/search_endpoints.py": (
        "the SavedModel's search endpoints are TensorFlow graph code (string ids in "
        "tf.Variables), written in a TensorFlow-backend process"
    ),
    "keras_mlcl_launcher.py": "imports TensorFlow early to mute its start-up logging",
}


def _sources() -> list[str]:
    """The launcher and every module of the package outside the two backend folders."""
    paths = [os.path.join(REPOSITORY, "keras_mlcl_launcher.py")]
    for folder, _, files in os.walk(PACKAGE):
        if any(
            os.path.commonpath([folder, backend_folder]) == backend_folder
            for _, backend_folder in BACKEND_PACKAGES.values()
        ):
            continue
        paths += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    return sorted(paths)


def _parse(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def _imported_modules(tree: ast.AST) -> Iterator[str]:
    """The absolute names of the modules `tree` imports (`from a.b import c`: `a.b`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _imported_libraries(tree: ast.AST) -> Iterator[str]:
    yield from (module.partition(".")[0] for module in _imported_modules(tree))


def _is_backend_name(node: ast.AST) -> bool:
    """`keras.backend.backend()` or a backend's name as a string constant."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "backend" and ast.unparse(node.func).endswith("backend.backend")
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_backend_name(element) for element in node.elts)
    return isinstance(node, ast.Constant) and node.value in BACKEND_LIBRARIES


def _backend_tests(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            _is_backend_name(operand) for operand in [node.left, *node.comparators]
        ):
            yield node.lineno


def _public_functions(tree: ast.Module) -> set[str]:
    """The module's own top-level functions not starting with `_`."""
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


@pytest.mark.parametrize("kind", sorted(BACKEND_PACKAGES))
def test_the_active_backend_module_is_bound_at_import(kind: str) -> None:
    package, _ = BACKEND_PACKAGES[kind]
    assert package.name == keras.backend.backend()
    assert package.active.__name__ == f"{package.__name__}.{keras.backend.backend()}"
    for name in package.__all__:
        assert getattr(package, name) is getattr(package.active, name), name


@pytest.mark.backend_independent  # reads the source files
@pytest.mark.parametrize("kind", sorted(BACKEND_PACKAGES))
def test_every_backend_module_defines_the_whole_interface(kind: str) -> None:
    package, folder = BACKEND_PACKAGES[kind]
    for library in backend.BACKENDS:
        tree = _parse(os.path.join(folder, f"{library}.py"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        # Functions shared by several backends come from a module of the same folder.
        defined |= {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith(f"{package.__name__}.")
            for alias in node.names
        }
        assert set(package.__all__) <= defined, (library, set(package.__all__) - defined)
        # Each backend module holds only its own backend's code.
        others = BACKEND_LIBRARIES - {library, "jaxlib"}
        assert not others & set(_imported_libraries(tree)), library
        assert not list(_backend_tests(tree)), library


@pytest.mark.backend_independent  # reads the source files
def test_the_runtime_backend_holds_no_bench_helper() -> None:
    """Every public function of the runtime's backend modules is the runtime's interface, no
    bench helper among them, and none imports a profiler."""
    assert not set(backend.__all__) & set(bench_backend.__all__)
    for name in sorted(os.listdir(BACKEND_FOLDER)):
        if not name.endswith(".py") or name == "__init__.py":
            continue
        tree = _parse(os.path.join(BACKEND_FOLDER, name))
        profilers = [module for module in _imported_modules(tree) if "profiler" in module]
        assert not profilers, (name, profilers)
        if name[: -len(".py")] in backend.BACKENDS or name == "single_process.py":
            functions = _public_functions(tree)
            assert functions <= set(backend.__all__), (name, functions - set(backend.__all__))


@pytest.mark.backend_independent  # reads the source files
def test_no_module_outside_the_backend_folders_imports_or_tests_the_backend() -> None:
    found = {}
    for path in _sources():
        relative = os.path.relpath(path, REPOSITORY).replace(os.sep, "/")
        tree = _parse(path)
        libraries = BACKEND_LIBRARIES & set(_imported_libraries(tree))
        lines = list(_backend_tests(tree))
        if libraries or lines:
            found[relative] = (sorted(libraries), lines)
    unexpected = {path: what for path, what in found.items() if path not in EXCEPTIONS}
    assert not unexpected, f"backend-specific code outside the backend folders: {unexpected}"
    stale = set(EXCEPTIONS) - set(found)
    assert not stale, f"listed as exceptions but backend-neutral now: {stale}"
