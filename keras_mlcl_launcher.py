"""Entry point of the `keras-mlcl` console script: parses the command line, then runs it.

It lives outside the `keras_mlcl` package because importing that package imports Keras (and,
through it, TensorFlow). The command line is parsed by `keras_mlcl.cli.parser`, which imports
the standard library and two modules of the package that do too (`LIGHT_MODULES`, the method
options' table among them); this module loads those from their files without the package's
`__init__` (`import_light`), so `--help`, `--version` and usage errors answer at once. For a
real command, TensorFlow (when installed) is then imported with stderr muted, under every
backend, since Keras imports it later anyway (tf.data input, SavedModel export): its C++
start-up logging, which no setting fully silences, never reaches the terminal, and the
command's own messages, errors included, stand alone on stderr. The commands themselves are in
`keras_mlcl.cli.main`.
"""

import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

# The modules of `keras_mlcl` that parsing needs, each importing only the standard library and
# the modules before it here.
LIGHT_MODULES = ("keras_mlcl.version", "keras_mlcl.experiments.options", "keras_mlcl.cli.parser")


def import_light(name: str) -> ModuleType:
    """Imports the module `name` of `keras_mlcl` without running the package's `__init__`.

    `import keras_mlcl.cli.parser` would run `keras_mlcl/__init__.py`, which imports Keras.
    The module is loaded from its file instead, and entered in `sys.modules` under its own
    name, so that a later import of it, once the package is imported, finds this same module.
    Its own imports of `keras_mlcl` modules should be loaded so before it.

    Args:
        name: a module of the package, e.g. `"keras_mlcl.cli.parser"`.

    Returns:
        The module.
    """
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("keras_mlcl")  # finds the package, runs nothing
    if package is None or not package.submodule_search_locations:
        raise ImportError("The keras_mlcl package is not installed.")
    folder = list(package.submodule_search_locations)[0]
    path = os.path.join(folder, *name.split(".")[1:]) + ".py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load {name} from {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow, if installed, and finds its devices with the process's stderr muted.

    Its C++ start-up logging (oneDNN, CPU features, CUDA) goes to a muted stderr then, once.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()  # CUDA's start-up lines, if any, come now
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def run(argv: Sequence[str] | None = None) -> int:
    """Parses `argv` (exits 0 on --help/--version, 2 on a usage error), then runs the command.

    An interrupt (Ctrl-C) while the libraries load is one line on stderr and exit code 130, as
    it is while the command runs (`keras_mlcl.cli.main.run_command`).

    Returns:
        The exit code.
    """
    try:
        for name in LIGHT_MODULES:
            import_light(name)
        args = import_light("keras_mlcl.cli.parser").parse_arguments(argv)
        import_tensorflow_quietly()
        from keras_mlcl.cli.main import run_command
    except KeyboardInterrupt:
        print(
            "keras-mlcl: interrupted before the command started; nothing was written",
            file=sys.stderr,
        )
        return 130
    return run_command(args)


def main() -> None:
    """The `keras-mlcl` console script: `run` with `sys.argv`, its code as the exit status."""
    sys.exit(run())
