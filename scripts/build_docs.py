"""Builds the API reference site into `build/docs` (`make docs`); exits non-zero on any problem.

The site:

- `index.html`: the README (set-up, results, the command, a tour of the library);
- `docs/<page>.html`: the pages of `docs/` (the kernel, scaling, benchmarks), with the images
  and files they link to copied beside them;
- the API reference, rendered by pdoc from the docstrings (Google style): `keras_mlcl.html`,
  a page per package its `__all__` names, and `keras_mlcl.experiments` and `keras_mlcl.bench`
  (the functions behind the command). Backticked `keras_mlcl....` names in the pages link to
  their reference entry.

Every problem is listed, and any makes the build fail:

- a warning of pdoc, or of keras-mlcl's own code, while importing or rendering (a module that
  fails to import, an `__all__` name that does not resolve, an annotation pdoc cannot parse, an
  include that fails); other libraries' warnings at import are not ours and are left alone;
- a module, class, function or method of the reference without a docstring (methods of Keras'
  own protocol, such as `call` and `get_config`, excepted: their contract is Keras');
- a backticked `keras_mlcl....` name, in the package's sources or a page, that does not resolve;
- a relative link of a page to a file that does not exist.

Usage: python scripts/build_docs.py [OUT]     (OUT defaults to build/docs)
"""

