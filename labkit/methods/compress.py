"""TFMOT compression steps: weight clustering, magnitude pruning, fine-tuning and stripping.

TFMOT wrappers change the model they are given, so every step starts from a fresh copy of the base.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labkit.errors import LabkitError

LayerFilter = Callable[[object], bool]


def copy_model(model):
    """A new model with the same architecture and weights, sharing nothing with `model`."""
    import tensorflow as tf

    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.trainable = True
    return clone


def _wrap(model, wrap: Callable, only: LayerFilter | None):
    import tensorflow as tf

    model = copy_model(model)
    if only is None:
        return wrap(model)
    return tf.keras.models.clone_model(model, clone_function=lambda layer: wrap(layer) if only(layer) else layer)


def check_clusters(clusters: int) -> int:
    """A cluster count must be an integer of at least 2."""
    if int(clusters) != clusters or clusters < 2:
        raise LabkitError(f"cluster count {clusters} is invalid: use an integer of at least 2 (e.g. 16)")
    return int(clusters)


def check_sparsity(sparsity: float) -> float:
    """A sparsity must lie strictly between 0 and 1."""
    if not 0 < sparsity < 1:
        raise LabkitError(f"sparsity {sparsity} is outside (0, 1): use a share of weights to zero, e.g. 0.5")
    return float(sparsity)


def cluster(model, clusters: int, only: LayerFilter | None = None, preserve_sparsity: bool = False):
    """A copy of `model` wrapped for weight clustering into `clusters` centroids, initialised linearly.

    `only` picks the layers to cluster (default: all that TFMOT supports). `preserve_sparsity`
    keeps the zeros of a pruned model at zero (sparsity-preserving clustering).
    """
    import tensorflow_model_optimization as tfmot

    params = {"number_of_clusters": check_clusters(clusters),
              "cluster_centroids_init": tfmot.clustering.keras.CentroidInitialization.LINEAR,
              "preserve_sparsity": preserve_sparsity}
    return _wrap(model, lambda m: tfmot.clustering.keras.cluster_weights(m, **params), only)


def prune(model, sparsity: float, only: LayerFilter | None = None):
    """A copy of `model` wrapped for magnitude pruning to a constant `sparsity` from the first step."""
    import tensorflow_model_optimization as tfmot

    schedule = tfmot.sparsity.keras.ConstantSparsity(check_sparsity(sparsity), begin_step=0, frequency=1)
    return _wrap(model, lambda m: tfmot.sparsity.keras.prune_low_magnitude(m, pruning_schedule=schedule), only)


def mask_now(model) -> None:
    """Apply the pruning masks at once, as TFMOT does at the first training step, so that a pruned model can be
    measured right after compression, before fine-tuning. A model without pruning wrappers is left as it is."""
    import tensorflow_model_optimization as tfmot

    if not any(hasattr(layer, "pruning_obj") for layer in model.layers):
        return  # UpdatePruningStep refuses a model with nothing to prune
    step = tfmot.sparsity.keras.UpdatePruningStep()
    step.set_model(model)
    step.on_train_begin()  # the schedule starts at step 0
    for layer in model.layers:
        if pruning := getattr(layer, "pruning_obj", None):
            pruning.conditional_mask_update()
            pruning.weight_mask_op()


def pruning_callbacks(log_dir: str | None = None) -> list:
    """UpdatePruningStep (required: it advances the schedule) and, with a log dir, PruningSummaries."""
    import tensorflow_model_optimization as tfmot

    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if log_dir:
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=str(log_dir)))
    return callbacks


def strip(model):
    """Remove clustering and pruning wrappers, leaving plain layers with the final weights."""
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(tfmot.clustering.keras.strip_clustering(model))


KEEPS = ("nothing", "zeros", "centroids", "zeros and centroids")


def quantize_aware(model, keeps: str = "nothing"):
    """A copy of a stripped `model` wrapped for quantization-aware training (INT8 weights and activations).

    `keeps` says what of an earlier compression the training must not undo (TFMOT's collaborative optimization):
    "nothing" is plain QAT, "zeros" PQAT (pruning's zeros stay zero), "centroids" CQAT (clustered weights stay on
    their centroids), "zeros and centroids" PCQAT. Plain QAT of a clustered or pruned model moves every weight on
    its own and loses both.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras

    keras, combine = tfmot.quantization.keras, tfmot.experimental.combine
    schemes = {"nothing": keras.default_8bit.Default8BitQuantizeScheme,
               "zeros": combine.Default8BitPrunePreserveQuantizeScheme,
               "centroids": lambda: combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False),
               "zeros and centroids": lambda: combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)}
    if keeps not in KEEPS:
        raise LabkitError(f"quantization-aware training cannot keep {keeps!r}: use one of {', '.join(KEEPS)}")
    scheme = schemes[keeps]()
    try:
        return keras.quantize_apply(keras.quantize_annotate_model(copy_model(model)), scheme)
    except RuntimeError as error:  # a layer QAT cannot wrap, e.g. a BatchNormalization not after a convolution
        if "is not supported" not in str(error):
            raise
    # then only the layers TFMOT's 8-bit registry takes train quantization-aware; the others stay float until the
    # converter quantizes them from the representative dataset, as post-training INT8 does
    supported = schemes["nothing"]().get_quantize_registry().supports
    annotated = tf_keras.models.clone_model(copy_model(model), clone_function=lambda layer: (
        keras.quantize_annotate_layer(layer) if supported(layer) else layer))  # the copy's layers, their weights
    return keras.quantize_apply(annotated, scheme)


