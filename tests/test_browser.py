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
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import DEBIAN_FASHION, ROOT, answered, jupyterlab
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from labkit.course import assignment
from labkit.course.assignment import ASSIGNMENT
from labkit.deploy import netron
from labkit.deploy.netron import CHROMIUM_FLAGS, find_chromium, free_port

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")]
NOTEBOOKS = ["01_clustering", "02_pruning", "03_structured_pruning", "04_summary"]
TINY = {"train_samples": 300, "base_epochs": 1, "fine_tune_epochs": 1, "training_batches": 200,
        "test_dataset_fraction": 0.05, "hidden_units": 64}
HOST, TOKEN, BASE = "labhost", "labkit-browser-test", "/labkit/"
GRAPH = "body.default #canvas .graph-node"  # Netron has laid out the graph
SETTINGS = {"notebook-extension/tracker": {"windowingMode": "none"}}  # every cell in the DOM, to read them all
NEWS = "official Jupyter news"  # JupyterLab's question, unless the project's settings answer it
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


def student_copy(release: Path, name: str, dest: Path) -> Path:
    """A released notebook, as a student opens it, at tiny scale with folders beside it."""
    notebook = json.loads((release / "release" / ASSIGNMENT / f"{name}.ipynb").read_text())
    folders = {"results_dir": str(dest.parent.parent / "results"), "models_dir": str(dest.parent.parent / "models")}
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(assignment.scaled(notebook, notebook, {**TINY, **folders}), indent=1))
    return dest


@pytest.fixture(scope="module")
def lab(tmp_path_factory, release):
    """A JupyterLab on a free port, with a token and a base URL, serving the four notebooks and the student edition
    of the first."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root / "notebooks")
    tiny_copy(ROOT / "notebooks" / "03_structured_pruning.ipynb", root / "notebooks" / "03_structured_pruning.ipynb")
    student_copy(release, "01_clustering", root / "student" / "01_clustering.ipynb")
    for name, values in SETTINGS.items():
        path = root / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    options = (f"--ServerApp.local_hostnames=['localhost', '{HOST}']", "--LabApp.expose_app_in_browser=True",
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


def open_notebook(page, lab: dict, name: str, folder: str = "notebooks"):
    """Open a notebook in the UI; return once all its cells show, its kernel is idle on the server and the page's
    own connection to it has settled (see `settle`)."""
    page.goto(f"{lab['url']}lab/tree/{folder}/{name}.ipynb?reset&token={TOKEN}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    cells = json.loads((lab["root"] / folder / f"{name}.ipynb").read_text())["cells"]
    expect(notebook.locator(".jp-Cell")).to_have_count(len(cells), timeout=60_000)
    deadline = time.monotonic() + 60
    while not (kernel := _kernel_of(lab, name)) or kernel["execution_state"] != "idle" or not kernel["connections"]:
        assert time.monotonic() < deadline, f"kernel of {name} not idle and connected: {_api(lab, 'sessions')}"
        page.wait_for_timeout(500)  # not time.sleep: the page's requests pass through our route handler meanwhile
    settle(page)
    return notebook, cells


SETTLED = """() => {
    const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel.status === 'idle' && kernel._pendingMessages.length === 0;
}"""
RECONNECT = "() => { window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.reconnect(); }"


def settle(page, tries: int = 3) -> None:
    """Wait until the page's kernel connection is connected, has heard the kernel say idle and holds no queued message.

    The server may say idle while the page has not heard it: now and then (1 open in 4 here, under load) the kernel's
    first status message goes out before the server has subscribed to it (jupyter_client#593), JupyterLab's status
    bar says "Unknown", and the page queues what it sends behind its kernel-info handshake. A "Run All" clicked then
    was queued for good once (CI: the first cell stayed [*] for 10 min while the server said idle). A connection
    that has not settled in 20 s is reconnected, as a user would from the status bar: that handshake flushes it.
    """
    for _ in range(tries):
        try:
            page.wait_for_function(SETTLED, timeout=20_000, polling=250)
            return
        except PlaywrightTimeout:
            warnings.warn(f"the page's kernel connection had not settled in 20 s, reconnecting: {_client(page)}",
                          stacklevel=2)
            page.evaluate(RECONNECT)
    pytest.fail(f"the page's kernel connection did not settle after {tries} tries: {_client(page)}")


CLIENT = """() => {
    const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel ? {connection: kernel.connectionStatus, status: kernel.status,
                     queued: kernel._pendingMessages.length, futures: kernel._futures.size} : null;
}"""


def _client(page) -> dict | None:
    """The page's own view of its notebook's kernel: its websocket, the last status it heard, what it has queued."""
    return page.evaluate(CLIENT)


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
    page.wait_for_timeout(2000)  # JupyterLab asks its question as soon as it has started: give it time
    assert page.get_by_text(NEWS).count() == 0, "JupyterLab asked about Jupyter news"
    if name == "01_clustering":
        screenshot(page, "jupyterlab-notebook")


def test_without_the_projects_settings_jupyterlab_asks_about_news(chromium, tmp_path):
    """The control of the test above: with the question left open in the user's settings, the pop-up shows."""
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "none"}))
    with jupyterlab(tmp_path, f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
                    f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}") as server:
        page = chromium.new_page()
        try:
            page.goto(f"http://127.0.0.1:{server['port']}/lab?token={server['token']}")
            expect(page.get_by_text(NEWS)).to_be_visible(timeout=60_000)
        finally:
            page.close()


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
        pytest.fail(f"not all cells ran in {minutes:g} min; running: {running!r}; page's kernel: {_client(page)}; "
                    f"sessions: {_api(lab, 'sessions')}; "
                    f"server log: {log}")


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
@pytest.mark.own_lab(reason="03 run through JupyterLab's UI, as a user runs it: the live Netron view needs its kernel")
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


