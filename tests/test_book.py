"""The lab as a book: the executed notebooks and docs/ as one offline site (labkit.results.book), and the README's
sections in their documentation pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from labkit.errors import LabkitError
from labkit.results import book

OUTSIDE = re.compile(r"""(?:src|href)=["'](?:https?:)?//""")


def executed(cells: list) -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: markdown strings, and (source, output text) pairs as code cells."""
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        if isinstance(cell, str):
            nb.cells.append(nbformat.v4.new_markdown_cell(cell))
        else:
            code = nbformat.v4.new_code_cell(cell[0])
            code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=cell[1])]
            nb.cells.append(code)
    return nb


@pytest.fixture
def small_run(tmp_path) -> Path:
    """A results folder with an executed summary and one chapter, and the records they name."""
    results, seed = tmp_path / "results", tmp_path / "results" / "seed-42"
    for folder in (results / "notebooks", seed / "notebooks"):
        folder.mkdir(parents=True)
    for name, method in (("base-fp32", "none"), ("clustered-2-fp32", "clustering"),
                         ("pruned-0.5-clustered-2-fp32", "pruning+clustering")):
        (seed / f"{name}.json").write_text(json.dumps({"name": name, "method": method, "params": {}, "metrics": {}}))
    chapter = executed(["# Weight clustering\n\n## Overview\n\nWhat clustering does.", "## Train the base",
                        ("base = train()", "saved base-fp32"), "## Cluster every variant",
                        ("cluster(2)", "clustered-2-fp32 and pruned-0.5-clustered-2-fp32 written")])
    summary = executed(["# Lab summary\n\n## Overview\n\nThis notebook reads every record.", "## Setup",
                        ("import labkit", "the records of seed-42"), "## The answer",
                        ("answer()", "**clustered-2-fp32** is 14× smaller than base-fp32"),
                        "## Every comparison in one picture", ("plot()", "a picture"), "## Size against quality",
                        ("trade_off()", "see clustered-2-fp32.tflite and pruned-0.5-clustered-2-fp32")])
    nbformat.write(chapter, str(seed / "notebooks" / "01_clustering.ipynb"))
    nbformat.write(summary, str(results / "notebooks" / "04_summary.ipynb"))
    nbformat.write(summary, str(results / "notebooks" / "04_summary.running.ipynb"))  # a stopped run's leftover
    return results


def test_the_book_opens_with_the_answer_and_links_each_variant_to_where_it_was_made(small_run, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ray.md").write_text("# Sweeps on Ray\n\nEvery seed as a Ray task.\n")
    landing = book.build(small_run, [42], docs=docs, log=lambda line: None)
    site = landing.parent
    assert landing == small_run / "book" / "index.html"
    page = landing.read_text()
    text = re.sub(r"<[^>]+>", " ", page[page.index("<main"):])
    assert text.index("The answer") < text.index("Every comparison") < text.index("Setup")
    links = dict(re.findall(r'<a class="variant" href="([^"]+)">([^<]+)</a>', page)[::-1])
    assert set(links.values()) == {"clustered-2-fp32", "base-fp32", "pruned-0.5-clustered-2-fp32"}
    for href in links:
        target, anchor = href.split("#")
        assert f'id="{anchor}"' in (site / target).read_text(), href
    assert 'id="made-base-fp32"' in (site / "01_clustering.html").read_text().split('<section id="train-the-base">')[1]
    assert "clustered-2-fp32.tflite" in text  # a file name is not a variant name
    assert (site / "docs" / "ray.html").is_file() and "Sweeps on Ray" in page  # in the navigation
    assert (site / "searchindex.js").is_file()
    for html in site.rglob("*.html"):
        assert not OUTSIDE.findall(html.read_text()), html
    assert not list(site.rglob("*.map")) and not list(site.rglob("*.ipynb"))
    assert not (site / "04_summary.running.html").exists()


def test_a_run_without_its_summary_is_one_line_and_the_old_book_stays(small_run):
    old = small_run / "book" / "index.html"
    old.parent.mkdir()
    old.write_text("the book of an earlier run")
    (small_run / "notebooks" / "04_summary.ipynb").unlink()
    with pytest.raises(LabkitError, match="no executed summary: run the lab first"):
        book.build(small_run, [42], log=lambda line: None)
    assert old.read_text() == "the book of an earlier run"


def moved() -> dict[str, str]:
    """docs/readme-moved.md's table: {README heading before the book: where it lives now}."""
    rows = re.findall(r"^\| *(.+?) *\| *(.+?) *\|$", (ROOT / "docs" / "readme-moved.md").read_text(), re.M)
    return {heading: where for heading, where in rows[2:]}


