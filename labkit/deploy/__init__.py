"""Deploying a model to an edge runtime and measuring the file: export (Keras to FP32 or INT8 TFLite, PyTorch to
ONNX and TFLite), the LiteRT interpreter and its batch-1 timing (tflite), ONNX Runtime (onnxrt), the Netron graph
views (netron), the file's size, ZIP deflation and entropy bound (size), and what an INT8 file kept of pruning's
zeros and clustering's centroids (preservation).

It knows nothing of how a model was made or judged: it may import the shared basics at labkit's top only.
"""
