"""The lab summary: its README in the course's shape (the answers of labkit.results.answers, every table, each variant's
metrics and confusion matrix, the structured-pruning stages, the model files), and the folder it is written to."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.deploy.boards import ALLOWANCE, Board
from labkit.files import atomic_write_text, read_json, write_json
from labkit.records import made_by
from labkit.results import answers, fit, pruners, report, seeds, speed, stats, verdicts
from labkit.results.scale import note as scale_note

Record = dict[str, Any]


def file_inventory(folders: list[Path], patterns: tuple[str, ...] = ("*.keras", "*.pt", "*.tflite", "*.onnx")
                   ) -> pd.DataFrame:
    """Model files with size and SHA-256, so a reader can check a regenerated model against the summary."""
    rows = []
    for folder in folders:
        for pattern in patterns:
            for path in sorted(Path(folder).glob(pattern)):
                rows.append({"file": f"{Path(folder).name}/{path.name}", "size (KB)": path.stat().st_size / 1024,
                             "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]})
    return pd.DataFrame(rows)


def control_words(control: dict | None, variants: str = "compressed variant") -> str:
    """How the variants were fine-tuned and what they are compared with, from the control's record (the Keras one,
    or the PyTorch one with `variants` "structurally pruned model")."""
    if not control or "check_every_steps" not in control["params"]:
        return f"Every {variants} is compared with a control: the base fine-tuned exactly as long, without " \
               "compression."
    rule, tuned = control["params"], control["fine_tuning"]
    rate = rule.get("learning_rate", rule.get("fine_tune_learning_rate"))
    converged = (f"The control gained {control['accuracy_change_pp']:+.2f} pp on the base at its best check (step "
                 f"{tuned['steps']})" + ("; it reached the maximum before the rule saw it level off: more steps "
                                         "might have moved it." if tuned["still_recovering"] else "."))
    return (f"Every {variants} is fine-tuned until it has recovered: validation accuracy checked every "
            f"{rule['check_every_steps']} steps, stopping after {rule['patience_checks']} checks without a gain or "
            f"at {rule['max_steps']} steps, at a learning rate of {rate:g}; it keeps its best check's weights and is "
            "compared with the control, the base fine-tuned the same way on the same batches without compression, "
            f"after as many steps. {converged}")


def training_words(info: dict[str, Any]) -> str:
    """How a base was trained, in words: its learning-rate schedule (every epoch run) or early stopping, and the
    epoch kept."""
    if info.get("patience") is None and info.get("schedule"):
        epochs = info["max_epochs"]
        return (f"{epochs} epoch{'s' * (epochs != 1)} along a learning-rate schedule ({info['schedule']}), peak "
                f"{info.get('learning_rate'):g}; the best validation epoch ({info.get('epochs')}) kept")
    return f"early stopping kept epoch {info.get('epochs')} of at most {info.get('max_epochs')}"


def notebook_durations(notebooks: Path) -> dict[str, float]:
    """Wall time in seconds of each executed notebook, from papermill's metadata."""
    durations = {}
    for path in sorted(Path(notebooks).glob("0*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration"):
            durations[path.stem] = float(meta["duration"])
    return durations


def seed_durations(results_root: Path, chosen: list[int]) -> dict[int, float]:
    """Wall time in seconds of the chosen seeds' notebooks under a results folder, by seed."""
    return {seed: sum(notebook_durations(seeds.folder(results_root, seed) / "notebooks").values()) for seed in chosen}


def made_by_table(records: list[Record], used: list[int] | None = None) -> pd.DataFrame:
    """What made the numbers of each base's records (see labkit.records.made_by), a column per base."""
    named = {r["name"]: r for r in records}
    columns = {label: made_by(named[name], used) for label, name in
               (("Keras base (01, 02)", "base-fp32"), ("PyTorch base (03)", "torch-base-fp32")) if name in named}
    return pd.DataFrame(columns)


MANIFEST = ".labkit-summary.json"  # the files the last summary wrote in its folder


def clear(summary_dir: Path) -> None:
    """Remove what the last summary written to summary_dir left there (its README, pictures and HTML reports, as its
    manifest lists them), so that a summary folder never holds the files of two runs. Other files stay."""
    manifest = Path(summary_dir) / MANIFEST
    if manifest.is_file():
        for name in read_json(manifest)["files"]:
            (manifest.parent / name).unlink(missing_ok=True)
    write_json(manifest, {"files": []})


def claim(summary_dir: Path, paths: list[Path]) -> None:
    """Add files just written to summary_dir to its manifest: the next summary there removes them first."""
    manifest = Path(summary_dir) / MANIFEST
    listed = read_json(manifest)["files"] if manifest.is_file() else []
    names = [str(Path(p).relative_to(summary_dir)) for p in paths]
    write_json(manifest, {"files": sorted(set(listed) | set(names))})


def _copy(src: Path, images: Path) -> str:
    images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, images / src.name)
    return f"images/{src.name}"


