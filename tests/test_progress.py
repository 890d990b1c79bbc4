"""Progress bars: widgets where JupyterLab shows them, text on stdout everywhere else (nothing on stderr)."""

from __future__ import annotations

import pytest

from labkit import progress


def test_outside_jupyterlab_the_bar_is_text_on_stdout(capsys, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not progress.in_jupyterlab()
    assert list(progress.tqdm(range(3), desc="steps", mininterval=0)) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert "steps: 100%" in out and err == ""


def test_a_kernel_started_by_a_jupyter_server_gets_a_widget(monkeypatch):
    pytest.importorskip("ipywidgets")
    import ipykernel  # noqa: F401  (a kernel has it loaded)
    from tqdm.notebook import tqdm as widget_bar

    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/01_clustering.ipynb")
    assert progress.in_jupyterlab()
    bar = progress.tqdm(total=2, display=False)
    assert isinstance(bar, widget_bar)
    bar.close()
