"""Where the lab's files go: a relative path means a path in the project folder, whoever runs the notebook.

Papermill starts a notebook's kernel in the caller's directory, so a default such as `../results` wrote above
the project when papermill was called from its root. Every folder parameter goes through `resolve` instead, and
what the lab prints goes through `shown`, so reports name `results/...`, not the checkout that made them.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resolve(path: str | Path) -> Path:
    """An absolute path as given (`~` expanded); a relative one inside the project folder."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def shown(path: str | Path) -> str:
    """A path as a reader should see it: relative to the project when inside it, else absolute."""
    path = resolve(path)
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def pythonpath() -> str:
    """PYTHONPATH for the processes a run starts (notebook kernels, Ray workers): this checkout first, so that they
    import the labkit the runner imported, not another checkout's installed in the same environment."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    return os.pathsep.join([str(ROOT), *rest])
