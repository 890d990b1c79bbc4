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


def test_in_a_kernel_papermill_started_the_bar_leaves_only_its_finished_line(capsys, monkeypatch):
    monkeypatch.setattr(progress, "in_batch_kernel", lambda: True)
    with progress.tqdm(total=10, desc="fine-tuning", unit="step", leave=False) as bar:
        bar.update(4)  # stopped early, as a fine-tuning that recovered does
    out, err = capsys.readouterr()
    assert __import__("re").fullmatch(r"fine-tuning: done, 4 step in 00:0\d \(.+step/s\)\n", out), out
    assert err == ""
