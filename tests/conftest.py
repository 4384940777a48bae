"""Shared fixtures, and which tests run on which backend of a `make test` run.

`scripts/test_backends.sh` runs pytest once per backend and names them all in
`KERAS_MLCL_TEST_BACKENDS` (e.g. "torch tensorflow jax"). Within such a run:

- a test marked `backend_independent` (host-side logic: files and run folders,
  parsing, data loaders, NumPy metrics, where any training is incidental; or
  child processes that set their backend themselves) runs once, under the first
  backend of the list;
- a test marked `spread_over_backends` (plumbing above the backend: an example
  script, one variant of a command) runs once, the i-th such test of its module
  under backend i mod n of the list;
- every other test runs under every backend.

A plain `pytest` (the variable unset, or naming other backends) runs every test
under the active backend. The summary lists the tests that took over
`SLOW_SECONDS` with the first line of their docstring: such a test should say
why it costs that much.
"""

import collections
import os
import shutil
import tempfile

import keras
import pytest
from hypothesis import settings

from tests.testing import runs_on_this_backend

settings.register_profile("keras_mlcl", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("keras_mlcl")

# The real CLINC150 and MULAN files, beside the repository (not shipped with it).
SHARED_DATA = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)
SLOW_SECONDS = 10.0
ITEMS = pytest.StashKey[dict]()


def pytest_configure(config):
    if keras.backend.backend() == "jax":
        _compile_jax_quickly(config)


def _compile_jax_quickly(config):
    """Cuts the JAX tests' compile time, their main cost (tiny arrays, many programs).

    - XLA's CPU backend at optimization level 0: LLVM's passes cost more than
      they save on arrays of a few hundred numbers (the models, ops, losses and
      kernel tests: 179 s -> 150 s here). Set before JAX starts its backend.
    - JAX's persistent compilation cache, in a folder of this run only: Keras
      compiles a new `jax.jit` function for every model, and identical models
      in different tests compile to identical programs, which the cache serves
      after the first (the model tests: 93 s -> 72 s here). The folder is
      removed when the run ends.
    """
    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()
    folder = tempfile.mkdtemp(prefix="keras-mlcl-jax-cache-")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_collection_modifyitems(config, items):
    config.stash[ITEMS] = {item.nodeid: item for item in items}
    kept, dropped, spread = [], [], collections.Counter()
    for item in items:
        if item.get_closest_marker("spread_over_backends"):  # before a module's own mark
            runs_here = runs_on_this_backend(spread[item.module.__name__])
            spread[item.module.__name__] += 1
        elif item.get_closest_marker("backend_independent"):
            runs_here = runs_on_this_backend(0)
        else:
            runs_here = True
        (kept if runs_here else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


_durations = {}  # {nodeid: {"setup": s, "call": s, "teardown": s}}


def pytest_runtest_logreport(report):
    phases = _durations.setdefault(report.nodeid, {})
    phases[report.when] = phases.get(report.when, 0.0) + report.duration


def _reason(item, phases):
    """The first docstring line of the test; when its set-up cost more than the test itself,
    of one of its module- or session-scoped fixtures (shared work, such as a training run)."""
    sources = [getattr(item, "obj", None)]
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is not None and phases.get("setup", 0.0) > phases.get("call", 0.0):
        for name in fixtures.names_closure:
            for definition in fixtures.name2fixturedefs.get(name, ()):
                own = getattr(definition.func, "__module__", "").startswith("tests.")
                if own and definition.scope in ("module", "session"):
                    sources.insert(0, definition.func)
    for source in sources:
        doc = (getattr(source, "__doc__", None) or "").strip()
        if doc:
            return doc.splitlines()[0]
    return None


def pytest_terminal_summary(terminalreporter):
    totals = {nodeid: sum(phases.values()) for nodeid, phases in _durations.items()}
    slow = sorted((seconds, nodeid) for nodeid, seconds in totals.items() if seconds > SLOW_SECONDS)
    if not slow:
        return
    items = terminalreporter.config.stash.get(ITEMS, {})
    terminalreporter.section(f"tests over {SLOW_SECONDS:.0f} s and why")
    for seconds, nodeid in reversed(slow):
        reason = _reason(items[nodeid], _durations[nodeid]) if nodeid in items else None
        reason = reason or "NO REASON GIVEN: say in the docstring why it costs this much"
        terminalreporter.write_line(f"{seconds:6.1f}s {nodeid}: {reason}")


@pytest.fixture
def shared_data(monkeypatch):
    """The real datasets' folder, also set as `KERAS_MLCL_DATA`; skips when it is absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"the real datasets are not at {SHARED_DATA}")
    monkeypatch.setenv("KERAS_MLCL_DATA", SHARED_DATA)
    return SHARED_DATA


@pytest.fixture
def no_data_dir(monkeypatch):
    """A run as in a fresh clone: `KERAS_MLCL_DATA` unset."""
    monkeypatch.delenv("KERAS_MLCL_DATA", raising=False)


@pytest.fixture
def saved_figures(monkeypatch):
    """The matplotlib figures saved during a test, in order (they are still written)."""
    from matplotlib.figure import Figure

    figures = []
    save = Figure.savefig

    def record(figure, *args, **kwargs):
        figures.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures
