"""The compression methods as steps of the lab: TFMOT clustering, pruning and stripping (compress), one Keras
experiment from base to measured variant (experiment), quantization-aware training that keeps pruning's zeros and
clustering's centroids to INT8 (collaborative), NNI's structured pruning with speed-up, fine-tuning and export
(structured), and Torch-Pruning at the same widths (tp_pruning).

Each step ends in a record, so it may import every stage below it: the shared basics, labkit.data, labkit.deploy,
labkit.models and labkit.results.
"""
