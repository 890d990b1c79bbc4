"""A dataset recognised once: its kind, the folder it was found in, its classes, image shape, channels, and a checksum
of its files.

`labkit.data.describe` makes it: the runner before any notebook starts, to check the user's files against it; the
loaders read the folder it names; every record carries its identity (kind and checksum, never a path), so a result
made from other data, or from the same files changed in place, is never taken for this one's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("fashion-mnist", "oxford-pets", "image-folder", "idx")


@dataclass(frozen=True)
class Descriptor:
    """What a run needs to know of a dataset before loading it."""

    kind: str
    root: Path  # the folder its files were found in
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None  # (height, width) as stored; None for image files, which are resized
    channels: int  # 1 grayscale, 3 RGB
    files: int  # how many files the checksum covers
    sha256: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def tag(self) -> str:
        """The dataset's name in cached model files: its kind and the start of its checksum, so a base trained on
        other data (or on these files before they changed) is never loaded for it."""
        return f"{self.kind}-{self.sha256[:8]}"

    def identity(self) -> dict[str, Any]:
        """The dataset's part of a record's key."""
        return {"name": self.kind, "sha256": self.sha256, "files": self.files, "classes": self.num_classes}

    def label(self) -> str:
        """How reports name the data: the kind, and the folder's name for the user's own files (no path)."""
        return self.kind if self.kind in ("fashion-mnist", "oxford-pets") else f"{self.kind} ({self.root.name})"


def checksum(files: Iterable[Path], root: Path) -> tuple[int, str]:
    """SHA-256 over every file's path relative to root and its bytes, in sorted order; and the file count."""
    digest, count = hashlib.sha256(), 0
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
        count += 1
    return count, digest.hexdigest()
