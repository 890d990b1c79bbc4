"""Netron's page served by labkit, without a browser (tests/test_browser.py opens it in one)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from labkit.deploy import netron


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not really a model")
    return path


def test_netron_takes_a_free_port_when_the_asked_one_is_busy(model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = netron.serve(model, busy.getsockname()[1])
        try:
            assert port != busy.getsockname()[1]
        finally:
            netron.stop(port)


def test_netron_page_sets_its_consent_cookie_and_blocks_other_origins(model):
    port = netron.serve(model)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
            assert response.headers["Set-Cookie"].startswith("consent=")
            assert response.headers["Content-Security-Policy"] == "connect-src 'self'"
        assert '<meta name="file" content="data/m.onnx">' in page and '<meta name="date"' not in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/m.onnx", timeout=10) as response:
            assert response.read() == b"not really a model"
        for path in ("server.py", "../netron/index.html", "data/other.onnx"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10)
    finally:
        netron.stop(port)


def test_missing_chromium_is_a_visible_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(netron, "find_chromium", lambda: None)
    assert netron.render_svg(tmp_path / "m.onnx", tmp_path / "m.svg") is None
    assert "no Chromium found" in capsys.readouterr().out
