"""The executed lab as a book: one offline, searchable site of a run's notebooks and the documentation pages.

Sphinx with myst-nb and the book theme reads the executed notebooks as they are (nothing runs again, nothing is
fetched: Jupyter Book 2 downloads its theme at build time, so it is not used). The landing page is the summary with
its answer first; the chapters follow in the lab's order; every variant name on the landing page links to the cell of
the chapter whose output first shows it, which is where its notebook made it. The notebooks get the same cleaning as
the HTML reports (labkit.results.html).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.paths import ROOT, shown

DOCS = ROOT / "docs"
CHAPTERS = ("01_clustering", "02_pruning", "03_structured_pruning")
SUMMARY = "04_summary"
FIRST = ("The answer", "Every comparison in one picture")  # the summary's sections that open the landing page
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
SKIPPED = {"a", "script", "style", "title", "head", "textarea"}  # elements whose text gets no variant link
CONF = '''\
project = {title!r}
html_title = {title!r}
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
nb_execution_mode = "off"
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {{"home_page_in_toc": True, "show_toc_level": 2, "use_download_button": False,
                      "use_fullscreen_button": False, "navigation_with_keys": False}}
exclude_patterns = ["_build"]
'''


def build(results_dir: Path, seeds: list[int] | None = None, book_dir: Path | None = None, docs: Path = DOCS,
          log=print) -> Path:
    """Build the book of a run into book_dir (default `<results>/book`) and return its landing page. The previous
    book stays in place until the new one is complete."""
    from labkit.results.html import reported
    from labkit.results.seeds import seeds_in

    results_dir = Path(results_dir)
    found = {p.stem: p for p in reported(results_dir, seeds or seeds_in(results_dir) or [42])}
    if SUMMARY not in found:
        raise LabkitError(f"{shown(results_dir)} has no executed summary: run the lab first "
                          "(`python -m labkit run`), or name a results folder that has one")
    book_dir = Path(book_dir or results_dir / "book")
    book_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="book-", suffix=".part", dir=book_dir.parent) as tmp:
        source, site = Path(tmp) / "source", Path(tmp) / "site"
        homes = _write_sources(found, docs, source)
        _sphinx(source, site, log)
        _link_variants(site / "index.html", homes)
        for junk in [*site.rglob("*.map"), site / ".buildinfo", site / ".doctrees"]:
            shutil.rmtree(junk) if junk.is_dir() else junk.unlink(missing_ok=True)
        if book_dir.exists():
            shutil.rmtree(book_dir)
        site.rename(book_dir)
    log(f"book {book_dir / 'index.html'}")
    return book_dir / "index.html"


def _write_sources(found: dict[str, Path], docs: Path, source: Path) -> dict[str, str]:
    """Write the cleaned notebooks, the documentation pages and conf.py; return {variant: link to where it was
    made}."""
    import nbformat

    from labkit.results.html import lab_view

    source.mkdir(parents=True)
    chapters = [stem for stem in CHAPTERS if stem in found]
    pages = _copy_docs(docs, source)
    homes: dict[str, str] = {}
    names = _variant_names(found)
    for stem in chapters:
        nb = lab_view(nbformat.read(str(found[stem]), as_version=4))
        homes.update(mark_variants(nb, stem, [n for n in names if n not in homes]))
        nbformat.write(nb, str(source / f"{stem}.ipynb"))
    summary = lab_view(nbformat.read(str(found[SUMMARY]), as_version=4))
    nbformat.write(landing_page(summary, chapters, pages), str(source / "index.ipynb"))
    title = summary.cells[0].source.splitlines()[0].lstrip("# ") if summary.cells else "labkit"
    (source / "conf.py").write_text(CONF.format(title=title))
    return homes


def _variant_names(found: dict[str, Path]) -> list[str]:
    """The names of the run's variants, longest first (so that a name never links inside a longer one)."""
    from labkit.records import load_records

    folders = {p.parent.parent for p in found.values()}
    names = {r["name"] for folder in folders for r in load_records(folder)}
    return sorted(names, key=len, reverse=True)


