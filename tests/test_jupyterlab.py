"""The workbook opens in JupyterLab: a headless server on loopback serves the four notebooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from conftest import ROOT

from labkit.netron import free_port


def test_jupyterlab_serves_the_notebooks():
    port, token = free_port(), "labkit-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JUPYTER_RUNTIME_DIR": "/tmp"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        with urllib.request.urlopen(f"{base}/api/contents/notebooks?token={token}", timeout=10) as response:
            listing = json.load(response)
        names = {item["name"] for item in listing["content"]}
        assert {"01_clustering.ipynb", "02_pruning.ipynb", "03_structured_pruning.ipynb",
                "04_summary.ipynb"} <= names
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as response:
            assert b"JupyterLab" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
