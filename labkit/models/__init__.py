"""The models of the lab: the Keras CNN and the pets' MobileNetV2 (keras_models), the course's PyTorch classifier
(torch_models), the user's own classifier and files checked against the data (model_inputs, user_files), and how
any of them is fine-tuned until it recovers (recovery: the stopping rule, the curve, the control's snapshots).

It may import the shared basics, labkit.data and labkit.deploy (a PyTorch model is measured on its TFLite file).
"""