def _copy_docs(docs: Path, source: Path) -> list[str]:
    """Copy the documentation pages, and the project's images they show, to where their links expect them."""
    pages = []
    for page in _in_readme_order(sorted(Path(docs).glob("*.md")) if Path(docs).is_dir() else []):
        target = source / "docs" / page.name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(page, target)
        pages.append(f"docs/{page.stem}")
        for link in IMAGE.findall(page.read_text()):
            image = (page.parent / link).resolve()
            if image.is_file() and image.is_relative_to(ROOT):
                (source / image.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(image, source / image.relative_to(ROOT))
    return pages


def _in_readme_order(pages: list[Path]) -> list[Path]:
    """The pages in the order the README lists them (its Documentation section), any other after them."""
    readme = (ROOT / "README.md").read_text() if (ROOT / "README.md").is_file() else ""
    listed = re.findall(r"\(docs/([\w-]+\.md)\)", readme.partition("## Documentation")[2])
    return sorted(pages, key=lambda p: listed.index(p.name) if p.name in listed else len(listed))


def _text(cell: Any) -> str:
    """Everything a code cell's outputs show, as text."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts += [str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


def mark_variants(nb: Any, stem: str, names: list[str]) -> dict[str, str]:
    """Put an anchor before the cell whose output first shows each name; return {name: "<stem>.html#<anchor>"}."""
    import nbformat

    homes: dict[str, str] = {}
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            text = _text(cell)
            if new := [n for n in names if n not in homes and _mentions(text, n)]:
                anchors = "".join(f'<span id="{anchor(n)}"></span>' for n in new)
                cells.append(nbformat.v4.new_markdown_cell(anchors))
                homes.update({n: f"{stem}.html#{anchor(n)}" for n in new})
        cells.append(cell)
    nb.cells = cells
    return homes


def anchor(name: str) -> str:
    """The HTML id of the place a variant was made."""
    return "made-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text) is not None


def landing_page(nb: Any, chapters: list[str], pages: list[str]) -> Any:
    """The summary as the book's first page: its title, then the answer and its picture, then the rest; code folded
    away; the chapters and documentation pages in the navigation."""
    import nbformat

    title, *rest = nb.cells[0].source.split("\n", 1) if nb.cells else ("# Lab summary", "")
    head = [nbformat.v4.new_markdown_cell(title)]
    cells = ([nbformat.v4.new_markdown_cell(rest[0].strip())] if rest and rest[0].strip() else []) + nb.cells[1:]
    sections, current = [], []
    for cell in cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## ") and current:
            sections.append(current)
            current = []
        current.append(cell)
    sections.append(current)
    first = [s for s in sections if s and s[0].source.startswith(tuple(f"## {h}" for h in FIRST))]
    ordered = [cell for section in first + [s for s in sections if s not in first] for cell in section]
    for cell in ordered:
        if cell.cell_type == "code":
            cell.metadata.setdefault("tags", []).append("hide-input")
    toc = [_toctree("The lab", chapters)] + ([_toctree("Documentation", pages)] if pages else [])
    nb.cells = head + ordered + [nbformat.v4.new_markdown_cell("\n\n".join(toc))]
    return nb


def _toctree(caption: str, entries: list[str]) -> str:
    return "\n".join(["```{toctree}", ":hidden:", f":caption: {caption}", "", *entries, "```"])


def _sphinx(source: Path, site: Path, log) -> None:
    """Run Sphinx on the sources; its warnings are relayed, a failure is one line."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(site / ".doctrees"), str(source),
               str(site)]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stderr.splitlines():
        log(f"book: {line.replace(str(source) + '/', '')}")
    if done.returncode:
        raise LabkitError(f"the book did not build (Sphinx exit {done.returncode}): {done.stderr.strip()[-300:]}")


def _link_variants(page: Path, homes: dict[str, str]) -> None:
    """Link every variant name in the page's text (not inside links, scripts or titles) to where it was made."""
    if not homes:
        return
    names = sorted(homes, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(html.escape(n)) for n in names) + r")(?![\w.-])")
    parts, inside = re.split(r"(<[^>]+>)", page.read_text()), []
    for i, part in enumerate(parts):
        if part.startswith("<"):
            tag = re.match(r"</?\s*([a-zA-Z0-9]+)", part)
            if tag and tag.group(1).lower() in SKIPPED and not part.endswith("/>"):
                if part.startswith("</"):
                    inside = inside[:-1] if inside else inside
                else:
                    inside.append(tag.group(1).lower())
        elif not inside and part.strip():
            parts[i] = pattern.sub(lambda m: f'<a class="variant" href="{homes[html.unescape(m.group(1))]}">'
                                             f"{m.group(1)}</a>", part)
    page.write_text("".join(parts))