import importlib
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The file that marks a folder as a build of this script, which a new build may replace.
MARKER = ".keras-mlcl-docs"
MODULES = ("keras_mlcl", "keras_mlcl.experiments", "keras_mlcl.bench")
PAGES = ("README.md", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md")))
KERAS_METHODS = {
    "build",
    "build_from_config",
    "call",
    "compile_from_config",
    "compute_output_shape",
    "compute_output_spec",
    "from_config",
    "get_build_config",
    "get_compile_config",
    "get_config",
}
REFERENCE = re.compile(r"`(keras_mlcl(?:\.[A-Za-z_]\w*)+)(?:\(\))?`")
CODE_REFERENCE = re.compile(r"<code>(keras_mlcl(?:\.[A-Za-z_]\w*)+)(\(\))?</code>")
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
OUR_FILES = (str(ROOT / "keras_mlcl"), str(ROOT / "scripts"))

PAGE_TEMPLATE = """{% extends "frame.html.jinja2" %}
{% block title %}{{ title }} &ndash; keras-mlcl{% endblock %}
{% block nav %}
    <h2>keras-mlcl</h2>
    {{ guide | safe }}
    {% if toc %}<h2>Contents</h2>{{ toc | safe }}{% endif %}
{% endblock %}
{% block content %}
    <main class="pdoc"><section class="module-info"><div class="docstring">
    {{ body | safe }}
    </div></section></main>
{% endblock %}
"""
# The reference pages, with the guide (the pages and the reference's root) atop their menu.
MODULE_TEMPLATE = """{% extends "default/module.html.jinja2" %}
{% block nav_title %}
    {{ super() }}
    <h2>keras-mlcl</h2>
    {{ guide | replace("HREF_PREFIX", "../" * module.modulename.count(".")) | safe }}
{% endblock %}
"""


def page_output(page):
    """Where a page of the repository (`README.md`, `docs/kernel.md`) is written in the site."""
    return "index.html" if page == "README.md" else page[: -len(".md")] + ".html"


def relative_href(source, target):
    """The link from the site file `source` to the site file `target` (both relative paths)."""
    return os.path.relpath(target, os.path.dirname(source) or ".").replace(os.sep, "/")


def guide_links(prefix):
    """The menu of the pages and of the reference root, each href starting with `prefix`."""
    items = []
    for page in PAGES:
        items.append(f'<li><a href="{prefix}{page_output(page)}">{page_title(page)}</a></li>')
    for name in MODULES:
        href = f"{prefix}{name.replace('.', '/')}.html"
        items.append(f'<li><a href="{href}"><code>{name}</code> (reference)</a></li>')
    return "<ul>" + "".join(items) + "</ul>"


def page_title(page):
    """The first `# ` heading of a page."""
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page


def resolves(name):
    """Whether the dotted name `keras_mlcl.x.y` is an importable module or an object in one."""
    parts = name.split(".")
    for size in range(len(parts), 0, -1):
        module_name = ".".join(parts[:size])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:  # this module or one of its parents is missing
            if error.name is not None and (module_name + ".").startswith(error.name + "."):
                continue
            raise
        for attribute in parts[size:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def broken_references(texts):
    """`(where, name)` of each backticked `keras_mlcl....` name of `texts` that does not resolve.

    Args:
        texts: `{where: text}`, e.g. `{"keras_mlcl/data/npz.py": source}`.
    """
    broken = []
    for where, text in texts.items():
        for name in sorted(set(REFERENCE.findall(text))):
            if not resolves(name):
                broken.append((where, name))
    return broken


def missing_docstrings(modules):
    """The full names of the modules, classes, functions and methods of the reference that
    have no docstring (each object once, under the name that defines it)."""
    missing, seen = [], set()

    def check(doc):
        if doc.taken_from in seen:
            return
        seen.add(doc.taken_from)
        if not doc.docstring.strip():
            missing.append(".".join(part for part in doc.taken_from if part))

    for module in modules.values():
        check(module)
        for member in module.members.values():
            if member.name.startswith("_") or member.kind not in ("class", "function"):
                continue
            check(member)
            if member.kind != "class":
                continue
            for method in member.own_members:
                public = not method.name.startswith("_") and method.name not in KERAS_METHODS
                if public and method.kind == "function":
                    check(method)
    return sorted(missing)


def warnings_of(caught):
    """The messages of the warnings of `caught` raised by pdoc or by keras-mlcl's code."""
    pdoc_folder = os.path.dirname(importlib.import_module("pdoc").__file__)
    ours = [w for w in caught if str(w.filename).startswith((pdoc_folder, *OUR_FILES))]
    return [f"warning: {w.message}" for w in ours]


def site_links(modules, source):
    """A function that turns `<code>keras_mlcl.x.y</code>` of the page written at `source`
    into a link to its entry of the reference, when the reference has one."""

    def link(match):
        name, call = match.group(1), match.group(2) or ""
        parts = name.split(".")
        for size in range(len(parts), 0, -1):
            module = modules.get(".".join(parts[:size]))
            if module is None:
                continue
            qualname = ".".join(parts[size:])
            if qualname and module.get(qualname) is None:
                return match.group(0)
            target = relative_href(source, module.modulename.replace(".", "/") + ".html")
            anchor = f"#{qualname}" if qualname else ""
            return f'<a href="{target}{anchor}"><code>{name}{call}</code></a>'
        return match.group(0)

    return link


def render_page(page, out, modules, problems):
    """Writes the site's HTML of `page` (a Markdown file of the repository), copies what it links
    to, and adds each broken link to `problems`."""
    from pdoc import render
    from pdoc.render_helpers import to_html

    source = page_output(page)
    folder = (ROOT / page).parent

    def rewrite(match):
        target = match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _, fragment = target.partition("#")
        resolved = (folder / path).resolve()
        if not resolved.exists() or ROOT not in resolved.parents:
            problems.append(f"{page}: the link {target!r} points to no file of the repository")
            return match.group(0)
        relative = resolved.relative_to(ROOT).as_posix()
        if relative in PAGES:
            href = relative_href(source, page_output(relative))
            return f"{match.group(1)}{href}{'#' + fragment if fragment else ''}{match.group(3)}"
        copy = out / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        if resolved.is_dir():
            shutil.copytree(resolved, copy, dirs_exist_ok=True)
        else:
            shutil.copyfile(resolved, copy)
        return match.group(0)

    markdown = LINK.sub(rewrite, (ROOT / page).read_text(encoding="utf-8"))
    html = to_html(markdown)
    body = CODE_REFERENCE.sub(site_links(modules, source), str(html))
    prefix = relative_href(source, "index.html")[: -len("index.html")]
    template = render.env.from_string(PAGE_TEMPLATE)
    text = template.render(
        title=page_title(page), guide=guide_links(prefix), toc=html.toc_html, body=body
    )
    (out / source).parent.mkdir(parents=True, exist_ok=True)
    (out / source).write_text(text, encoding="utf-8")


def build(out):
    """Builds the site into `out` (emptied first) and returns the list of problems."""
    import jinja2
    import pdoc.doc
    import pdoc.extract
    from pdoc import render

    # Python's `platform` runs `uname -p` when a library asks for the processor at import;
    # pdoc blocks (and warns about) commands run at import unless allowed.
    os.environ.setdefault("PDOC_ALLOW_EXEC", "1")
    render.configure(docformat="google", show_source=True, search=True)
    render.env.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"module.html.jinja2": MODULE_TEMPLATE}), render.env.loader]
    )
    render.env.globals["guide"] = guide_links("HREF_PREFIX")
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = list(pdoc.extract.walk_specs(MODULES))
        modules = {name: pdoc.doc.Module.from_name(name) for name in names}
        final, out = out, out.parent / f".{out.name}.building-{os.getpid()}"
        out.mkdir(parents=True)
        (out / MARKER).write_text("written by scripts/build_docs.py\n", encoding="utf-8")
        for module in modules.values():
            path = out / f"{module.modulename.replace('.', '/')}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render.html_module(module, modules), encoding="utf-8")
        search = render.search_index(modules)
        if search:
            (out / "search.js").write_text(search, encoding="utf-8")
        for page in PAGES:
            render_page(page, out, modules, problems)
    replace_folder(out, final)
    problems.extend(warnings_of(caught))
    for name in missing_docstrings(modules):
        problems.append(f"no docstring: {name}")
    texts = {page: (ROOT / page).read_text(encoding="utf-8") for page in PAGES}
    for path in sorted((ROOT / "keras_mlcl").rglob("*.py")):
        texts[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    for where, name in broken_references(texts):
        problems.append(f"{where}: `{name}` does not resolve")
    return problems


def check_output_folder(out: Path) -> None:
    """Refuses a non-empty `out` that an earlier build did not write (it may be the user's)."""
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise SystemExit(
            f"docs: {out} exists and was not written by this script; give a new folder "
            "(nothing was changed)"
        )


def replace_folder(new: Path, out: Path) -> None:
    """Puts the finished build `new` at `out`, then removes the build it replaced."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    new.rename(out)
    if old.exists():
        shutil.rmtree(old)


def main(argv):
    started = time.time()
    out = (Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "docs").resolve()
    check_output_folder(out)
    problems = build(out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"docs: {len(problems)} problem(s); see above", file=sys.stderr)
        return 1
    print(f"docs: {out}/index.html, built in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
