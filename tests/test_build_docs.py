"""The checks of `scripts/build_docs.py` (which `make docs` and `make test` run) catch what they
should: a missing docstring, a reference that does not resolve, a broken link, a pdoc warning."""

import importlib.util
import os
import sys
import textwrap
import warnings

import pytest

pytestmark = pytest.mark.backend_independent

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "build_docs.py")


@pytest.fixture(scope="module")
def build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """Makes a module `name` with the given source (a name per test: pdoc caches modules by
    name), and returns its pdoc documentation as `{name: module}`."""
    import pdoc.doc

    def make(name, source):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return {name: pdoc.doc.Module.from_name(name)}

    return make


def test_missing_docstrings_are_listed(build_docs, toy_module):
    modules = toy_module(
        "toy_undocumented_members",
        '''
        """A module."""

        import keras


        def documented():
            """Documented."""


        def undocumented():
            pass


        def _private():
            pass


        class Head(keras.layers.Layer):
            """A layer."""

            def call(self, inputs):
                return inputs

            def project(self, inputs):
                return inputs
        ''',
    )
    assert build_docs.missing_docstrings(modules) == [
        "toy_undocumented_members.Head.project",
        "toy_undocumented_members.undocumented",
    ]


def test_an_undocumented_module_is_listed(build_docs, toy_module):
    modules = toy_module("toy_undocumented_module", "x = 1\n")
    assert build_docs.missing_docstrings(modules) == ["toy_undocumented_module"]


def test_pdoc_warnings_are_problems(build_docs, toy_module):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modules = toy_module("toy_bad_all", '"""A module."""\n__all__ = ["missing"]\n')
        assert list(modules["toy_bad_all"].members) == ["missing"]
        warnings.warn("a library's own warning", UserWarning, stacklevel=1)
    problems = build_docs.warnings_of(caught)
    assert len(problems) == 1
    assert problems[0].startswith("warning: Found 'missing' in toy_bad_all.__all__")


def test_references_resolve_to_modules_and_objects(build_docs):
    texts = {
        "good": "`keras_mlcl.data`, `keras_mlcl.data.load_npz()`, `keras_mlcl.ops.l2_normalize`",
        "bad": "`keras_mlcl.data.load_nothing` and `keras_mlcl.no_such_module.f`",
    }
    assert build_docs.broken_references(texts) == [
        ("bad", "keras_mlcl.data.load_nothing"),
        ("bad", "keras_mlcl.no_such_module.f"),
    ]


def test_a_page_with_a_broken_link_is_a_problem(build_docs, tmp_path, monkeypatch):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text("# Page\n\n![plot](missing.png) and [kernel](kernel.md)\n", encoding="utf-8")
    monkeypatch.setattr(build_docs, "ROOT", tmp_path)
    monkeypatch.setattr(build_docs, "PAGES", ("docs/page.md",))
    problems = []
    build_docs.render_page("docs/page.md", tmp_path / "site", {}, problems)
    assert problems == [
        "docs/page.md: the link 'missing.png' points to no file of the repository",
        "docs/page.md: the link 'kernel.md' points to no file of the repository",
    ]
    assert (tmp_path / "site" / "docs" / "page.html").is_file()


def test_links_to_pages_become_links_to_their_html(build_docs, tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Top\n\n[the kernel](docs/kernel.md#blocks)\n")
    (tmp_path / "docs" / "kernel.md").write_text("# Kernel\n\n![plot](plot.png)\n")
    (tmp_path / "docs" / "plot.png").write_bytes(b"png")
    monkeypatch.setattr(build_docs, "ROOT", tmp_path)
    monkeypatch.setattr(build_docs, "PAGES", ("README.md", "docs/kernel.md"))
    problems = []
    for page in build_docs.PAGES:
        build_docs.render_page(page, tmp_path / "site", {}, problems)
    assert problems == []
    assert 'href="docs/kernel.html#blocks"' in (tmp_path / "site" / "index.html").read_text()
    assert (tmp_path / "site" / "docs" / "plot.png").read_bytes() == b"png"


def test_a_folder_it_did_not_write_is_refused_and_its_own_is_replaced(build_docs, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("# my notes\n")
    with pytest.raises(SystemExit, match="was not written by this script"):
        build_docs.check_output_folder(mine)
    assert (mine / "notes.md").read_text() == "# my notes\n"
    build_docs.check_output_folder(tmp_path / "new")  # absent, or empty: fine
    ours, new = tmp_path / "docs", tmp_path / ".docs.building"
    for folder, page in ((ours, "old.html"), (new, "index.html")):
        folder.mkdir()
        (folder / build_docs.MARKER).write_text("")
        (folder / page).write_text("")
    build_docs.check_output_folder(ours)
    build_docs.replace_folder(new, ours)
    assert sorted(p.name for p in ours.iterdir()) == [build_docs.MARKER, "index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "mine"]