def write_summary(records: list[Record], results_dir: Path, summary_dir: Path, models_dir: Path,
                  reports: list[str], executed_on: str = "", margin_pp: float = stats.MARGIN_PP,
                  scale: str = "full", boards: list[Board] | None = None) -> Path:
    """Write summary_dir/README.md in the course's shape, with its pictures copied beside it.

    results_dir is the folder whose pictures and models are shown (with several seeds, the first seed's);
    executed_on says where the seeds' notebooks ran when that was not here (e.g. "on a local Ray instance: ...");
    margin_pp is the non-inferiority margin of the answers and tables; a quick look (`scale`) says at the top that
    its verdicts are not the methods' (labkit.results.scale); `boards` are the microcontroller boards the models
    are fitted to (the lab's by default, labkit.deploy.boards).
    What an earlier summary left in summary_dir is removed first (see `clear`).
    """
    results_dir, summary_dir = Path(results_dir), Path(summary_dir)
    clear(summary_dir)
    images = summary_dir / "images"
    named = {r["name"]: r for r in records}
    used = next((r["by_seed"]["seeds"] for r in records if "by_seed" in r), None)
    parts = ["# Lab summary: pruning and clustering", "", *([said, ""] if (said := scale_note(scale)) else []),
             *_answer_section(records, images, margin_pp),
             f"Generated from the JSON records of one run; every number below is computed, none typed by hand. "
             f"{speed.timing_note(records)}", ""]
    if executed_on:
        parts += [f"The seeds' notebooks ran {executed_on}.", ""]
    bases = [r["params"] for r in (named.get("base-fp32"), named.get("torch-base-fp32")) if r]
    if datasets := sorted({info["dataset"] for info in bases if info.get("dataset")}):
        parts += ["Dataset: " + "; ".join(datasets) + ".", ""]
    if not (made := made_by_table(records, used)).empty:
        parts += ["## What made these numbers", "", made.to_markdown(), ""]
    if (base := named.get("base-fp32")) and base["params"].get("model_path"):
        parts += [f"Keras base: the user's model `{base['params']['model_path']}`, used as it is (not trained here); "
                  f"test set of {base['test_samples']} images. {control_words(named.get('control-fp32'))}", ""]
    elif base:
        info = base["params"]
        parts += [f"Scale: Keras base trained on {info.get('train_samples')} images; {training_words(info)}; "
                  f"test set of {base['test_samples']} images. {control_words(named.get('control-fp32'))}", ""]
        if (n := seeds.count(base)) > 1:
            parts += [f"Seeds: {n} ({', '.join(map(str, base['by_seed']['seeds']))}); each seed trained its own "
                      "base, control and variants. Numbers are means over the seeds; a difference from the control "
                      "is the mean of the seeds' differences, with a 95 % interval that holds both retraining and the "
                      "test set the seeds share. Pictures and models shown: seed "
                      f"{base['by_seed']['seeds'][0]}.", ""]
    if (torch_base := named.get("torch-base-fp32")) and torch_base["params"].get("input_model"):
        parts += [f"PyTorch base: the state dict `{torch_base['params']['input_model']}` (--input-model), used as "
                  "it is.", ""]
    elif torch_base:
        info = torch_base["params"]
        parts += [f"PyTorch base trained on {info.get('train_samples')} images (batch {info.get('batch_size')}); "
                  f"{training_words(info)}.", ""]
    if torch_base and (torch_control := named.get("torch-control-fp32")):
        parts += [control_words(torch_control, "structurally pruned model"), ""]
    if durations := notebook_durations(results_dir / "notebooks"):
        parts += ["Wall time per notebook, at its last execution (one that reused an earlier run's models and records "
                  "takes less than one that trained them): " + ", ".join(f"{k} {v:.0f} s" for k, v in durations.items())
                  + ".", ""]
    if len(per_seed := seed_durations(results_dir.parent, used or [])) > 1:
        parts += ["Wall time of each seed (its notebooks 01–03): " + ", ".join(
            f"seed {seed} {s / 60:.1f} min" for seed, s in per_seed.items()) + f"; {sum(per_seed.values()) / 60:.1f} "
            "min in all, before the summary.", ""]
    for question, answer in answers.answers(records, margin_pp, boards).items():
        parts += [f"## {question}", "", answer, ""]
    if not (per_seed := seeds.table(records, margin_pp)).empty:
        parts += ["## Seed by seed", "", report.markdown(per_seed), ""]
    parts += ["## Methods at a glance", "", answers.method_table(records, margin_pp).to_markdown(), "",
              "## Metrics of every variant", "", report.markdown(report.variants_table(records, margin_pp)), "",
              "## ZIP deflation", "", report.markdown(report.deflation_table(records), ".2f"), ""]
    parts += _micro_section(records, images, boards)
    parts += _recovery_section(records, images)
    parts += ["## Per experiment", ""]
    for r in records:
        md = results_dir / f"{r['name']}-metrics.md"
        png = results_dir / f"{r['name']}-confusion-matrix.png"
        if md.is_file() and png.is_file():
            body = md.read_text().split("\n", 2)[2].strip()
            parts += [f"### {r['name']}", "", body, "", f"![confusion matrix of {r['name']}]({_copy(png, images)})",
                      ""]
    parts += _pruners_section(records, images, margin_pp)
    for svg in sorted(results_dir.glob("torch-base-fp32-*.svg")):
        parts += [f"Netron: `{svg.stem}`, the PyTorch base", "", f"![{svg.stem}]({_copy(svg, images)})", ""]
    for r in (r for r in records if r["method"] == "structured pruning"):
        parts += _structured_section(r, results_dir, images)
    if reports:
        parts += ["## HTML reports", "", *[f"- [{name}]({name})" for name in reports], ""]
    inventory = file_inventory([models_dir, results_dir])
    if not inventory.empty:
        parts += ["## Model files (not committed; `make lab` regenerates them)", "",
                  inventory.to_markdown(index=False, floatfmt=".1f"), ""]
    text = "\n".join(parts)
    readme = atomic_write_text(summary_dir / "README.md", text)
    claim(summary_dir, [readme, *(summary_dir / name for name in re.findall(r"\]\((images/[^)]+)\)", text))])
    return readme