def calibrate(qat, images: np.ndarray) -> None:
    """Set a quantization-aware model's INT8 ranges from `images`, as its first training step would, and nothing
    else: until then the input's range is [0, 0], every image rounds to zero and its accuracy is chance, which is
    not what the quantization costs. One forward pass in training mode sets the ranges; every other weight (batch
    normalization's statistics among them) is put back."""
    ranges = ("_min:0", "_max:0", "optimizer_step:0")
    others = [(w, w.numpy()) for w in qat.weights if not w.name.endswith(ranges)]
    qat(images, training=True)
    for weight, value in others:
        weight.assign(value)


def kernels(model) -> dict[str, np.ndarray]:
    """The kernel (weight matrix) of every layer that has one, by layer name."""
    return {layer.name: layer.kernel.numpy() for layer in model.layers
            if getattr(layer, "kernel", None) is not None}


def wrapped_names(model) -> list[str]:
    """Names of the layers a TFMOT wrapper holds (the ones being clustered or pruned)."""
    import tensorflow as tf

    return [layer.layer.name for layer in model.layers if isinstance(layer, tf.keras.layers.Wrapper)]


def kernel_stats(model, names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Per kernel (of the layers in `names`, default all): unique values and share of zeros.

    Unique values are clustering's proof (at most k), the share of zeros is pruning's.
    """
    return {name: {"unique_values": int(np.unique(w).size), "sparsity": float(np.mean(w == 0)), "size": int(w.size)}
            for name, w in kernels(model).items() if names is None or name in names}


def head_and_late_convs(layer) -> bool:
    """For MobileNetV2: only Dense layers and the last 1x1 convolutions (clustering all of it collapses)."""
    kind = type(layer).__name__
    return kind == "Dense" or (kind == "Conv2D" and (layer.name.startswith("block_16") or layer.name == "Conv_1"))


def _registry(method: str):
    if method == "pruning":
        from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

        return PruneRegistry, "get_prunable_weights"
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    return ClusteringRegistry, "get_clusterable_weights"


def compressible(layer, method: str) -> bool:
    """Whether TFMOT can wrap `layer` for `method` ("clustering" or "pruning") and finds weights in it to compress.

    TFMOT's registries accept some layers only to leave their weights alone (BatchNormalization, and
    DepthwiseConv2D for clustering); nested models and custom layers it refuses outright.
    """
    registry, custom = _registry(method)
    if hasattr(layer, custom):
        return True
    return bool(layer.weights) and registry.supports(layer) and bool(registry._LAYERS_WEIGHTS_MAP.get(type(layer), 1))


def compressible_by(method: str) -> LayerFilter:
    """The layer filter that wraps every layer TFMOT can compress for `method`, for a user's model of any shape."""
    return lambda layer: compressible(layer, method)


def left_alone(model, methods: list[str]) -> list[str]:
    """Names (and types) of the layers with weights that TFMOT cannot compress by every one of `methods`: they keep
    their FP32 weights, so they cap what zip can gain."""
    return [f"{layer.name} ({type(layer).__name__})" for layer in model.layers
            if layer.weights and not all(compressible(layer, m) for m in methods)]
