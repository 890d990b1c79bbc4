"""The user's own files, checked before anything trains: the dataset's kind and classes, the Keras model given to
`--model-path`, and the course's structured-pruning files (`--input-model`, `--backup-model`, …).

Every problem is a one-line LabkitError naming the file and the fix, raised by the runner before the first notebook
starts.
"""

from __future__ import annotations

from pathlib import Path

from labkit.data import KINDS, recognise
from labkit.errors import LabkitError

# The course's structured-pruning flags: the model it reads, and the files it writes.
COURSE_INPUT = "input_model"
COURSE_OUTPUTS = ("backup_model", "final_model", "onnx_model", "tflite_model")


def dataset_kind(dataset: str | None, root: str | None) -> str:
    """The dataset named by --dataset, else the one recognised from the layout under --dataset-root."""
    if dataset is not None and dataset not in KINDS:
        raise LabkitError(f"unknown dataset {dataset!r}: use one of {', '.join(KINDS)}")
    return dataset or recognise(root)


def class_count(kind: str, root: str | None) -> int | None:
    """How many classes the dataset has, read cheaply (None when only loading it can tell: not on disk yet).

    An image folder is checked through: classes, empty class folders, and every image's header.
    """
    from labkit.data import idx, image_folder, pets

    if kind == "fashion-mnist":
        return 10
    if kind == "image-folder":
        names = image_folder.class_names(root)
        image_folder.is_grayscale(root)  # opens every image: an unreadable one is named now, not mid-run
        return len(names)
    if kind == "idx":
        labels = idx.read_labels(root)
        if len(set(labels.tolist())) < 2:
            raise LabkitError(f"the IDX labels under {root} hold fewer than two classes: a classifier needs two")
        return int(labels.max()) + 1
    try:
        return len({class_id for _, class_id in pets.read_list(pets.find_pets(root) / "annotations" / "list.txt")})
    except LabkitError:
        return None  # not on disk: the notebook downloads it or says where it looked


def check_keras_model(path: str, classes: int | None, dataset: str, image_size: int) -> None:
    """The user's Keras classifier loads, takes images, and has one output per class of the dataset."""
    from labkit import model_inputs

    model_inputs.check_keras_path(path)
    model = model_inputs.load_classifier(path)
    model_inputs.input_spec(model, image_size)
    if classes is not None:
        model_inputs.check_outputs(model, classes, dataset)


def check_course_classifier(path: str, classes: int) -> None:
    """A state dict for --input-model must load into the course's classifier with one output per class."""
    from labkit.torch_models import FashionClassifier, load_state

    if not Path(path).is_file():
        raise LabkitError(f"--input-model {path} does not exist: pass the state dict of the course's classifier")
    load_state(FashionClassifier(classes), Path(path),
               f"--input-model takes the state dict (model.state_dict()) of the course's classifier with {classes} "
               "outputs")


def check_structured_data(kind: str, root: str | None) -> None:
    """The course's classifier takes 28×28 grayscale images: Fashion-MNIST, or IDX files of that size."""
    from labkit.data import idx

    shape = idx.image_shape(root) if kind == "idx" else (28, 28) if kind == "fashion-mnist" else None
    if shape not in ((28, 28), (28, 28, 1)):
        raise LabkitError(f"structured pruning needs 28×28 grayscale images (the course's classifier), not the "
                          f"{kind} dataset{f' of {shape}' if shape else ''}: use --dataset fashion-mnist or idx")


def check_outputs(files: dict[str, str | None]) -> None:
    """Every named output file must go into a folder that exists."""
    for name, path in files.items():
        if path and not Path(path).parent.is_dir():
            raise LabkitError(f"--{name.replace('_', '-')} {path}: folder {Path(path).parent} does not exist; "
                              "create it or name a file in an existing folder")


def structured_problem(kind: str, root: str | None) -> str | None:
    """Why the structured-pruning notebook cannot run on this dataset, or None when it can."""
    try:
        check_structured_data(kind, root)
    except LabkitError as err:
        return str(err)
    return None


def check_weights(weights: str | None) -> None:
    """The pets backbone's weights: "imagenet", "none", or a file that exists."""
    if weights not in (None, "none", "imagenet") and not Path(weights).is_file():
        raise LabkitError(f"weights file {weights} does not exist: pass -p weights=FILE (MobileNetV2 weights saved "
                          "with include_top=False), weights=imagenet or weights=none")


def check(kind: str, root: str | None, model_path: str | None, course_files: dict[str, str], keras: bool,
          structured: bool, image_size: int, weights: str | None = None) -> None:
    """Everything a run reads or writes that the user named, checked before the first notebook starts."""
    check_outputs({k: v for k, v in course_files.items() if k in COURSE_OUTPUTS})
    check_weights(weights)
    classes = class_count(kind, root)  # the user's image folder or IDX files are checked through here
    if model_path and keras:
        check_keras_model(model_path, classes, f"the {kind} dataset" + (f" in {root}" if root else ""), image_size)
    if structured:
        check_structured_data(kind, root)
        if course_files.get(COURSE_INPUT):
            check_course_classifier(course_files[COURSE_INPUT], classes)
