"""The course's structured-pruning command line: its own state dict in, every named file out, bad files refused."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from conftest import idx_folder

from labkit.deploy import tflite
from labkit.models.torch_models import FashionClassifier
from labkit.records import load_records, sha256_of
from labkit.run import cli


def course_state_dict(path: Path, classes: int = 3) -> Path:
    """A state dict of the course's classifier, as `torch.save(model.state_dict(), path)` writes it, with a 64-wide
    fc1 (--input-model takes any widths; the course's 1024 only makes every export slower)."""
    torch.manual_seed(0)
    torch.save(FashionClassifier(classes, hidden=64).state_dict(), path)
    return path


def tiny(tmp_path: Path) -> list[str]:
    """The data, folders and scale shared by the test's runs."""
    return ["--dataset-path", str(tmp_path / "fashion-dataset"), "--results-path", str(tmp_path / "results"),
            "--test-dataset-fraction", "0.5", "-p", "train_samples=150", "-p", "training_batches=64",
            "-p", "netron_live=False", "-p", f"models_dir={tmp_path / 'models'}"]


def course_command(tmp_path: Path, input_model: Path, out: Path) -> list[str]:
    return ["run", "--input-model", str(input_model), "--backup-model", str(out / "backup-model.pth"),
            "--final-model", str(out / "final-model.pth"), "--onnx-model", str(out / "model.onnx"),
            "--tflite-model", str(out / "model.tflite"), *tiny(tmp_path)]


def nearest(rows: torch.Tensor, among: torch.Tensor) -> float:
    """The largest distance from a row to its nearest row of `among` (0 when every row is one of them)."""
    return float(torch.cdist(rows.flatten(1), among.flatten(1)).min(dim=1).values.max())


@pytest.mark.notebook
@pytest.mark.own_lab(reason="a used folder: the lab's structured pruning on a base of its own, then the course's "
                            "command on the course's state dict, twice")
def test_the_courses_structured_command_writes_every_named_file_in_a_used_folder(tmp_path):
    """After the lab's own structured pruning in the same results folder (its own trained base), the course's command
    still prunes the state dict it is given and writes its four files."""
    idx_folder(tmp_path / "fashion-dataset")
    assert cli.main(["run", "--tasks", "structured-0.5", *tiny(tmp_path), "-p", "base_epochs=1",
                     "-p", "hidden_units=64"]) == 0
    lab_base = torch.load(next((tmp_path / "models").glob("*-classifier-*.pt")), weights_only=True)
    out = tmp_path / "out"
    out.mkdir()
    assert cli.main(course_command(tmp_path, course_state_dict(tmp_path / "classifier.pth"), out)) == 0
    backup = torch.load(out / "backup-model.pth", weights_only=True)
    final = torch.load(out / "final-model.pth", weights_only=True)
    assert [backup[f"conv{i}.weight"].shape[0] for i in (1, 2, 3)] == [4, 8, 16] and backup["fc2.weight"].shape[0] == 3
    given = torch.load(tmp_path / "classifier.pth", weights_only=True)
    # pruning kept some of the given model's conv1 filters (moved by at most a few Adam steps), not the lab base's
    assert nearest(backup["conv1.weight"], given["conv1.weight"]) < 0.01
    assert nearest(backup["conv1.weight"], lab_base["conv1.weight"]) > 0.05
    FashionClassifier.sized_like(final).load_state_dict(final)
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))
    tflite.load(out / "model.tflite")
    assert sorted(p.name for p in out.iterdir()) == ["backup-model.pth", "final-model.pth", "model.onnx",
                                                     "model.tflite"]  # no temporary files left
    records = {r["name"]: r for r in load_records(tmp_path / "results" / "seed-42")}
    # fine-tuning came between them: the final model holds its best check's weights, the pruned ones if that is step 0
    kept = records["structured-0.5"]["fine_tuning"]["steps"]
    assert torch.equal(backup["fc1.weight"], final["fc1.weight"]) == (kept == 0)
    assert records["torch-base-fp32"]["params"]["input_model"] == "classifier.pth"
    assert records["torch-base-fp32"]["params"]["dataset"].startswith("idx (fashion-dataset)")
    for name in ("torch-base-fp32", "torch-control-fp32", "structured-0.5"):
        assert records[name]["key"]["base"] == {"source": "--input-model", "file": "classifier.pth",
                                                "sha256": sha256_of(tmp_path / "classifier.pth")}
    assert (out / "model.tflite").read_bytes() == (tmp_path / "results" / "seed-42" / "structured-0.5-fp32.tflite"
                                                   ).read_bytes()
    assert len(list((tmp_path / "models").glob("*.pt"))) == 1  # the given state dict was the base: nothing trained
    (out / "model.onnx").unlink()
    assert cli.main(course_command(tmp_path, tmp_path / "classifier.pth", out)) == 0  # everything kept: still written
    assert (out / "model.onnx").read_bytes() == (tmp_path / "results" / "seed-42" / "structured-0.5-fp32.onnx"
                                                 ).read_bytes()


def test_bad_course_files_are_one_line_errors_before_training(tmp_path, capsys):
    idx_folder(tmp_path / "fashion-dataset", n=30)
    out = tmp_path / "out"
    out.mkdir()
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 4)}, other)
    ten_classes = course_state_dict(tmp_path / "ten.pth", classes=10)
    cases = [(other, out, "does not match the FashionClassifier architecture .* --input-model takes"),
             (ten_classes, out, "ten.pth classifies into 10 classes, the data has 3; --input-model takes"),
             (course_state_dict(tmp_path / "ok.pth"), tmp_path / "missing", "folder .*missing does not exist")]
    for input_model, folder, message in cases:
        assert cli.main(course_command(tmp_path, input_model, folder)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert __import__("re").search(message, err), err
    assert not (tmp_path / "results").exists()
