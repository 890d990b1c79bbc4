"""Netron views of exported graphs: live in JupyterLab, and as static SVG for reports.

Netron's web page is served from the kernel by a small server of ours, one per model, that keeps it quiet and
working: it sets Netron's `consent` cookie itself (a Set-Cookie from the page's own origin), so the page shows
neither its cookie screen nor asks https://ipinfo.io where the user is; it forbids connections to other origins
(CSP `connect-src 'self'`), which also stops Netron's telemetry; and it leaves out the page's build date,
because Netron refuses every model 180 days after it (9.3.3: 2026-10-23) and the lab pins Netron. `live_view`
prints one line once that date has passed, naming the upgrade.

In JupyterLab the IFrame goes through the Jupyter server (jupyter-server-proxy, `<base_url>proxy/<port>/`), so
the view works wherever JupyterLab is opened from (another host, JupyterHub, a container). Elsewhere (papermill,
a kernel started outside a Jupyter server, a server without the proxy) it points to the port directly. The live
view dies with the kernel and is a dead frame in exported HTML, so reports carry an SVG rendered by headless
Chromium from the same server.
"""

from __future__ import annotations

import html
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from labkit.files import atomic_write_text

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHELF_LIFE = timedelta(days=180)  # Netron's page refuses models this long after its build date
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon"}
_DATE = re.compile(r'<meta name="date" content="([^"]*)">')
_servers: dict[int, http.server.ThreadingHTTPServer] = {}
_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _static_dir() -> Path:
    import netron

    return Path(netron.__file__).parent


def build_date() -> datetime:
    """The build date of the installed Netron's web page (its `<meta name="date">`)."""
    found = _DATE.search((_static_dir() / "index.html").read_text(encoding="utf-8"))
    return datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _NetronServer

    def do_GET(self) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        model, name = self.server.model, path.lstrip("/")
        if path in ("/", "/index.html"):
            body, kind = self.server.index_html.encode("utf-8"), _TYPES[".html"]
        elif path == f"/data/{model.name}":
            body, kind = model.read_bytes(), "application/octet-stream"
        elif "/" not in name and Path(name).suffix in _TYPES and (_static_dir() / name).is_file():
            body, kind = (_static_dir() / name).read_bytes(), _TYPES[Path(name).suffix]
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", "connect-src 'self'")
        if kind == _TYPES[".html"]:
            # No Path: the cookie belongs to the folder the page is served from (/proxy/<port> through Jupyter).
            self.send_header("Set-Cookie", "consent=labkit; SameSite=Lax")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # a quiet kernel: no access log in the notebook


class _NetronServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, model: Path):
        super().__init__(("127.0.0.1", port), _Handler)
        self.model = model
        page = (_static_dir() / "index.html").read_text(encoding="utf-8")
        meta = (f'<meta name="type" content="Python">\n<meta name="version" content="{_version()}">\n'
                f'<meta name="file" content="data/{urllib.parse.quote(model.name)}">\n'
                f'<meta name="identifier" content="{html.escape(model.name)}">')
        page = re.sub(r'<meta name="version" content="[^"]*">', lambda _: meta, page)
        # Without a build date Netron's page counts its age from the browser's own clock: never too old.
        self.index_html = _DATE.sub("", page)


def _version() -> str:
    import netron

    return netron.__version__


