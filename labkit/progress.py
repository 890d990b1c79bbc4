"""Progress bars: widgets in JupyterLab, plain text everywhere else.

`tqdm.auto` draws a widget in any kernel, also in one papermill starts, where nobody sees it and the executed
notebook keeps a dead widget. A Jupyter server names the session of every kernel it starts (`JPY_SESSION_NAME`),
so that is where widgets go; elsewhere (papermill, the terminal, CI) the bar is text on stdout, updated rarely
enough that an executed notebook keeps a few lines, not hundreds, and nothing lands on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import std

TEXT_INTERVAL_S = 10.0  # seconds between updates of a text bar


def in_jupyterlab() -> bool:
    """True in a kernel started by a Jupyter server (JupyterLab, Notebook), which can show widgets."""
    return "JPY_SESSION_NAME" in os.environ and "ipykernel" in sys.modules


def tqdm(iterable: Iterable | None = None, **kwargs: Any) -> std.tqdm:
    """A progress bar that suits where the code runs (see the module's docstring)."""
    if in_jupyterlab():
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar(iterable, **kwargs)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("mininterval", TEXT_INTERVAL_S)
    return std.tqdm(iterable, **kwargs)