def _answer_section(records: list[Record], images: Path, margin_pp: float) -> list[str]:
    """The answer first: at most six lines (answers.answer_first) and the picture of every verdict, then how to
    read the verdicts."""
    images.mkdir(parents=True, exist_ok=True)
    report.plot_verdicts(records, margin_pp).savefig(images / "verdicts.png", dpi=110)
    return ["## The answer", "", answers.answer_first(records, margin_pp), "",
            "![each variant's accuracy change against its control, with its interval and verdict](images/verdicts.png)",
            "", verdicts.READING.format(margin=f"{margin_pp:g}"), ""]


def _micro_section(records: list[Record], images: Path, boards: list[Board] | None) -> list[str]:
    """Every measured model under TFLM: its flash and arena, and the boards it fits (fit.board_table), with the
    picture of accuracy against flash and RAM."""
    if (table := fit.board_table(records, boards)).empty:
        return []
    images.mkdir(parents=True, exist_ok=True)
    fit.plot(records, boards).savefig(images / "boards.png", dpi=110)
    return ["## On a microcontroller", "", f"A board needs {ALLOWANCE.words()}; flash and arena in KB.", "",
            table.to_markdown(), "",
            "![accuracy against the flash and RAM each model needs, with each board's memory](images/boards.png)", ""]


