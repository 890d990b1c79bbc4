"""Fetching dataset files over HTTP into the user cache (needs internet; the lab's tests never call it)."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from labkit.errors import LabkitError
from labkit.progress import tqdm


def cache_dir(name: str) -> Path:
    """Where downloaded copies of dataset `name` live: $XDG_CACHE_HOME/labkit/<name>."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "labkit" / name


def fetch(url: str, dest: Path) -> Path:
    """Download `url` to `dest` with a progress bar; write to a side file first so a stop leaves no half file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as err:
        part.unlink(missing_ok=True)
        raise LabkitError(f"could not download {url} ({err}); check the network or get the files by hand") from err
    part.replace(dest)
    return dest
