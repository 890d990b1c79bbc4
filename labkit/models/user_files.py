"""The user's own files, checked before anything trains against the dataset's descriptor (labkit.data.describe): the
Keras model given to `--model-path`, and the course's structured-pruning files (`--input-model`, `--backup-model`, …).

Every problem is a one-line LabkitError naming the file and the fix, raised by the runner before the first notebook
starts.
"""

from __future__ import annotations

from pathlib import Path

from labkit.data import Descriptor
from labkit.errors import LabkitError

# The course's structured-pruning flags: the model it reads, and the files it writes.
COURSE_INPUT = "input_model"
COURSE_OUTPUTS = ("backup_model", "final_model", "onnx_model", "tflite_model")


def check_keras_model(path: str, classes: int, dataset: str, image_size: int) -> None:
    """The user's Keras classifier loads, takes images, and has one output per class of the dataset."""
    from labkit.models import model_inputs

    model_inputs.check_keras_path(path)
    model = model_inputs.load_classifier(path)
    model_inputs.input_spec(model, image_size)
    model_inputs.check_outputs(model, classes, dataset)


def check_course_classifier(path: str, classes: int) -> None:
    """A state dict for --input-model must load into the course's classifier (at any layer widths) with one output
    per class."""
    from labkit.models.torch_models import load_classifier

    if not Path(path).is_file():
        raise LabkitError(f"--input-model {path} does not exist: pass the state dict of the course's classifier")
    load_classifier(Path(path), classes, f"--input-model takes the state dict (model.state_dict()) of the course's "
                                         f"classifier with {classes} outputs")


def check_structured_data(data: Descriptor) -> None:
    """The course's classifier takes 28×28 grayscale images: Fashion-MNIST, or IDX files of that size."""
    if (data.image_shape, data.channels) != ((28, 28), 1):
        shape = f" of {data.image_shape + (data.channels,)}" if data.image_shape else ""
        raise LabkitError(f"structured pruning needs 28×28 grayscale images (the course's classifier), not the "
                          f"{data.kind} dataset{shape}: use --dataset fashion-mnist or idx")


def structured_problem(data: Descriptor) -> str | None:
    """Why the structured-pruning notebook cannot run on this dataset, or None when it can."""
    try:
        check_structured_data(data)
    except LabkitError as err:
        return str(err)
    return None


def check_weights(weights: str | None) -> None:
    """The pets backbone's weights: "imagenet", "none", or a file that exists."""
    if weights not in (None, "none", "imagenet") and not Path(weights).is_file():
        raise LabkitError(f"weights file {weights} does not exist: pass -p weights=FILE (MobileNetV2 weights saved "
                          "with include_top=False), weights=imagenet or weights=none")


def check(data: Descriptor, model_path: str | None, course_files: dict[str, str], keras: bool,
          structured: bool, image_size: int) -> None:
    """The files a run reads that the user named, loaded before the first notebook starts: whether they fit the data
    (that they exist, and that output folders exist, labkit.parameters checked first; the dataset itself was checked
    through when it was described: classes, empty class folders, unreadable images)."""
    if model_path and keras:
        check_keras_model(model_path, data.num_classes, f"the {data.label()} dataset", image_size)
    if structured:
        check_structured_data(data)
        if course_files.get(COURSE_INPUT):
            check_course_classifier(course_files[COURSE_INPUT], data.num_classes)
