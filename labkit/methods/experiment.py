"""One Keras experiment of the lab: data, base model and the path from a wrapped model to a measured variant.

The notebooks call these in the lab's order; each function is one step of the lab text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from labkit import lock, paths, records
from labkit.data import Dataset, describe, load_dataset, preprocess, tf_dataset, train_validation_split
from labkit.deploy.export import to_int8_tflite, to_tflite
from labkit.errors import LabkitError
from labkit.files import atomic_write_bytes, read_json, write_json
from labkit.methods import compress
from labkit.models import keras_models, model_inputs, recovery
from labkit.models.keras_models import compile_model, load_model, save_model
from labkit.records import Context, load_record, read_record
from labkit.results import seeds
from labkit.results.evaluate import evaluate_variant


@dataclass
class Experiment:
    """Data splits, pipelines and folders shared by every variant of one run."""

    data: Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    batch_size: int
    seed: int
    results_dir: Path
    models_dir: Path
    context: Context  # what every record of the run shares (data, selection, seed, base): their keys start here
    base_info: dict[str, Any] = field(default_factory=dict)
    user_model: Any = None  # the user's own classifier (--model-path), used as the base instead of training one
    base: Any = None  # the base model once base_model has made or loaded it
    model_path: str | None = None

    @property
    def is_pets(self) -> bool:
        return self.data.name == "oxford-pets"

    def train_ds(self, images: int | None = None):
        """The training images (the first `images` of them), shuffled each epoch; the split shuffled them already,
        so the first ones are a seeded random share."""
        return tf_dataset(self.x_train[:images], self.y_train[:images], self.batch_size, shuffle=True,
                          seed=self.seed, augment=self.is_pets)

    def fine_tune_ds(self):
        """What each variant and its control are fine-tuned on: the first `fine_tune_samples` training images (all
        by default), so the base can learn from more images than every fine-tuning costs."""
        return self.train_ds(self.context.selection["fine_tune"])

    def val_ds(self):
        return tf_dataset(self.x_val, self.y_val, self.batch_size)

    def layer_filter(self, method: str = "clustering"):
        """Which layers a method wraps: all for the small CNN; for MobileNetV2's clustering, the head only; for a
        user's model, every layer TFMOT can compress (the others are left alone and listed in the record)."""
        if self.is_pets and method == "clustering":
            return compress.head_and_late_convs
        return compress.compressible_by(method) if self.user_model is not None else None

    def wraps(self, method: str = "clustering") -> compress.LayerFilter:
        """The layers to wrap one by one for `method`: those `layer_filter` picks, or, for the lab's own CNN, every
        layer TFMOT can compress (the same ones it wraps when given the whole model)."""
        return self.layer_filter(method) or compress.compressible_by(method)


