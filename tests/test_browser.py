"""The workbook in a real browser: JupyterLab and Netron driven by Playwright with Debian's Chromium.

One JupyterLab per module, with a base URL (as on JupyterHub), serving copies of the notebooks from a temporary
folder. The browser reaches it under another host name (`labhost`) and every request to anything else is
blocked, as for a user whose JupyterLab runs on another machine: the live Netron view must come through the
Jupyter server. `LABKIT_SCREENSHOTS=<folder>` also saves the README's screenshots there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import DEBIAN_FASHION, ROOT, jupyterlab
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from labkit import netron
from labkit.netron import CHROMIUM_FLAGS, find_chromium, free_port

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")]
NOTEBOOKS = ["01_clustering", "02_pruning", "03_structured_pruning", "04_summary"]
TINY = {"train_samples": 300, "base_epochs": 1, "fine_tune_epochs": 1, "training_batches": 200,
        "test_dataset_fraction": 0.05}
HOST, TOKEN, BASE = "labhost", "labkit-browser-test", "/labkit/"
GRAPH = "body.default #canvas .graph-node"  # Netron has laid out the graph
SETTINGS = {"notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM, to read them all
            "apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"}}
SEEN_PROGRESS = """if (window.top === window) {
    new MutationObserver(() => {
        if (document.querySelector('.jp-OutputArea-output .widget-hprogress')) window.__labkitProgress = true;
    }).observe(document, {childList: true, subtree: true});
}"""


def tiny_copy(notebook: Path, dest: Path) -> Path:
    """A copy of a notebook whose parameters cell holds the tiny scale and folders beside the copy."""
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    folders = {"results_dir": str(dest.parent.parent / "results"), "models_dir": str(dest.parent.parent / "models")}
    for name, value in {**TINY, **folders}.items():
        source, found = re.subn(rf"^{name} = [^#\n]*", f"{name} = {value!r}  ", source, flags=re.M)
        assert found == 1, name
    cell["source"] = source
    dest.write_text(json.dumps(nb, indent=1))
    return dest


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on a free port, with a token and a base URL, serving the four notebooks."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root / "notebooks")
    tiny_copy(ROOT / "notebooks" / "03_structured_pruning.ipynb", root / "notebooks" / "03_structured_pruning.ipynb")
    for name, values in SETTINGS.items():
        path = root / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    options = (f"--ServerApp.local_hostnames=['localhost', '{HOST}']",
               f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}")
    with jupyterlab(root, *options, token=TOKEN, base_url=BASE) as lab:
        yield {**lab, "root": root, "url": f"http://{HOST}:{lab['port']}{BASE}"}


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(),
                                    args=[*CHROMIUM_FLAGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"])
        yield browser
        browser.close()


@pytest.fixture
def page(lab, chromium):
    """A fresh browser page that may only talk to the Jupyter server at labhost; `page.outside` lists the rest."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    origin = f"http://{HOST}:{lab['port']}/"
    outside: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin)
                  else (outside.append(route.request.url), route.abort()))
    context.add_init_script(SEEN_PROGRESS)
    page = context.new_page()
    page.outside = outside
    yield page
    context.close()
    for session in _api(lab, "sessions"):  # stop the kernels this test started
        _api(lab, f"sessions/{session['id']}", "DELETE")


