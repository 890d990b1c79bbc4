"""The course's pet model: MobileNetV2 from a weights file (tests cannot download ImageNet's), frozen backbone,
trained head, fine-tuned top blocks. In process: the notebook path of the pets is tested in test_notebooks_tfmot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labkit.errors import LabkitError
from labkit.methods import experiment
from labkit.models.keras_models import top_block_layers
from labkit.run import runner


def mobilenet_weights(path: Path, size: int = 32) -> Path:
    """Weights of a randomly initialised MobileNetV2 without its top, saved as ImageNet's are shipped."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    tf.keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None).save_weights(path)
    return path


def test_a_weights_file_is_the_backbone_and_only_the_head_and_top_blocks_train(tmp_path, pets_dir):
    import tensorflow as tf

    weights = mobilenet_weights(tmp_path / "mobilenet_v2_notop.h5")
    exp = experiment.prepare("oxford-pets", str(pets_dir), image_size=32, batch_size=4,
                             results_dir=tmp_path / "results", models_dir=tmp_path / "models")
    model = experiment.base_model(exp, epochs=1, weights=str(weights), fine_tune_blocks=1)
    assert exp.base_info["weights"] == f"file {weights}" and exp.base_info["fine_tune_blocks"] == 1
    assert len(list((tmp_path / "models").glob("oxford-pets-*-base-32x32-*-wfile*-ft1*.keras"))) == 1
    source = tf.keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=str(weights))
    same = {layer.name: all(np.array_equal(a, b) for a, b in zip(layer.get_weights(),
                                                                  model.get_layer(layer.name).get_weights(),
                                                                  strict=True))
            for layer in source.layers if layer.weights}
    top = {layer.name for layer in top_block_layers(model, 1)}
    assert top == {"block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"}
    assert all(same[name] for name in same if name not in top)  # the frozen backbone is the file's, untouched
    assert not any(same[name] for name in top)  # the top block was fine-tuned


def test_a_missing_weights_file_is_one_line_before_training(tmp_path, pets_dir):
    with pytest.raises(LabkitError, match=r"parameter weights=.*nope.h5 does not exist\): allowed imagenet, none"):
        runner.run(["clustered-4-fp32"], dataset="oxford-pets", dataset_root=str(pets_dir),
                   results_path=str(tmp_path / "results"), params={"weights": "nope.h5"}, log=lambda _: None)
    assert not (tmp_path / "results").exists()