def _recovery_section(records: list[Record], images: Path) -> list[str]:
    """One recovery picture per method family (report.plot_recovery), each beside its control (the Keras one, or
    the PyTorch one for structured pruning): whether more fine-tuning could change a verdict."""
    controls = {r["name"]: r for r in records if r["name"] in ("control-fp32", "torch-control-fp32")
                and r.get("fine_tuning")}
    families = {method: control for r in records if r.get("fine_tuning") and (method := r["method"]) != "none"
                and (control := controls.get("torch-control-fp32" if method.startswith("structured")
                                             else "control-fp32"))}
    if not families:
        return []
    images.mkdir(parents=True, exist_ok=True)
    parts = ["## Recovery during fine-tuning", "",
             "Validation accuracy against fine-tuning steps, from right after compression (step 0) to where each "
             "variant stopped (the dot: the weights it kept), beside the control (dashed). A curve still rising at "
             "its end was stopped by the maximum: its verdict might change with more fine-tuning." +
             (" Pictures: the first seed." if any("by_seed" in r for r in records) else ""), ""]
    for method, control in families.items():
        figure = images / f"recovery-{method.replace('+', '-').replace(' ', '-')}.png"
        report.plot_recovery([r for r in records if r["method"] == method] + [control],
                             f"Recovery of {method} during fine-tuning").savefig(figure, dpi=110)
        parts += [f"![recovery of {method} during fine-tuning]({figure.relative_to(images.parent)})", ""]
    return parts


def _pruners_section(records: list[Record], images: Path, margin_pp: float) -> list[str]:
    """NNI's and Torch-Pruning's variants side by side along the sparsity curve (labkit.results.pruners), when both
    ran."""
    if not any(r.get("vs_pruner") for r in records) or "torch-base-fp32" not in {r["name"] for r in records}:
        return []
    images.mkdir(parents=True, exist_ok=True)
    figure = images / "structured-pruners.png"
    pruners.plot_curve(records).savefig(figure, dpi=110)
    return ["## Structured pruners along the sparsity curve", "",
            report.markdown(pruners.comparison_table(records, margin_pp)), "",
            "![accuracy against speed-up and size, one line per pruner](images/structured-pruners.png)", ""]


def _structured_section(record: Record, results_dir: Path, images: Path) -> list[str]:
    stages = record["stages"]
    name = record["name"]
    before, after = stages["base"]["shapes"], stages["fine-tuned"]["shapes"]
    shapes = pd.DataFrame({"before": {k: str(v) for k, v in before.items()},
                           "after": {k: str(v) for k, v in after.items()}})
    parts = [f"## Structured pruning: {name} ({pruners.pruner(record)})", "",
             "Layer weight shapes before and after pruning:", "", shapes.to_markdown(), ""]
    stages_md = results_dir / f"{name}-stages.md"
    if stages_md.is_file():
        parts += ["Accuracy, batch-1 latency, parameters and FLOPs at every stage:", "", stages_md.read_text(), ""]
    for log, what in ((results_dir / f"{name}-compress.log", "NNI's `compress()`"),
                      (results_dir / f"{name}-prune.log", "Torch-Pruning")):
        if log.is_file():
            parts += [f"Pruning log of {what}:", "", "```", log.read_text().strip(), "```", ""]
    for svg in sorted(results_dir.glob(f"{name}-fp32-*.svg")):
        parts += [f"Netron: `{svg.stem}`", "", f"![{svg.stem}]({_copy(svg, images)})", ""]
    return parts
