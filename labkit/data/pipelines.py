"""From uint8 images to model inputs: scaling, tf.data pipelines for Keras and DataLoaders for PyTorch."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocess(x: np.ndarray) -> np.ndarray:
    """float32 NHWC inputs: grayscale scaled to [0, 1] with a channel axis; RGB normalised as ImageNet (the course)."""
    x = x.astype(np.float32) / 255.0
    if x.ndim == 3:
        return x[..., None]
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
               augment: bool = False):
    """A batched, prefetched tf.data pipeline; `augment` adds random flips and brightness (for pet photos)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        def jitter(image, label):
            image = tf.image.random_flip_left_right(image, seed=seed)
            return tf.image.random_brightness(image, 0.2, seed=seed), label

        ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def torch_loader(x: np.ndarray, y: np.ndarray, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
    """A DataLoader of NCHW float tensors and int64 labels, shuffled with its own seeded generator."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    dataset = TensorDataset(images, torch.from_numpy(y.astype(np.int64)))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