def test_every_readme_heading_before_the_book_lives_on_in_a_page():
    headings = moved()
    assert len(headings) == 16 and "Fair comparisons" in headings and "Sweeps on Ray" in headings
    for heading, where in headings.items():
        if where.startswith("README.md"):
            assert heading in (ROOT / "README.md").read_text(), heading
            continue
        page = ROOT / "docs" / re.fullmatch(r"\[.+\]\((.+\.md)\)", where)[1]
        assert page.is_file() and page.read_text().startswith("# "), where


def test_the_readme_is_a_newcomers_page_and_every_docs_page_is_in_it():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make lab" in readme and "make test" in readme and "make book" in readme
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name
        assert not re.search(r"\]\(https?://", page.read_text()), f"{page.name} links outside the book"


@pytest.fixture(scope="module")
def served(tiny_lab):
    """The tiny lab's book over HTTP on 127.0.0.1, as `python -m http.server -d <book>` serves it."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tiny_lab["root"] / "book")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from labkit.deploy.netron import CHROMIUM_FLAGS, find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def visit(browser, url: str, site: str) -> dict:
    """Open one page with every request outside the site blocked; what it loaded, and its links inside the site."""
    seen: dict = {"outside": [], "failed": []}
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith((site, "data:", "blob:"))
               else (seen["outside"].append(route.request.url), route.abort()))
    page.on("requestfailed", lambda request: seen["failed"].append(request.url))
    page.goto(url, wait_until="load")
    seen["broken"] = page.locator("img").evaluate_all(
        "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(-60))")
    seen["links"] = page.locator("nav a.reference.internal").evaluate_all("links => links.map(a => a.href)")
    seen["page"] = page
    return seen


@pytest.mark.browser
def test_the_book_in_a_browser_every_page_clean_offline_and_the_answer_above_the_fold(tiny_lab, served, browser):
    first = visit(browser, served + "index.html", served)
    answer = first["page"].locator("#the-answer .cell_output").first
    assert answer.is_visible() and answer.bounding_box()["y"] + 40 < 800, "the answer is below the fold"
    assert "smallest at no measurable cost" in answer.inner_text().lower()
    pages = {link.split("#")[0] for link in first["links"]}
    chapters = {served + f"{stem}.html" for stem in book.CHAPTERS}
    docs = {served + f"docs/{p.stem}.html" for p in (ROOT / "docs").glob("*.md")}
    assert chapters | docs <= pages and len(docs) >= 10, "the navigation misses a chapter or a page"
    for url in sorted(pages | {served + "index.html"}):
        seen = first if url.endswith("/index.html") else visit(browser, url, served)
        assert seen["outside"] == [] and seen["failed"] == [] and seen["broken"] == [], url
        assert "BEGIN SOLUTION" not in seen["page"].inner_text("main"), url
        seen["page"].close()


@pytest.mark.browser
@pytest.mark.parametrize("query, page", [("clustered-16-fp32", "01_clustering.html"),
                                         ("McNemar", "docs/fair-comparisons.html")])
def test_the_books_search_finds_variants_and_documentation(tiny_lab, served, browser, query, page):
    seen = visit(browser, served + f"search.html?q={query}", served)
    results = seen["page"].locator("#search-results li a")
    results.first.wait_for(timeout=20_000)
    assert any(href.endswith(page) for href in results.evaluate_all("links => links.map(a => a.href)")), query
    assert seen["outside"] == [] and seen["failed"] == []
    seen["page"].close()


@pytest.mark.browser
def test_the_book_opens_from_the_file_system(tiny_lab, browser):
    landing = tiny_lab["root"] / "book" / "index.html"
    seen = visit(browser, landing.as_uri(), "file:")
    assert seen["outside"] == [] and seen["failed"] == [] and seen["broken"] == []
    assert seen["page"].locator("img").count() >= 1
    seen["page"].close()
