"""The workbook opens in JupyterLab, and the live Netron view finds its way through the Jupyter server."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, jupyterlab

from labkit.deploy import netron


@pytest.mark.server
def test_jupyterlab_serves_the_notebooks(tmp_path):
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    with jupyterlab(tmp_path) as lab:
        with urllib.request.urlopen(f"{lab['api']}/contents/notebooks?token={lab['token']}", timeout=10) as response:
            listing = json.load(response)
        names = {item["name"] for item in listing["content"]}
        assert {"01_clustering.ipynb", "02_pruning.ipynb", "03_structured_pruning.ipynb",
                "04_summary.ipynb"} <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{lab['port']}/lab?token={lab['token']}", timeout=10) as page:
            assert b"JupyterLab" in page.read()


@pytest.mark.server
@pytest.mark.parametrize("proxy", [True, False])
def test_live_view_goes_through_the_jupyter_server_when_it_has_the_proxy(tmp_path, monkeypatch, proxy):
    """As a kernel of that server sees it (base URL /user/ada/, as on JupyterHub); without the proxy, the port."""
    extensions = f"--ServerApp.jpserver_extensions={{'jupyter_server_proxy': {proxy}}}"
    with jupyterlab(tmp_path, extensions, base_url="/user/ada/") as lab:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(lab["runtime"]))
        monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/03_structured_pruning.ipynb")
        monkeypatch.setenv("JPY_PARENT_PID", str(lab["pid"]))
        assert netron.view_url(1234) == ("/user/ada/proxy/1234/" if proxy else "http://127.0.0.1:1234/")


def test_live_view_outside_a_jupyter_server_points_at_the_port(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert netron.view_url(1234) == "http://127.0.0.1:1234/"


def test_the_notebooks_run_on_the_projects_kernel():
    """`make setup` installs a kernel named labkit that runs this environment's Python; every notebook names it."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("labkit")
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() and spec.display_name == "labkit"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert json.loads(notebook.read_text())["metadata"]["kernelspec"]["name"] == "labkit", notebook.name


@pytest.mark.server
def test_jupyterlab_does_not_ask_about_jupyter_news(tmp_path):
    """The project's settings override (installed by `make setup`) answers the news question: never, and no checks
    for updates; a user who has not chosen gets these."""
    with jupyterlab(tmp_path, f"--LabApp.user_settings_dir={tmp_path / 'settings'}") as lab:
        url = (f"http://127.0.0.1:{lab['port']}/lab/api/settings/@jupyterlab/apputils-extension:notification"
               f"?token={lab['token']}")
        with urllib.request.urlopen(url, timeout=30) as response:
            plugin = json.load(response)
    assert plugin["settings"] == {}  # nothing chosen by the user: the defaults apply
    defaults = {name: field["default"] for name, field in plugin["schema"]["properties"].items()}
    assert defaults == {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": False}
