"""Progress bars: widgets in JupyterLab, one finished line in an executed notebook, plain text everywhere else.

`tqdm.auto` draws a widget in any kernel, also in one papermill starts, where nobody sees it and the executed
notebook keeps a dead widget. A Jupyter server names the session of every kernel it starts (`JPY_SESSION_NAME`),
so that is where widgets go. Any other kernel (papermill's, on this machine or a Ray worker) writes only into the
executed notebook and its report, where a bar caught mid-way ("0%| | 0/10000") reads as a stalled run: there a
bar draws nothing while it runs and one line when it closes (what it did and how long it took). Elsewhere (the
terminal, CI) the bar is text on stdout, updated every few seconds, and nothing lands on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import std

TEXT_INTERVAL_S = 10.0  # seconds between updates of a text bar
FINISHED = "{desc}: done, {n_fmt} {unit} in {elapsed} ({rate_fmt})"  # the one line a batch kernel's bar leaves


def in_jupyterlab() -> bool:
    """True in a kernel started by a Jupyter server (JupyterLab, Notebook), which can show widgets."""
    return "JPY_SESSION_NAME" in os.environ and "ipykernel" in sys.modules


def in_batch_kernel() -> bool:
    """True in a running kernel no Jupyter server started (papermill's): its output is read only afterwards."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return getattr(shell, "kernel", None) is not None and not in_jupyterlab()


class FinishedLine(std.tqdm):
    """A bar that draws nothing while it runs and prints one line, `FINISHED`, when it closes."""

    def __init__(self, iterable: Iterable | None = None, **kwargs: Any) -> None:
        self.out = kwargs.pop("file", sys.stdout)
        super().__init__(iterable, **{**kwargs, "file": open(os.devnull, "w"), "mininterval": float("inf"),
                                      "bar_format": FINISHED})

    def close(self) -> None:
        if self.disable:  # closed already (close runs again when the bar is collected)
            return
        line = self.format_meter(**self.format_dict)
        super().close()
        self.fp.close()
        print(line, file=self.out, flush=True)


def tqdm(iterable: Iterable | None = None, **kwargs: Any) -> std.tqdm:
    """A progress bar that suits where the code runs (see the module's docstring)."""
    if in_jupyterlab():
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar(iterable, **kwargs)
    if in_batch_kernel():
        return FinishedLine(iterable, **kwargs)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("mininterval", TEXT_INTERVAL_S)
    return std.tqdm(iterable, **kwargs)
