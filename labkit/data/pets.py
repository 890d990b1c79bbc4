"""Oxford-IIIT Pet in its official layout (images/, annotations/list.txt, trainval.txt, test.txt)."""

from __future__ import annotations

import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from labkit.data.descriptor import Descriptor, checksum
from labkit.data.download import cache_dir, fetch
from labkit.data.splits import Dataset
from labkit.errors import LabkitError
from labkit.progress import tqdm

URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
ARCHIVES = ("images.tar.gz", "annotations.tar.gz")
# The 37 breeds by their official CLASS-ID (1..37 in list.txt): the label space of every copy of the dataset, so a
# model with 37 outputs runs on a partial download that holds fewer breeds.
BREEDS = ("Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal", "Birman",
          "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel",
          "english_setter", "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond",
          "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll",
          "Russian_Blue", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx",
          "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier")


def candidate_dirs(root: str | Path | None = None) -> list[Path]:
    """The folders searched, in order: a root the user named and nothing else; without one,
    $LABKIT_DATA/oxford-iiit-pet, the user cache."""
    if root:
        return [Path(root)]
    dirs = []
    if os.environ.get("LABKIT_DATA"):
        dirs.append(Path(os.environ["LABKIT_DATA"]) / "oxford-iiit-pet")
    return dirs + [cache_dir("oxford-iiit-pet")]


def find_pets(root: str | Path | None = None) -> Path:
    """Return the first candidate folder with images/ and annotations/list.txt."""
    looked = candidate_dirs(root)
    for folder in looked:
        if (folder / "images").is_dir() and (folder / "annotations" / "list.txt").is_file():
            return folder
    raise LabkitError(f"Oxford-IIIT Pet not found (looked in {', '.join(map(str, looked))}): pass "
                      "--download-dataset (download=True) or --dataset-root to a folder in the official layout")


def download_pets() -> Path:
    """Fetch and unpack the two official archives into the user cache."""
    folder = cache_dir("oxford-iiit-pet")
    for name in ARCHIVES:
        archive = fetch(URL + name, folder / name)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return folder


def read_list(path: Path) -> list[tuple[str, int]]:
    """Rows of an annotation list: (image name, official 1-based class id); '#' lines are comments."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, class_id = line.split()[:2]
            if not 1 <= int(class_id) <= len(BREEDS):
                raise LabkitError(f"{path} lists {name} with CLASS-ID {class_id}: Oxford-IIIT Pet ids are 1 to "
                                  f"{len(BREEDS)}; fix the line or fetch the annotations again")
            rows.append((name, int(class_id)))
    return rows


def _found(root: str | Path | None, download: bool) -> Path:
    try:
        return find_pets(root)
    except LabkitError:
        if not download:
            raise
        return download_pets()


def describe(root: str | Path | None = None, download: bool = False) -> Descriptor:
    """The pets where they are found (downloaded first when asked and missing): the 37 breeds as classes whatever
    subset is on disk, and a checksum over the annotation lists and the listed images."""
    folder = _found(root, download)
    rows = read_list(folder / "annotations" / "list.txt")
    if not rows:
        raise LabkitError(f"{folder / 'annotations' / 'list.txt'} lists no images")
    lists = [folder / "annotations" / f"{name}.txt" for name in ("list", "trainval", "test")]
    images = [folder / "images" / f"{name}.jpg" for name, _ in rows]
    count, sha = checksum([p for p in lists + images if p.is_file()], folder)
    return Descriptor("oxford-pets", folder, BREEDS, None, 3, count, sha)


def _split_rows(folder: Path, rows: list[tuple[str, int]], seed: int) -> tuple[list, list]:
    trainval, test = folder / "annotations" / "trainval.txt", folder / "annotations" / "test.txt"
    if trainval.is_file() and test.is_file():
        return read_list(trainval), read_list(test)
    warnings.warn(f"{folder} has no trainval.txt/test.txt: splitting list.txt 50/50 with seed {seed}", stacklevel=3)
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]


def read_image(path: Path, size: int) -> np.ndarray | None:
    """Decode by content (some official '.jpg' files are GIF or PNG), as RGB resized to size x size."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except (OSError, UnidentifiedImageError):
        return None


def _load_images(folder: Path, rows: list[tuple[str, int]], size: int, desc: str
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images, labels, skipped = [], [], []
    for name, class_id in tqdm(rows, desc=desc, leave=False):
        image = read_image(folder / "images" / f"{name}.jpg", size)
        if image is None:
            skipped.append(name)
            continue
        images.append(image)
        labels.append(class_id - 1)
    x = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return x, np.asarray(labels, dtype=np.int64), skipped


def load_pets(root: str | Path | None = None, download: bool = False, image_size: int = 128,
              seed: int = 0) -> Dataset:
    """Load the pets images as uint8 (N, size, size, 3), labelled by their official CLASS-ID − 1 among the 37 breeds.

    A subset of the breeds (e.g. ids 1, 2, 6) keeps the 37-class label space: a model trained on all breeds runs on
    it, and the metrics average over the classes present. Images that cannot be decoded or are missing are skipped
    and reported in one warning.
    """
    folder = _found(root, download)
    rows = read_list(folder / "annotations" / "list.txt")
    if not rows:
        raise LabkitError(f"{folder / 'annotations' / 'list.txt'} lists no images")
    train_rows, test_rows = _split_rows(folder, rows, seed)
    x_train, y_train, bad_train = _load_images(folder, train_rows, image_size, "pets train")
    x_test, y_test, bad_test = _load_images(folder, test_rows, image_size, "pets test")
    if bad := bad_train + bad_test:
        warnings.warn(f"skipped {len(bad)} pet images that could not be read: {', '.join(bad[:5])}"
                      + (" ..." if len(bad) > 5 else ""), stacklevel=2)
    return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=list(BREEDS), name="oxford-pets")
