"""Netron views of exported graphs: live in JupyterLab, and as static SVG for reports.

The live view is a Netron server on loopback shown in an IFrame; it dies with the kernel and is a
dead frame in exported HTML, so reports carry an SVG rendered by headless Chromium instead.
"""

from __future__ import annotations

import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labkit.files import atomic_write_text

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(path: Path, port: int | None = None) -> tuple[str, int]:
    """Serve `path` with Netron on loopback; a busy or missing port is replaced by a free one."""
    import netron

    if port is None or not _port_free(port):
        port = free_port()
    with _lock:
        return netron.start(str(path), address=("127.0.0.1", port), browse=False)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def live_view(path: Path, height: int = 600, port: int | None = None):
    """An IFrame with the interactive Netron view of a model file (works while the kernel runs)."""
    import netron

    return netron.widget(serve(path, port), height=height)


def find_chromium() -> str | None:
    """Path of a Chromium binary (Debian's `chromium` package), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def render_svg(model_path: Path, svg_path: Path, timeout_s: float = 60) -> Path | None:
    """Render a model graph to SVG with Netron in headless Chromium; None (with a printed note) without Chromium."""
    chromium = find_chromium()
    if chromium is None:
        print(f"note: no Chromium found, so no static graph picture of {Path(model_path).name}; "
              "install the Debian package chromium (make setup does) to get one")
        return None
    address = serve(model_path)
    try:
        # Playwright's sync API refuses to run inside a running asyncio loop (a Jupyter kernel), so use a thread.
        with ThreadPoolExecutor(1) as pool:
            svg = pool.submit(_render, chromium, address, timeout_s).result()
    finally:
        import netron

        netron.stop(address)
    return atomic_write_text(Path(svg_path), svg)


def _render(chromium: str, address: tuple[str, int], timeout_s: float) -> str:
    from playwright.sync_api import sync_playwright

    url = f"http://{address[0]}:{address[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_cookies([{"name": "consent", "value": "1", "domain": "127.0.0.1", "path": "/"}])
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                          else route.abort())
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("body.default #canvas .graph-node", timeout=timeout_s * 1000, state="attached")
            session = context.new_cdp_session(page)
            # Netron replaces window.eval, so page.evaluate fails; CDP's Runtime.evaluate still works.
            script = """(async () => {
                const view = window.__view__;
                let svg = null;
                view._host.export = async (file, blob) => { svg = await blob.text(); };
                await view.export('graph.svg');
                return svg;
            })()"""
            result = session.send("Runtime.evaluate", {"expression": script, "awaitPromise": True,
                                                       "returnByValue": True})
            svg = result.get("result", {}).get("value")
            if not svg:
                raise RuntimeError(f"Netron did not export an SVG: {result}")
            return svg
        finally:
            browser.close()
