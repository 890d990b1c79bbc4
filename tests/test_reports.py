"""The lab summary and its HTML reports: computed from the records, readable offline in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

from labkit.deploy.netron import CHROMIUM_FLAGS, find_chromium
from labkit.records import load_records

COMMITTED = ROOT / "summaries" / "l03_pruning_clustering"
REPORTS = ["01_clustering", "02_pruning", "03_structured_pruning", "04_summary"]
SECTIONS = {"01_clustering": ["Weight clustering", "Deflate with ZIP", "Summary"],
            "02_pruning": ["Magnitude pruning", "Prune every variant", "Summary"],
            "03_structured_pruning": ["Structured pruning with NNI", "Speed up the model", "View the graphs in Netron"],
            "04_summary": ["Size against quality", "Which method dominates?", "Write the lab summary"]}


def test_summary_answers_the_four_questions_from_the_records(tiny_lab):
    readme = (tiny_lab["summary"] / "README.md").read_text()
    for question in ("compare on quality and speed", "How many times smaller", "What is ZIP deflation",
                     "Which method dominates"):
        assert question in readme
    records = {r["name"]: r for r in load_records(tiny_lab["results"])}
    for name in ("clustered-16-fp32", "pruned-0.5-fp32", "structured-0.5", "pruned-0.5-clustered-16-pcqat-int8"):
        assert f"**{name}**" in readme
        assert f"**{records[name]['size']['times_smaller']:.2f}×**" in readme
    assert "Layer weight shapes before and after pruning" in readme and "remain/total" in readme
    assert "**pruning+clustering+QAT**: mean deflation" in readme  # ZIP deflation explains the INT8 collaborative
    for method in ("pruning+clustering+QAT", "clustering+QAT"):  # a row each in "methods at a glance"
        assert re.search(rf"^\| {re.escape(method)} +\| +1 \|", readme, re.M), method


def test_summary_pictures_and_reports_are_beside_it(tiny_lab):
    summary = tiny_lab["summary"]
    readme = (summary / "README.md").read_text()
    for link in re.findall(r"\]\(([^)]+)\)", readme):
        assert (summary / link).is_file(), link
    assert len(list((summary / "images").glob("*-confusion-matrix.png"))) == len(load_records(tiny_lab["results"]))
    assert {f"{name}.html" for name in REPORTS} <= {p.name for p in summary.glob("*.html")}
    assert "sha256" in readme


@pytest.mark.parametrize("name", REPORTS)
def test_html_report_is_self_contained(tiny_lab, name):
    html = (tiny_lab["summary"] / f"{name}.html").read_text()
    assert not re.findall(r"""(?:src|href)=["']https?://""", html)
    assert "<img" in html and 'src="data:image/' in html


def open_offline(path: Path, screenshot: Path) -> dict:
    """Open an HTML report in headless Chromium with every request outside the file blocked; what it showed."""
    from playwright.sync_api import sync_playwright

    seen = {"failed": [], "outside": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else (seen["outside"].append(route.request.url), route.abort()))
        page.on("requestfailed", lambda request: seen["failed"].append(request.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        seen["broken"] = page.locator("img").evaluate_all(
            "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 60))")
        seen["images"] = page.locator("img").count()
        seen["frames"] = page.locator("iframe").count()
        seen["stderr"] = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count()
        seen["text"] = page.inner_text("body")
        page.screenshot(path=str(screenshot), full_page=False)
        browser.close()
    return seen


def assert_clean_offline(seen: dict, name: str) -> None:
    assert seen["outside"] == [] and seen["failed"] == []
    assert seen["images"] >= 1 and seen["broken"] == []
    assert seen["frames"] == 0  # a live view would be a dead frame offline
    assert seen["stderr"] == 0 and "warning" not in seen["text"].lower()
    assert "BEGIN SOLUTION" not in seen["text"] and "checks.task(" not in seen["text"]  # the lab, not the answer key
    assert not re.search(r"\d+%\|", seen["text"]), "a progress bar caught mid-way"
    for section in SECTIONS[name]:
        assert section in seen["text"]


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")
@pytest.mark.parametrize("name", REPORTS)
def test_html_report_in_a_browser_with_the_network_blocked(tiny_lab, name):
    path = tiny_lab["summary"] / f"{name}.html"
    assert_clean_offline(open_offline(path, path.with_suffix(".png")), name)


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")
@pytest.mark.parametrize("name", REPORTS)
def test_committed_html_report_is_clean_offline(name, tmp_path):
    assert_clean_offline(open_offline(COMMITTED / f"{name}.html", tmp_path / f"{name}.png"), name)


@pytest.mark.parametrize("name", REPORTS)
def test_notebook_output_has_no_stderr_no_warning_and_no_checkout_path(tiny_lab, name):
    import nbformat

    where = tiny_lab["root"] if name == "04_summary" else tiny_lab["results"]
    notebook = nbformat.read(str(where / "notebooks" / f"{name}.ipynb"), as_version=4)
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert outputs
    assert [o for o in outputs if o.get("name") == "stderr"] == []
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "warning" not in text.lower()
    assert not re.search(r"\d+%\|", text), "a progress bar caught mid-way"
    assert str(ROOT) not in text and "PosixPath(" not in text  # no checkout path, no stray return value of a path
