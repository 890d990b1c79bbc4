"""Fashion-MNIST from its official IDX files, found on disk or downloaded, verified by checksum."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from labkit.data.descriptor import Descriptor
from labkit.data.download import cache_dir, fetch
from labkit.data.splits import Dataset
from labkit.errors import LabkitError

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# md5 of the *decompressed* official files (Debian recompresses the .gz, so those differ).
FILES = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
HOW_TO_GET = ("pass --download-dataset (download=True), or install the Debian package "
              "dataset-fashion-mnist, or set LABKIT_DATA to a folder holding the four IDX files")


def candidate_dirs(root: str | Path | None = None) -> list[Path]:
    """The folders searched, in order: a root the user named (or torchvision's `<root>/FashionMNIST/raw`, where the
    course's structured-pruning script downloads it) and nothing else; without one, $LABKIT_DATA, the Debian
    package, the user cache."""
    if root:
        return [Path(root), Path(root) / "FashionMNIST" / "raw"]
    dirs = []
    if os.environ.get("LABKIT_DATA"):
        env = Path(os.environ["LABKIT_DATA"])
        dirs += [env / "fashion-mnist", env]
    return dirs + [DEBIAN_DIR, cache_dir("fashion-mnist")]


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_mnist(root: str | Path | None = None) -> Path:
    """Return the first candidate folder that holds all four IDX files (gzipped or not)."""
    looked = candidate_dirs(root)
    for folder in looked:
        if all(_file_in(folder, stem) for stem in FILES):
            return folder
    places = ", ".join(str(p) for p in looked)
    if root:
        raise LabkitError(f"no Fashion-MNIST in {root} (looked in {places}): name the folder that holds its four IDX "
                          "files, or leave out --dataset-root to use $LABKIT_DATA, the Debian package or the cache")
    raise LabkitError(f"Fashion-MNIST not found (looked in {places}): {HOW_TO_GET}")


def is_official(folder: Path) -> bool:
    """Whether folder holds the four official Fashion-MNIST files (checked by checksum)."""
    paths = {stem: _file_in(folder, stem) for stem in FILES}
    if not all(paths.values()):
        return False
    try:
        return all(read_idx(paths[stem], md5) is not None for stem, md5 in FILES.items())
    except LabkitError:
        return False


def download_fashion_mnist() -> Path:
    """Fetch the four official .gz files into the user cache and return that folder."""
    folder = cache_dir("fashion-mnist")
    for stem in FILES:
        if _file_in(folder, stem) is None:
            fetch(URL + stem + ".gz", folder / (stem + ".gz"))
    return folder


def read_idx(path: Path, expected_md5: str | None = None) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into a uint8 array; check its md5 and its header."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise LabkitError(f"{path} is corrupt or truncated ({err}); delete it and fetch it again") from err
    if expected_md5 and hashlib.md5(raw).hexdigest() != expected_md5:
        raise LabkitError(f"{path} fails its checksum (not the official file); delete it and fetch it again")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise LabkitError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise LabkitError(f"{path} is truncated: header says {shape}, body has {len(body)} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _found(root: str | Path | None, download: bool) -> Path:
    """The folder holding the files, downloaded into the user cache first when asked and missing."""
    try:
        return find_fashion_mnist(root)
    except LabkitError:
        if not download:
            raise
        return download_fashion_mnist()


def describe(root: str | Path | None = None, download: bool = False) -> Descriptor:
    """Fashion-MNIST where it is found (downloaded first when asked and missing). Its checksum is that of the official
    files' content, which loading verifies: Debian's recompressed copy and the upstream files are the same data."""
    folder = _found(root, download)
    official = hashlib.sha256("".join(FILES.values()).encode()).hexdigest()
    return Descriptor("fashion-mnist", folder, tuple(CLASS_NAMES), (28, 28), 1, len(FILES), official)


def load_fashion_mnist(root: str | Path | None = None, download: bool = False,
                       verify: bool = True) -> Dataset:
    """Load all of Fashion-MNIST: 60,000 train and 10,000 test 28x28 uint8 images with labels 0-9."""
    folder = _found(root, download)
    arrays = {stem: read_idx(_file_in(folder, stem), md5 if verify else None) for stem, md5 in FILES.items()}
    return Dataset(
        x_train=arrays["train-images-idx3-ubyte"], y_train=arrays["train-labels-idx1-ubyte"].astype(np.int64),
        x_test=arrays["t10k-images-idx3-ubyte"], y_test=arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        class_names=list(CLASS_NAMES), name="fashion-mnist",
    )