def serve(path: Path, port: int | None = None) -> int:
    """Serve `path` with Netron's page on 127.0.0.1 and return the port; a busy or missing port gets a free one."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; export it first")
    with _lock:
        if port in _servers:
            stop(port)
        if port is None or not _port_free(port):
            port = free_port()
        server = _servers[port] = _NetronServer(port, path)
    threading.Thread(target=server.serve_forever, name=f"netron-{port}", daemon=True).start()
    return port


def stop(port: int) -> None:
    """Stop the Netron server on `port` (started by `serve`)."""
    server = _servers.pop(port, None)
    if server is not None:
        server.shutdown()
        server.server_close()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def view_url(port: int) -> str:
    """The URL an IFrame in this kernel's front end should load for a Netron server on `port`.

    Through the Jupyter server that started this kernel when it has jupyter-server-proxy (a path below its
    base URL, so any host the browser reaches JupyterLab by works), else the port on loopback.
    """
    server = _jupyter_server()
    if server is not None and _proxied(server["url"], port):
        return f"{server['base_url'].rstrip('/')}/proxy/{port}/"
    return f"http://127.0.0.1:{port}/"


def _jupyter_server() -> dict | None:
    """The running Jupyter server that started this kernel (its runtime file), or None."""
    if "JPY_SESSION_NAME" not in os.environ or "JPY_PARENT_PID" not in os.environ:
        return None  # not a kernel of a Jupyter server's session (papermill, a console, a script)
    from jupyter_core.paths import jupyter_runtime_dir

    info = Path(jupyter_runtime_dir()) / f"jpserver-{os.environ['JPY_PARENT_PID']}.json"
    try:
        return json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _proxied(server_url: str, port: int) -> bool:
    """Whether the Jupyter server at `server_url` has a `proxy/<port>/` route.

    Asked without credentials: jupyter-server-proxy's route answers HEAD (with a redirect to log in), while a
    server without it has no such route (404) or only its catch-all page, which has no HEAD (405).
    """
    url = urllib.parse.urlsplit(server_url)
    if url.scheme != "http" or url.port is None:
        return False
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("HEAD", f"{url.path.rstrip('/')}/proxy/{port}/")
        return connection.getresponse().status not in (404, 405)
    except OSError:
        return False
    finally:
        connection.close()


def live_view(path: Path, height: int = 600, port: int | None = None):
    """An IFrame with the interactive Netron view of a model file (works while the kernel runs)."""
    from IPython.display import IFrame

    age = datetime.now(UTC) - build_date()
    if age > SHELF_LIFE:
        print(f"note: netron {_version()} is {age.days} days old and its own page would refuse models; labkit still "
              "shows them, but for a current Netron run `pip install -U netron` and update its pin in requirements.txt")
    return IFrame(view_url(serve(path, port)), width="100%", height=height)


def find_chromium() -> str | None:
    """Path of a Chromium binary (Debian's `chromium` package), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def outdated(svg_path: Path, model_path: Path) -> bool:
    """Whether a graph picture is missing or older than the model file it shows (as make decides)."""
    svg_path, model_path = Path(svg_path), Path(model_path)
    return not svg_path.is_file() or svg_path.stat().st_mtime < model_path.stat().st_mtime


def render_svg(model_path: Path, svg_path: Path, timeout_s: float = 60) -> Path | None:
    """Render a model graph to SVG with Netron in headless Chromium; None (with a printed note) without Chromium or
    when Netron exports nothing within timeout_s."""
    chromium = find_chromium()
    if chromium is None:
        print(f"note: no Chromium found, so no static graph picture of {Path(model_path).name}; "
              "install the Debian package chromium (make setup does) to get one")
        return None
    port = serve(model_path)
    try:
        # Playwright's sync API refuses to run inside a running asyncio loop (a Jupyter kernel), so use a thread.
        with ThreadPoolExecutor(1) as pool:
            svg = pool.submit(_render, chromium, f"http://127.0.0.1:{port}/", timeout_s).result()
    finally:
        stop(port)
    if not svg:
        print(f"note: Netron drew no graph of {Path(model_path).name} within {timeout_s:g} s, so no static picture")
        return None
    return atomic_write_text(Path(svg_path), svg)


def _render(chromium: str, url: str, timeout_s: float) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                          else route.abort())
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("body.default #canvas .graph-node", timeout=timeout_s * 1000, state="attached")
            session = context.new_cdp_session(page)
            # Netron replaces window.eval, so page.evaluate fails; CDP's Runtime.evaluate still works.
            # The export is raced against a timer: a CDP call has no timeout of its own, and an export that never
            # settles would hang the notebook cell for good.
            script = f"""(async () => {{
                const view = window.__view__;
                let svg = null;
                view._host.export = async (file, blob) => {{ svg = await blob.text(); }};
                const late = new Promise(resolve => setTimeout(resolve, {timeout_s * 1000:.0f}));
                await Promise.race([view.export('graph.svg'), late]);
                return svg;
            }})()"""
            result = session.send("Runtime.evaluate", {"expression": script, "awaitPromise": True,
                                                       "returnByValue": True})
            return result.get("result", {}).get("value") or ""
        finally:
            browser.close()