def _api(lab: dict, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{lab['api']}/{path}", method=method,
                                     headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def open_notebook(page, lab: dict, name: str):
    """Open a notebook in the UI; return once all its cells show and its kernel is idle with the page connected.

    The kernel's readiness is read from the server, not from the status bar: now and then (about once in 90 opens
    here) the kernel's first status message goes out before the server has subscribed to it, and the status bar
    says "Unknown" until the first cell runs, although the kernel is idle and answers (jupyter_client#593).
    """
    page.goto(f"{lab['url']}lab/tree/notebooks/{name}.ipynb?reset&token={TOKEN}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    cells = json.loads((lab["root"] / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    expect(notebook.locator(".jp-Cell")).to_have_count(len(cells), timeout=60_000)
    deadline = time.monotonic() + 60
    while not (kernel := _kernel_of(lab, name)) or kernel["execution_state"] != "idle" or not kernel["connections"]:
        assert time.monotonic() < deadline, f"kernel of {name} not idle and connected: {_api(lab, 'sessions')}"
        page.wait_for_timeout(500)  # not time.sleep: the page's requests pass through our route handler meanwhile
    return notebook, cells


def _kernel_of(lab: dict, name: str) -> dict | None:
    return next((s["kernel"] for s in _api(lab, "sessions") if s["path"].endswith(f"{name}.ipynb")), None)


def screenshot(page, name: str, **options) -> None:
    if folder := os.environ.get("LABKIT_SCREENSHOTS"):
        page.screenshot(path=str(Path(folder) / f"{name}.png"), **options)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_opens_in_jupyterlab(page, lab, name):
    notebook, cells = open_notebook(page, lab, name)
    title = next(line for line in cells[0]["source"] if line.startswith("# "))[2:].strip()
    assert notebook.locator("h1").first.inner_text().strip().startswith(title)
    assert page.outside == []
    if name == "01_clustering":
        screenshot(page, "jupyterlab-notebook")


ALL_RAN = """() => {
    const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')];
    const errors = document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
    const ran = cells.filter(c => /^\\[\\d+\\]:$/.test(c.querySelector('.jp-InputPrompt').textContent.trim()));
    const idle = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) '
        + ".jp-Notebook-ExecutionIndicator[data-status='idle']");
    return (cells.length > 0 && ran.length === cells.length && idle !== null) || errors.length > 0;
}"""


def wait_until_all_ran(page, notebook, lab: dict, minutes: float = 10) -> None:
    """Wait until every code cell has run (or one shows an error); on time-out, fail naming the cell still running,
    the kernel's state and the end of the server's log: a hang says where it is."""
    try:
        page.wait_for_function(ALL_RAN, timeout=minutes * 60_000, polling=1000)
    except PlaywrightTimeout:
        busy = notebook.locator(".jp-CodeCell", has=page.locator(".jp-InputPrompt", has_text="[*]"))
        running = busy.first.locator(".jp-InputArea-editor").inner_text()[:400] if busy.count() else "none"
        log = (lab["root"] / "server.log").read_text()[-2000:]
        pytest.fail(f"not all cells ran in {minutes:g} min; running: {running!r}; sessions: {_api(lab, 'sessions')}; "
                    f"server log: {log}")


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_structured_pruning_runs_in_jupyterlab_and_netron_shows_the_graph(page, lab):
    notebook, _ = open_notebook(page, lab, "03_structured_pruning")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    wait_until_all_ran(page, notebook, lab)
    errors = notebook.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.all_inner_texts()
    stderr = notebook.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert stderr.count() == 0, stderr.all_inner_texts()  # no library noise in JupyterLab either
    assert page.evaluate("window.__labkitProgress === true"), "no widget progress bar was shown"

    live = notebook.locator(".jp-CodeCell", has=page.locator("iframe"))
    frame = live.locator("iframe")
    assert frame.get_attribute("src").startswith(f"{BASE}proxy/")
    netron_view = live.frame_locator("iframe")
    netron_view.locator(GRAPH).first.wait_for(state="attached", timeout=60_000)
    assert netron_view.locator("#message-text").inner_text() == ""  # no cookie or update notice
    assert page.outside == []  # nothing but the Jupyter server: no ipinfo.io, no telemetry, no direct port
    live.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-netron-live-view")


@pytest.fixture
def netron_built_long_ago(tmp_path, monkeypatch):
    """Netron's web page as if built on 2020-01-01: today is long past its 180 days."""
    static = tmp_path / "netron"
    static.mkdir()
    for file in netron._static_dir().iterdir():
        (static / file.name).symlink_to(file)
    (static / "index.html").unlink()
    page = (netron._static_dir() / "index.html").read_text(encoding="utf-8")
    (static / "index.html").write_text(netron._DATE.sub('<meta name="date" content="2020-01-01 00:00:00">', page))
    monkeypatch.setattr(netron, "_static_dir", lambda: static)
    assert netron.build_date().year == 2020
    return static


def test_netron_past_its_shelf_life_keeps_showing_graphs(netron_built_long_ago, chromium, tmp_path, capsys):
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    view = netron.live_view(model, height=400)
    note = capsys.readouterr().out
    assert note.count("\n") == 1 and "pip install -U netron" in note and "requirements.txt" in note
    page = chromium.new_page()
    try:
        page.goto(view.src)
        page.locator(GRAPH).first.wait_for(state="attached", timeout=30_000)
        assert page.locator("#message-text").inner_text() == ""
    finally:
        page.close()
        netron.stop(int(view.src.rstrip("/").rsplit(":", 1)[1]))
    svg = netron.render_svg(model, tmp_path / "tiny.svg").read_text()
    assert svg.startswith("<svg") and svg.count("graph-node") >= 3


def test_a_browser_clock_past_the_shelf_life_still_shows_the_graph(chromium, tmp_path):
    """The browser's clock 200 days after Netron's build: labkit's page shows the graph, while Netron's own server
    (the control) shows only its update notice."""
    import netron as netron_package

    model = _tiny_onnx(tmp_path / "tiny.onnx")
    ours = netron.serve(model)
    theirs = netron_package.start(str(model), address=("127.0.0.1", free_port()), browse=False)
    context = chromium.new_context()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1:")
                  else route.abort())
    try:
        page = context.new_page()
        page.clock.set_fixed_time(netron.build_date() + timedelta(days=200))
        page.goto(f"http://127.0.0.1:{ours}/")
        page.locator(GRAPH).first.wait_for(state="attached", timeout=30_000)
        assert page.locator("#message-text").inner_text() == ""
        page.goto(f"http://127.0.0.1:{theirs[1]}/")
        expect(page.locator("#message-text")).to_have_text("Please update to the newest version.")
    finally:
        context.close()
        netron.stop(ours)
        netron_package.stop(theirs)


def _tiny_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    nodes = [helper.make_node(op, [a], [b]) for op, a, b in (("Relu", "x", "a"), ("Sigmoid", "a", "b"),
                                                             ("Tanh", "b", "y"))]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    save(helper.make_model(graph), str(path))
    return path
