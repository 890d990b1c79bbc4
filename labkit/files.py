"""Atomic file writes: a stopped run never leaves a half-written file that looks finished."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp makes private 0600 files, a finished file gets the usual permissions


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            os.fchmod(out.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_copy(source: Path, dest: str | Path | None) -> Path | None:
    """Copy a finished file to where the user named it (nothing when dest is None), atomically."""
    return atomic_write_bytes(Path(dest), Path(source).read_bytes()) if dest else None


def atomic_write_text(path: Path, text: str) -> Path:
    """Text version of atomic_write_bytes (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_if_changed(path: Path, text: str) -> None:
    """Write text atomically unless the file already holds exactly it: a finished file is not touched again. Returns
    nothing, so a notebook cell ending with it shows no path."""
    path = Path(path)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)


def write_json(path: Path, record: dict[str, Any]) -> Path:
    """Write a record as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, default=_plain) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON record."""
    return json.loads(Path(path).read_text())


def _plain(value: Any) -> Any:
    """Turn numpy scalars and paths into JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
