"""Structured-pruning helpers on their own: the model, its state files, NNI's config, exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import LabkitError
from labkit.deploy.export import parity, to_onnx, torch_to_tflite
from labkit.methods import structured
from labkit.models import torch_models


def test_classifier_shapes_and_logits():
    model = torch_models.FashionClassifier()
    out = model(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch_models.shapes(model)["fc1"] == [1024, 15488]
    assert sum(p.numel() for p in model.parameters()) == 15_876_874


def test_fit_stops_early_and_keeps_the_best_epoch(monkeypatch):
    from labkit.data import torch_loader

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])  # validation accuracy per epoch: best at 2, then 2 without gain
    weights = []

    def fake_predict(net, loader):
        weights.append(net[1].weight.detach().clone())
        accuracy = next(scores)
        return np.eye(2)[[0] * round(100 * accuracy) + [1] * round(100 * (1 - accuracy))], np.zeros(100, int)

    monkeypatch.setattr(torch_models, "predict", fake_predict)
    history = torch_models.fit(model, torch_loader(x, y, 16), None, 1e-2, epochs=10, patience=2)
    assert history["val_accuracy"] == [0.5, 0.7, 0.6, 0.65] and len(history["loss"]) == 4
    assert torch.equal(model[1].weight, weights[1])  # epoch 2's weights restored
    assert 0 <= history["accuracy"][0] <= 1


def test_state_of_another_architecture_is_one_clear_error(tmp_path):
    other = torch.nn.Sequential(torch.nn.Linear(3, 2))
    path = torch_models.save_state(other, tmp_path / "wrong.pt")
    with pytest.raises(LabkitError, match="wrong.pt does not match the FashionClassifier architecture") as err:
        torch_models.load_state(torch_models.FashionClassifier(), path)
    assert "\n" not in str(err.value)


def test_truncated_state_file_is_one_clear_error(tmp_path):
    path = tmp_path / "cut.pt"
    path.write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(LabkitError, match="cut.pt does not match"):
        torch_models.load_state(torch_models.FashionClassifier(), path)


def test_trainer_stops_after_the_sample_budget():
    x = np.zeros((100, 28, 28, 1), np.float32)
    from labkit.data import torch_loader

    loader = torch_loader(x, np.zeros(100, np.int64), batch_size=8)
    model = torch_models.FashionClassifier()
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(len(o)))
    structured.make_trainer(loader, 20)(model, torch.optim.SGD(model.parameters(), lr=0.0), None)
    assert sum(seen) == 24  # three batches of 8 reach the 20-sample budget


def test_exports_agree_with_torch(tmp_path):
    torch.manual_seed(0)
    model = torch_models.FashionClassifier().eval()
    sample = torch.zeros(1, 1, 28, 28)
    onnx_path = to_onnx(model, sample, tmp_path / "m.onnx")
    tflite_path = torch_to_tflite(model, sample, tmp_path / "m.tflite")
    batch = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    report = parity(model, onnx_path, tflite_path, batch)
    assert report["onnx_max_abs_diff"] < 1e-4 and report["tflite_argmax_agreement"] == 1.0
    assert not list(tmp_path.glob("*.part.*")) and not list(tmp_path.glob("*.data"))
    with pytest.raises(AssertionError, match="differs from PyTorch"):
        parity(torch_models.FashionClassifier(), onnx_path, tflite_path, batch)


def test_the_tflite_export_takes_any_batch_and_keeps_its_file_when_the_rewrite_would_change_it(tmp_path):
    import litert_torch

    from labkit.deploy import tflite
    from labkit.deploy.export import dynamic_batch

    torch.manual_seed(0)
    model, sample = torch_models.FashionClassifier(channels=(4, 4, 4), hidden=16).eval(), torch.zeros(1, 1, 28, 28)
    path = torch_to_tflite(model, sample, tmp_path / "m.tflite")
    interpreter = tflite.load(path)
    assert interpreter.get_input_details()[0]["shape_signature"][0] == -1
    batch = np.random.default_rng(1).random((70, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(tflite.predict(interpreter, batch), expected, atol=1e-5)
    fixed = tmp_path / "fixed.tflite"
    litert_torch.convert(model, (sample,)).export(str(fixed))
    exported = fixed.read_bytes()
    other = torch_models.FashionClassifier(channels=(4, 4, 4), hidden=16).eval()  # not the file's weights
    assert not dynamic_batch(fixed, other, sample) and fixed.read_bytes() == exported


def test_checkpoints_keep_a_pruned_model_and_resume_from_it(tmp_path):
    pruned = torch_models.FashionClassifier(channels=(4, 8, 16), hidden=512).eval()
    key = {"base": {"sha256": "a" * 64}, "variant": {"sparsity": 0.5}}
    checkpoints = structured.Checkpoints(tmp_path, "structured-0.5", key)
    assert not checkpoints.done("pruned")
    checkpoints.save("pruned", pruned, {"accuracy": 0.5})
    checkpoints.save("base", measured={"accuracy": 0.9})

    resumed = structured.Checkpoints(tmp_path, "structured-0.5", key)
    assert resumed.done("base") and resumed.done("pruned") and not resumed.done("fine-tuned")
    assert resumed.done_stages == ["base", "pruned"]  # in the lab's order, whatever the order of saving
    assert resumed.measured == {"pruned": {"accuracy": 0.5}, "base": {"accuracy": 0.9}}
    loaded = resumed.load("pruned")
    assert torch_models.shapes(loaded) == torch_models.shapes(pruned)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), pruned(x))
    assert not structured.Checkpoints(tmp_path, "structured-0.5", key, force=True).done("pruned")
    with pytest.raises(ValueError, match="unknown stage 'speedup'"):
        checkpoints.save("speedup")


def test_stages_kept_for_another_base_are_not_reused(tmp_path):
    said: list[str] = []
    structured.Checkpoints(tmp_path, "structured-0.5", {"base": {"sha256": "a" * 64}}).save("base", measured={})
    other = structured.Checkpoints(tmp_path, "structured-0.5", {"base": {"sha256": "b" * 64}}, log=said.append)
    assert not other.done("base") and other.measured == {}
    assert said == ["recomputing structured-0.5 stages (test_stages_kept_for_another_b0): base.sha256 aaaaaaaaaa… → "
                    "bbbbbbbbbb…"]


def test_fit_with_one_cycle_runs_every_epoch_and_keeps_the_best(monkeypatch):
    from labkit.data import torch_loader

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 40)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    scores = iter([0.5, 0.7, 0.6, 0.65])  # no gain after epoch 2: a schedule still runs to its end
    weights, schedules = [], []

    def fake_predict(net, loader):
        weights.append(net[1].weight.detach().clone())
        accuracy = next(scores)
        return np.eye(2)[[0] * round(100 * accuracy) + [1] * round(100 * (1 - accuracy))], np.zeros(100, int)

    cycle = torch_models.one_cycle

    def watched(optimizer, peak, steps):
        schedules.append(cycle(optimizer, peak, steps))
        return schedules[-1]

    monkeypatch.setattr(torch_models, "predict", fake_predict)
    monkeypatch.setattr(torch_models, "one_cycle", watched)
    history = torch_models.fit(model, torch_loader(x, y, 16), None, 2e-3, epochs=4, patience=None)
    assert history["val_accuracy"] == [0.5, 0.7, 0.6, 0.65]
    assert torch.equal(model[1].weight, weights[1])  # epoch 2's weights restored
    (schedule,) = schedules
    assert schedule.last_epoch == schedule.total_steps == 4 * 3  # stepped once per batch, to the cycle's end
