"""A folder of class sub-folders (`<root>/<class>/<image>`), with `train/` and `test/` inside when the user split it.

Images may be JPEG, PNG, GIF or WebP, grayscale or colour, of any size: they are decoded by content and resized.
Without `train/` and `test/`, a seeded stratified split holds out a share of every class for testing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from labkit.data.descriptor import Descriptor, checksum
from labkit.data.splits import Dataset, stratified_split
from labkit.errors import LabkitError

SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}


def split_folders(root: Path) -> list[Path]:
    """[train, test] when the user split the images, else [root]."""
    parts = [root / "train", root / "test"]
    return parts if all(p.is_dir() for p in parts) else [root]


def class_folders(folder: Path) -> dict[str, list[Path]]:
    """The images of each class sub-folder, by class name; an empty class is a LabkitError."""
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES)
        if not images:
            raise LabkitError(f"class folder {sub} holds no images: add JPEG, PNG, GIF or WebP files or remove it")
        classes[sub.name] = images
    return classes


def looks_like(root: str | Path) -> bool:
    """Whether root holds class sub-folders with images (for recognising --dataset-root's layout)."""
    folder = split_folders(Path(root))[0]
    subs = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    return any(f.suffix.lower() in SUFFIXES for sub in subs for f in sub.iterdir())


def class_names(root: str | Path) -> list[str]:
    """The classes of an image folder (of train/ when split), checked: two or more, none empty."""
    root = Path(root)
    if not root.is_dir():
        raise LabkitError(f"image folder {root} does not exist: pass --dataset-root a folder of class sub-folders")
    parts = split_folders(root)
    names = list(class_folders(parts[0]))
    if len(names) < 2:
        raise LabkitError(f"{parts[0]} has {len(names)} class sub-folder(s): a classifier needs at least two "
                          "(one sub-folder of images per class)")
    if len(parts) == 2 and (extra := sorted(set(class_folders(parts[1])) - set(names))):
        raise LabkitError(f"{parts[1]} has classes not in {parts[0]} ({', '.join(extra)}): give train/ a folder "
                          "for each")
    return names


def is_grayscale(root: str | Path) -> bool:
    """Whether every image of the folder is single-channel (then it is loaded grayscale, else RGB). Opens every
    image's header, so an unreadable one is named here."""
    modes = set()
    for part in split_folders(Path(root)):
        for images in class_folders(part).values():
            for path in images:
                with _open(path) as img:
                    modes.add(img.mode)
    return modes <= {"1", "L", "LA", "I", "I;16", "F"}


def describe(root: str | Path | None) -> Descriptor:
    """An image folder, checked through (classes, empty class folders, every image's header) and checksummed."""
    if root is None:
        raise LabkitError("--dataset image-folder needs --dataset-root: a folder with one sub-folder of images per "
                          "class")
    root = Path(root).resolve()
    names = class_names(root)
    channels = 1 if is_grayscale(root) else 3
    images = [path for part in split_folders(root) for paths in class_folders(part).values() for path in paths]
    count, sha = checksum(images, root)
    return Descriptor("image-folder", root, tuple(names), None, channels, count, sha)


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError) as err:
        raise LabkitError(f"cannot read image {path} ({type(err).__name__}): replace or delete it") from err


def read_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One image as uint8 (H, W) grayscale or (H, W, 3) RGB, resized to size = (height, width)."""
    try:
        with _open(path) as img:
            img = img.convert("L" if grayscale else "RGB").resize(size[::-1], Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except OSError as err:  # a truncated file fails only when decoded
        raise LabkitError(f"cannot read image {path} ({err}): replace or delete it") from err


def _load(classes: dict[str, list[Path]], names: list[str], size: tuple[int, int], grayscale: bool,
          desc: str) -> tuple[np.ndarray, np.ndarray]:
    paths = [(path, names.index(name)) for name, images in classes.items() for path in images]
    x = [read_image(path, size, grayscale) for path, _ in tqdm(paths, desc=desc, leave=False)]
    return np.stack(x), np.asarray([label for _, label in paths], dtype=np.int64)


def load_image_folder(root: str | Path, size: tuple[int, int] = (128, 128), grayscale: bool | None = None,
                      seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load an image folder as uint8 images resized to size = (height, width); grayscale when every image is
    (or when `grayscale` says so), else RGB. Classes are the sub-folder names in sorted order."""
    root = Path(root)
    names = class_names(root)
    grayscale = is_grayscale(root) if grayscale is None else grayscale
    parts = split_folders(root)
    x, y = _load(class_folders(parts[0]), names, size, grayscale, "images")
    if len(parts) == 2:
        x_test, y_test = _load(class_folders(parts[1]), names, size, grayscale, "test images")
    else:
        train, test = stratified_split(y, test_fraction, seed)
        x, y, x_test, y_test = x[train], y[train], x[test], y[test]
    return Dataset(x_train=x, y_train=y, x_test=x_test, y_test=y_test, class_names=names, name="image-folder")