def prepare(dataset: str = "fashion-mnist", dataset_root: str | None = None, download_dataset: bool = False,
            train_samples: int | None = None, test_fraction: float = 1.0, image_size: int = 128,
            batch_size: int = 64, seed: int = 42, results_dir: str | Path = "results",
            models_dir: str | Path = "models", validation_fraction: float = 0.1,
            model_path: str | None = None, fine_tune_samples: int | None = None) -> Experiment:
    """Load and scale the data, hold out a seeded validation split, seed TensorFlow, make the folders.

    The base trains on every training image; the variants and their controls are fine-tuned on the first
    `fine_tune_samples` of them (None: all), the same images for each.

    With `model_path` (the user's Keras classifier), its input shape decides the image size and grayscale or RGB,
    and its output count must match the dataset's classes. Records go to the seed's own folder under results_dir
    (`seed-<seed>/`), so runs with other seeds sit beside it; their keys start from the experiment's context.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    descriptor = describe(dataset, dataset_root, download_dataset)
    user_model = model_inputs.load_classifier(model_path) if model_path else None
    if user_model is not None:
        height, width, channels = model_inputs.input_spec(user_model, image_size)
        data = load_dataset(descriptor, train_samples, test_fraction, (height, width), seed, grayscale=channels == 1)
        model_inputs.check_outputs(user_model, data.num_classes, data.describe())
        data = model_inputs.fit_dataset(data, height, width, channels)
    else:
        data = load_dataset(descriptor, train_samples, test_fraction, image_size, seed)
    x_train, y_train, x_val, y_val = train_validation_split(preprocess(data.x_train), data.y_train,
                                                            validation_fraction, seed)
    x_test = preprocess(data.x_test)
    context = records.context(data, seed, records.KERAS, train_samples, test_fraction, validation_fraction, x_train,
                              x_val, x_test, fine_tune_samples)
    results_dir, models_dir = seeds.folder(results_dir, seed), paths.resolve(models_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    return Experiment(data, x_train, y_train, x_val, y_val, x_test, data.y_test, batch_size, seed, results_dir,
                      models_dir, context, user_model=user_model, model_path=model_path)


def base_model(exp: Experiment, epochs: int = 6, learning_rate: float = 3e-3, patience: int | None = None,
               weights: str | None = "imagenet", fine_tune_blocks: int = 0):
    """The user's model (--model-path) as it is; else load the cached base model for these settings, or train it
    to convergence and cache it under models/.

    `patience` None: Adam's rate warms up to `learning_rate` over the first 10 % of `epochs`, then decays to 0 along
    a cosine (keras_models.warmup_cosine); every epoch runs. A number: the course's constant rate, stopping once
    validation accuracy has not improved for `patience` epochs (at most `epochs`). Either way the best validation
    epoch's weights are kept: a base still learning would credit every fine-tuned variant with its own progress.
    The file name holds every setting that changes the model (input size, samples, batch, epochs, schedule or patience,
    learning rate, seed, TensorFlow's kernels; for the pets also the weights and fine-tuned blocks), so a run at other
    settings never picks up a base model that does not fit it. For the pets, `weights` and `fine_tune_blocks` are those
    of `pets_mobilenet` and `train_pets_mobilenet`.
    """
    import tensorflow as tf

    if exp.user_model is not None:
        exp.context.base = records.file_identity(exp.model_path, "--model-path")
        exp.base_info = {"model_path": Path(exp.model_path).name, "sha256": exp.context.base["sha256"],
                         "trained_now": False, "weights": "the user's model", "history": {},
                         "train_samples": len(exp.x_train), "dataset": exp.data.describe()}
        exp.base = exp.user_model
        return exp.base
    size = "x".join(map(str, exp.x_train.shape[1:3]))
    schedule = f"p{patience}" if patience else "cos"
    tag = f"{size}-n{len(exp.x_train)}-b{exp.batch_size}-e{epochs}-{schedule}-lr{learning_rate:g}-s{exp.seed}"
    if exp.is_pets:
        tag += f"-w{keras_models.weights_tag(weights)}-ft{fine_tune_blocks}"
    if records.tensorflow_kernels() == "oneDNN":  # a base trained with Eigen's kernels keeps its old name
        tag += "-onednn"
    path = exp.models_dir / f"{exp.data.key}-base-{tag}.keras"
    history_path = path.with_suffix(".history.json")
    if path.is_file():
        model, trained_now = load_model(path), False
    else:
        tf.keras.utils.set_random_seed(exp.seed)
        keep = tf.keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience or epochs,
                                                restore_best_weights=True)
        fit = {"validation_data": exp.val_ds(), "epochs": epochs, "callbacks": [keep], "verbose": 2}
        per_epoch = math.ceil(len(exp.x_train) / exp.batch_size)  # one graph call an epoch: no per-step callback
        steps = None if patience else epochs * per_epoch
        if exp.is_pets:
            model, used = keras_models.pets_mobilenet(exp.data.num_classes, exp.x_train.shape[1], weights)
            history = keras_models.train_pets_mobilenet(model, exp.train_ds(), learning_rate, fine_tune_blocks,
                                                        steps, per_epoch, **fit)
        else:
            model, used = keras_models.fashion_cnn(exp.data.num_classes, exp.x_train.shape[1:]), "none"
            compile_model(model, learning_rate, steps, per_epoch)
            history = model.fit(exp.train_ds(), **fit).history
        write_json(history_path, {k: [float(v) for v in values] for k, values in history.items()})
        path.with_suffix(".weights.txt").write_text(used)
        save_model(model, path)  # last: the model file marks a finished base
        trained_now = True
    history = read_json(history_path) if history_path.is_file() else {}
    best = int(np.argmax(history["val_accuracy"])) + 1 if history.get("val_accuracy") else None
    exp.context.base = records.file_identity(path, "trained here")
    exp.base_info = {"path": exp.context.base["file"], "sha256": exp.context.base["sha256"], "epochs": best,
                     "max_epochs": epochs, "patience": patience,
                     "schedule": "constant" if patience else "10 % warm-up, cosine decay",
                     "learning_rate": learning_rate, "train_samples": len(exp.x_train), "trained_now": trained_now,
                     "weights": _weights_note(path), "history": history, "dataset": exp.data.describe()}
    if exp.is_pets:
        exp.base_info["fine_tune_blocks"] = fine_tune_blocks
    exp.base = model
    return model


def _weights_note(path: Path) -> str:
    note = path.with_suffix(".weights.txt")
    return note.read_text() if note.is_file() else "unknown"


CONTROL_TIMES = 3  # the control's trajectory, in variants' maxima: prune, cluster, then QAT (PCQAT) fine-tune 3 times


@dataclass(frozen=True)
class FineTuning:
    """How every variant and its control are fine-tuned: Adam at a constant `learning_rate` on the experiment's
    fine-tuning images, in batches of `batch_size`, until `rule` stops it (recovery.Rule)."""

    rule: recovery.Rule
    learning_rate: float
    batch_size: int
    steps_per_epoch: int

    @property
    def steps_per_execution(self) -> int:
        """Steps Keras runs in one graph call: as many as fit between two checks and within an epoch, so that every
        check and every epoch's end still falls between two calls."""
        return math.gcd(self.rule.interval, self.steps_per_epoch)

    @property
    def epochs(self) -> int:
        """Epochs for Keras' fit to cover the rule's maximum (the rule stops it within the last one)."""
        return math.ceil(self.rule.max_steps / self.steps_per_epoch)

    def params(self) -> dict[str, Any]:
        """The settings records keep (and their keys name)."""
        return {"learning_rate": self.learning_rate, "batch_size": self.batch_size, **self.rule.as_record()}

    def longer(self, times: int) -> FineTuning:
        """The same fine-tuning with `times` the maximum: the control of a variant fine-tuned in `times` steps."""
        return replace(self, rule=replace(self.rule, max_steps=times * self.rule.max_steps))


def fine_tuning(exp: Experiment, max_epochs: float = 3, learning_rate: float = 1e-4, checks_per_epoch: float = 4,
                patience: int = 3) -> FineTuning:
    """Fine-tuning to recovery: validation accuracy checked `checks_per_epoch` times an epoch, stopping after
    `patience` checks without a gain or after `max_epochs` epochs of the fine-tuning images."""
    steps_per_epoch = math.ceil(exp.context.selection["fine_tune"] / exp.batch_size)
    rule = recovery.Rule.per_epoch(steps_per_epoch, checks_per_epoch, patience, max_epochs)
    return FineTuning(rule, learning_rate, exp.batch_size, steps_per_epoch)


def watch(exp: Experiment, tuning: FineTuning, keep=None, desc: str = "fine-tuning"):
    """The Keras callback that checks validation accuracy by `tuning`'s rule, stops fit and keeps the best check's
    weights (recovery.keras_watch); a pruned model gets its masks before the first check."""
    return recovery.keras_watch(tuning.rule, exp.x_val, exp.y_val, keep, compress.mask_now, desc)


def fine_tune(model, exp: Experiment, tuning: FineTuning, callbacks: list | None = None, keep=None,
              desc: str = "fine-tuning") -> recovery.Curve:
    """Compile a wrapped model with a fresh Adam at the constant rate and train it on the fine-tuning images until
    the rule stops it; the model keeps the weights of its best check. Returns the recovery curve."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(exp.seed)
    compile_model(model, tuning.learning_rate, steps_per_execution=tuning.steps_per_execution)
    watching = watch(exp, tuning, keep, desc)
    model.fit(exp.fine_tune_ds(), epochs=tuning.epochs, callbacks=[*(callbacks or []), watching], verbose=0)
    return watching.curve


def accuracy_now(exp: Experiment, model) -> float:
    """Test accuracy of a Keras model as it is: a wrapped model right after compression, before fine-tuning."""
    return float((model.predict(exp.x_test, batch_size=256, verbose=0).argmax(axis=1) == exp.y_test).mean())


def accuracy_at_start(exp: Experiment):
    """A Keras callback whose `accuracy` is the test accuracy when fit starts, before the first update: what
    compression cost before fine-tuning buys it back. A pruned model gets its masks first, as at TFMOT's first step.
    """
    import tensorflow as tf

    class AccuracyAtStart(tf.keras.callbacks.Callback):
        accuracy: float | None = None

        def on_train_begin(self, logs: dict | None = None) -> None:
            compress.mask_now(self.model)
            self.accuracy = accuracy_now(exp, self.model)

    return AccuracyAtStart()


def measure(exp: Experiment, name: str, model, reference: dict | None, params: dict[str, Any],
            wrapped: list[str] | None = None, control: dict | None = None, force: bool = False,
            before: float | None = None, key: dict[str, Any] | None = None,
            flatbuffer: bytes | None = None, fine_tuned: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a plain (stripped) Keras model to FP32 TFLite (or take its `flatbuffer`, converted in a notebook
    cell) and evaluate it as variant `name`.

    `wrapped` names the layers that were compressed; the record keeps their kernel statistics. `control` is the
    control's record (control_variant); a variant `fine_tuned` for some steps (recovery.Curve.as_record) is
    compared image by image with the control after as many steps (control_at). `before` is the accuracy right
    after compression, before fine-tuning. A variant finished with the same key (data, base, settings, libraries)
    is never written again unless `force`: its record is returned as it is. `key` defaults to the run's context
    with `params` as the variant's own settings.
    """
    key = key or exp.context.key(params, control)
    if record := load_record(exp.results_dir, name, key, force):
        return record
    path = exp.results_dir / f"{name}.tflite"
    if flatbuffer is None:
        to_tflite(model, path)
    else:
        atomic_write_bytes(path, flatbuffer)
    methods = [m for m, word in (("pruning", "pruned"), ("clustering", "clustered")) if word in name]
    extra = {"dataset": exp.data.describe(), "left_alone": compress.left_alone(model, methods) if methods else []}
    if before is not None:
        extra["accuracy_before_fine_tuning"] = before
    if fine_tuned is not None:
        extra["fine_tuning"] = fine_tuned
    if fine_tuned is not None and control is not None:  # not forced: its key holds the control's digest
        control = control_at(exp, reference, control, fine_tuned["steps"])
    if model is not None and name.startswith(("clustered-", "pruned-")):
        keep_model(exp, name, key, model)
    return evaluate_variant(name, path, exp.x_test, exp.y_test, exp.data.class_names, exp.results_dir,
                            reference, params, compress.kernel_stats(model, wrapped), extra,
                            control["name"] if control else None, key)


def _model_path(exp: Experiment, name: str, key: dict[str, Any]) -> Path:
    return exp.results_dir / "keras" / f"{name}.{records.digest(key)}.keras"


def keep_model(exp: Experiment, name: str, key: dict[str, Any], model) -> Path:
    """Keep a compressed variant's stripped Keras model beside its record, named by the record's key: the start of
    the quantization-aware training that keeps its zeros or centroids (labkit.methods.collaborative). A model kept
    for another key of the same variant is removed."""
    path = _model_path(exp, name, key)
    for old in path.parent.glob(f"{name}.*.keras"):
        old.unlink(missing_ok=True)
    return save_model(model, path)


def kept_model(exp: Experiment, record: dict[str, Any]):
    """The stripped Keras model kept with `record` (keep_model), or None when the record was made without one."""
    path = _model_path(exp, record["name"], record["key"])
    return load_model(path) if path.is_file() else None


def with_kept_model(exp: Experiment, record: dict[str, Any], remake) -> tuple[dict[str, Any], Any]:
    """A parent variant's record and its stripped model, where a chained variant starts; a record made before
    models were kept beside their records is made once more (`remake()`), to have the model."""
    if (model := kept_model(exp, record)) is None:
        record = remake()
        model = kept_model(exp, record)
    return record, model


def clustering_params(clusters: int, tuning: FineTuning) -> dict[str, Any]:
    """The settings a clustered variant's record keeps (and its key names)."""
    return {"clusters": clusters, **tuning.params(), "init": "linear"}


def pruning_params(sparsity: float, tuning: FineTuning) -> dict[str, Any]:
    """The settings a pruned variant's record keeps (and its key names)."""
    return {"sparsity": sparsity, **tuning.params(), "schedule": "constant"}


def check_budget(control: dict, tuning: FineTuning) -> None:
    """A variant is only compared with a control fine-tuned the same way: rule, learning rate and batch."""
    ours = tuning.params()
    theirs = {k: control["params"].get(k) for k in ours}
    if theirs != ours:
        raise LabkitError(f"{control['name']} was fine-tuned otherwise than the variant (control → variant: "
                          f"{records.differences(theirs, ours)}): pass the control made with the variants' "
                          "fine-tuning (experiment.control_variant)")


def snapshots(exp: Experiment) -> recovery.Snapshots:
    """Where the control keeps its weights at every check of its fine-tuning."""
    return recovery.Snapshots(exp.results_dir / "control-steps")


def control_variant(exp: Experiment, base, ref: dict, tuning: FineTuning, force: bool = False) -> dict[str, Any]:
    """The control: the base fine-tuned exactly as the variants are (same batches, rate and checks), without
    compression, for three times the variants' maximum (prune, cluster, then quantization-aware training: PCQAT
    fine-tunes three times), keeping its weights at every check. Its record is the control at its own best check:
    how much the base still had to learn.

    Fine-tuning is extra training the base never had; against the base, a variant would be credited with what
    that training bought. Against the control after as many steps (control_at), the difference is the
    compression's alone.
    """
    longer = tuning.longer(CONTROL_TIMES)
    name, params = "control-fp32", {**tuning.params(), "trajectory_steps": longer.rule.max_steps}
    if record := load_record(exp.results_dir, name, exp.context.key(params), force):
        return record
    kept = snapshots(exp)
    kept.clear()  # another control's weights: they must not pair with this one's variants
    model = compress.copy_model(base)
    curve = fine_tune(model, exp, replace(longer, rule=longer.rule.to_the_maximum()), keep=kept.keep,
                      desc="control: fine-tuning")
    judged = curve.under(longer.rule)
    return measure(exp, name, model, ref, params, force=True, key=exp.context.key(params),
                   fine_tuned=judged.as_record())  # still recovering, by the variants' patience: base unconverged


def control_at(exp: Experiment, ref: dict | None, control: dict, steps: int, force: bool = False) -> dict[str, Any]:
    """The control after `steps` steps of its fine-tuning: what a variant that kept the weights of that step is
    compared with. The control's own record when that is its best check."""
    name, params = recovery.paired_name(control, steps), {"steps": steps}
    if name == control["name"]:
        return control
    key = exp.context.key(params, control)
    kept = snapshots(exp)
    with lock.one_maker(kept.folder / ".pairing.lock"):
        if record := load_record(exp.results_dir, name, key, force):
            return record
        model = kept.load_into(compress.copy_model(exp.base), steps)
        return measure(exp, name, model, ref, params, force=True, key=key)


def reference(exp: Experiment, base, force: bool = False) -> dict[str, Any]:
    """The FP32 TFLite base model's record: the reference of every comparison."""
    return measure(exp, "base-fp32", base, None, dict(exp.base_info), force=force, key=exp.context.key({}))


def quantized_variant(exp: Experiment, base, ref: dict, force: bool = False) -> dict[str, Any]:
    """INT8 post-training quantization of the base, calibrated on 300 training images."""
    name, params = "quantized-int8", {"calibration_samples": min(300, len(exp.x_train))}
    key = exp.context.key(params, ref)
    if record := load_record(exp.results_dir, name, key, force):
        return record
    path = exp.results_dir / f"{name}.tflite"
    to_int8_tflite(base, exp.x_train[:300], path)
    return evaluate_variant(name, path, exp.x_test, exp.y_test, exp.data.class_names, exp.results_dir, ref,
                            params, control=ref["name"], key=key)


def clustered_variant(exp: Experiment, base, clusters: int, ref: dict, control: dict, tuning: FineTuning,
                      force: bool = False) -> dict[str, Any]:
    """Cluster a copy of the base to `clusters` centroids, fine-tune to recovery, strip, convert and measure it."""
    name, params = f"clustered-{clusters}-fp32", clustering_params(clusters, tuning)
    if record := load_record(exp.results_dir, name, exp.context.key(params, control), force):
        return record
    check_budget(control, tuning)
    model = compress.cluster(base, clusters, only=exp.layer_filter())
    before = accuracy_now(exp, model)
    curve = fine_tune(model, exp, tuning, desc=f"{name}: fine-tuning")
    return measure(exp, name, compress.strip(model), ref, params, compress.wrapped_names(model), control,
                   force=True, before=before, fine_tuned=curve.as_record())


def pruned_variant(exp: Experiment, base, sparsity: float, ref: dict, control: dict, tuning: FineTuning,
                   force: bool = False) -> dict[str, Any]:
    """Prune a copy of the base to `sparsity`, fine-tune to recovery with the pruning callbacks, strip, convert
    and measure it."""
    name, params = f"pruned-{sparsity:g}-fp32", pruning_params(sparsity, tuning)
    if record := load_record(exp.results_dir, name, exp.context.key(params, control), force):
        return record
    check_budget(control, tuning)
    model = compress.prune(base, sparsity, only=exp.layer_filter("pruning"))
    compress.mask_now(model)
    before = accuracy_now(exp, model)
    curve = fine_tune(model, exp, tuning, compress.pruning_callbacks(exp.results_dir / "logs" / name),
                      desc=f"{name}: fine-tuning")
    return measure(exp, name, compress.strip(model), ref, params, compress.wrapped_names(model), control,
                   force=True, before=before, fine_tuned=curve.as_record())


def pruned_clustered_variant(exp: Experiment, base, sparsity: float, clusters: int, ref: dict, control: dict,
                             tuning: FineTuning, force: bool = False) -> dict[str, Any]:
    """Prune, then cluster with preserve_sparsity (zeros stay zeros), fine-tuning to recovery after each step.

    The pruning is pruned-<sparsity>-fp32's, its own variant (made now if this run has not made it): the same
    seed, batches and rule would train the same weights again, bit for bit. It is compared with the control after
    the steps of both fine-tunings together. The accuracy before fine-tuning is the one right after clustering,
    before the second fine-tuning.
    """
    name = f"pruned-{sparsity:g}-clustered-{clusters}-fp32"
    params = {"sparsity": sparsity, "clusters": clusters, **tuning.params()}
    if record := load_record(exp.results_dir, name, exp.context.key(params, control), force):
        return record
    check_budget(control, tuning)
    parent, pruned = with_kept_model(exp, pruned_variant(exp, base, sparsity, ref, control, tuning),
                                     lambda: pruned_variant(exp, base, sparsity, ref, control, tuning, force=True))
    pruning = parent["fine_tuning"]
    model = compress.cluster(pruned, clusters, only=exp.layer_filter(), preserve_sparsity=True)
    before = accuracy_now(exp, model)
    clustering = fine_tune(model, exp, tuning, desc=f"{name}: clustering").as_record()
    fine_tuned = {"steps": pruning["steps"] + clustering["steps"],
                  "still_recovering": pruning["still_recovering"] or clustering["still_recovering"],
                  "pruning": pruning, "clustering": clustering}
    return measure(exp, name, compress.strip(model), ref, params, compress.wrapped_names(model), control,
                   force=True, before=before, fine_tuned=fine_tuned)


def pick_demo(exp: Experiment, values: list, name_of, force: bool = False):
    """The value to walk through step by step: the middle one not yet done in this run's context (data, base,
    seed, libraries), so a resumed run never redoes a finished variant. When all are done, the middle one: its
    steps run again to show them, but `measure` keeps its finished record."""
    pending = [v for v in values if force or not exp.context.made(read_record(exp.results_dir, name_of(v)))]
    choices = pending or values
    return choices[len(choices) // 2]