RAN = """([index, before]) => {
    const panel = '.jp-NotebookPanel:not(.lm-mod-hidden) ';
    const cells = [...document.querySelectorAll(panel + '.jp-Cell')];
    const prompt = cells[index].querySelector('.jp-InputPrompt').textContent.trim();
    const idle = document.querySelector(panel + ".jp-Notebook-ExecutionIndicator[data-status='idle']");
    return idle !== null && /^\\[\\d+\\]:$/.test(prompt) && prompt !== before;
}"""


def errors_in(cell) -> list[str]:
    """The error and stderr outputs of one notebook cell, as shown (JupyterLab renders an error as stderr)."""
    return cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
                        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()


def select(cell) -> None:
    """Make `cell` the notebook's active cell, in command mode. A click on its prompt can land on another cell while
    the notebook still lays out the cells above it (rendered markdown, pictures), and a run then started from the
    wrong cell waited for ever (a CI run under load): click until it is the active one."""
    for _ in range(5):
        cell.locator(".jp-InputPrompt").click()
        try:
            expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"), timeout=2_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"five clicks on its prompt left another cell active: {cell.inner_text()[:200]!r}")


def run_cell(page, notebook, index: int) -> None:
    """Run one cell (Shift+Enter) and wait until it has run, with a new execution count, and the kernel is idle."""
    cell = notebook.locator(".jp-Cell").nth(index)
    before = cell.locator(".jp-InputPrompt").inner_text().strip()
    select(cell)
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(RAN, arg=[index, before], timeout=300_000, polling=500)


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
@pytest.mark.own_lab(reason="a student's released 01 run cell by cell in JupyterLab's UI")
def test_a_student_runs_the_first_task_of_a_released_notebook(page, lab):
    """As a student: run the cells above the first task, run its cell as released and its check (which says in one
    line that the answer is missing), write the answer into the task's cell and run both again: the check passes."""
    notebook, cells = open_notebook(page, lab, "01_clustering", folder="student")
    task = next(i for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("solution"))
    answer, check = notebook.locator(".jp-Cell").nth(task), notebook.locator(".jp-Cell").nth(task + 1)
    select(answer)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Above Selected Cell", exact=True).click()
    last = max(i for i, c in enumerate(cells[:task]) if c["cell_type"] == "code")
    try:
        page.wait_for_function(RAN, arg=[last, ""], timeout=600_000, polling=1000)
    except PlaywrightTimeout:
        active = notebook.locator(".jp-Cell.jp-mod-active").first.inner_text()[:200]
        pytest.fail(f"the cells above the task did not run in 10 min; prompts: "
                    f"{notebook.locator('.jp-InputPrompt').all_inner_texts()}; active cell: {active!r}")
    assert [e for i in range(task) for e in errors_in(notebook.locator(".jp-Cell").nth(i))] == []

    run_cell(page, notebook, task)  # as released: the function's body is only a stub
    run_cell(page, notebook, task + 1)
    assert errors_in(check) == ["WrongAnswer: running a TensorFlow Lite model: not answered yet: write the code of "
                                "the task in its cell above"]

    solution = "".join(answered({"cells": [cells[task]]}, {cells[task]["metadata"]["nbgrader"]["grade_id"]: None})
                       ["cells"][0]["source"])
    answer.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(solution)
    assert answer.locator(".cm-content").inner_text().rstrip() == solution.rstrip()  # CodeMirror ends with a line
    run_cell(page, notebook, task)
    run_cell(page, notebook, task + 1)
    assert errors_in(answer) == [] and errors_in(check) == []
    assert page.outside == []


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
