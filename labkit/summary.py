"""The lab summary: answers to the lab's questions computed from the variant records, and its README."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from labkit import report, seeds, stats, tflite
from labkit.files import atomic_write_text, read_json, write_json
from labkit.records import made_by

Record = dict[str, Any]
TFMOT_METHODS = ["quantization", "clustering", "pruning", "pruning+clustering"]


def _by_name(records: list[Record]) -> dict[str, Record]:
    return {r["name"]: r for r in records}


Speed = tuple[float, float | None, float | None]  # times faster than the base, and its 95 % interval if known


def speed_factor(record: Record, base: Record, timing: str = "latency") -> Speed:
    """How many times faster than its base at batch 1 (ratio of median latencies), with a 95 % bootstrap interval
    over the rounds of an interleaved timing (None for in-run timings, which have no rounds). `timing` names the
    records' latency to compare: "latency" (LiteRT's default, XNNPACK) or "latency_builtin" (built-in kernels)."""
    ours, theirs = record[timing], base[timing]
    ratio = theirs["median_ms"] / ours["median_ms"]
    if "rounds_ms" in theirs and "rounds_ms" in ours:
        _, low, high = stats.speedup_interval(theirs["rounds_ms"], ours["rounds_ms"])
        return ratio, low, high
    return ratio, None, None


def _base_of(record: Record, named: dict[str, Record]) -> Record | None:
    return named.get("torch-base-fp32") if record["method"] == "structured pruning" else named.get("base-fp32")


def _method_groups(records: list[Record]) -> Iterator[tuple[str, list[Record], list[Speed]]]:
    """Per compression method with records: its variants and their batch-1 speed factors against their base."""
    named = _by_name(records)
    for method in [*TFMOT_METHODS, "structured pruning"]:
        if group := [r for r in records if r["method"] == method and _base_of(r, named)]:
            yield method, group, [speed_factor(r, _base_of(r, named)) for r in group]


SPEED_MARGIN = 1.05  # a speed change under 5 % is not called: it does not carry to another session or machine


def clearly_faster(speed: Speed) -> bool:
    """Faster beyond timing noise and by a margin that matters: the interval lies above 1 and the ratio is at least
    1.05 (without an interval, by more than 25 %)."""
    return _direction([speed]) > 0


def _change(record: Record, tests: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """A variant's accuracy change in pp: against its matched-budget control with the test's verdict, or against
    the base (untested) for a record without a control."""
    if test := tests.get(record["name"]):
        return test["delta_pp"], test["verdict"]
    return record["accuracy_change_pp"], "against the base, untested"


def method_table(records: list[Record]) -> pd.DataFrame:
    """Per method, the range over its variants of accuracy change (against the control), speed-up and zipped-size
    reduction."""
    rows, tests = [], report.tested(records)
    for method, group, speeds in _method_groups(records):
        spans = {"Δ accuracy vs control (pp)": [_change(r, tests)[0] for r in group],
                 "× faster (batch 1)": [speed[0] for speed in speeds],
                 "× smaller zipped": [r["size"]["times_smaller"] for r in group]}
        row = {"method": method, "variants": len(group)}
        for label, values in spans.items():
            row[label] = f"{min(values):.2f}" if len(values) == 1 else f"{min(values):.2f} … {max(values):.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def _direction(speeds: list[Speed]) -> int:
    """1 if a method's variants are called faster than their base, -1 if slower, 0 if neither: from the intervals
    when they are known (changes under 5 % count as unchanged), else by more than 25 % (in-run timings drift)."""
    ratio = sum(s[0] for s in speeds) / len(speeds)
    if any(s[1] is None for s in speeds):
        return 1 if ratio >= 1.25 else -1 if ratio <= 0.8 else 0
    if min(s[1] for s in speeds) > 1 and ratio >= SPEED_MARGIN:
        return 1
    return -1 if max(s[2] for s in speeds) < 1 and ratio <= 1 / SPEED_MARGIN else 0


def _speed_words(speeds: list[Speed]) -> str:
    """Batch-1 speed of a method's variants against their base in words (see _direction for when a change counts)."""
    ratio, direction = sum(s[0] for s in speeds) / len(speeds), _direction(speeds)
    if any(s[1] is None for s in speeds):
        if direction:
            return f"{ratio:.1f}× faster than" if direction > 0 else f"{1 / ratio:.1f}× slower than"
        return f"as fast as ({ratio:.2f}×)"
    low, high = min(s[1] for s in speeds), max(s[2] for s in speeds)
    span = f"95 % CI {low:.2f}–{high:.2f}×"
    if direction > 0:
        return f"{ratio:.2f}× faster ({span}) than"
    if direction < 0:
        return f"{1 / ratio:.2f}× slower ({span} as fast) than"
    if all(s[1] <= 1 <= s[2] for s in speeds):
        return f"as fast as ({ratio:.2f}×, {span}: no measurable difference)"
    if all(1 / SPEED_MARGIN < s[0] < SPEED_MARGIN for s in speeds):
        return f"as fast as ({ratio:.2f}×, {span}: within 5 %, too little to carry to another machine)"
    return f"on average {ratio:.2f}× as fast as ({span}; the variants differ)"


def answer_quality_and_speed(records: list[Record]) -> str:
    """Q1: how quantization, pruning and clustering compare on quality and speed.

    Quality is each variant's accuracy change against the control with the same training budget, with the
    verdict of the Holm-corrected paired test; records without a control fall back to the change against the base.
    """
    tests, lines = report.tested(records), []
    for method, group, speeds in _method_groups(records):
        changes = {r["name"]: _change(r, tests) for r in group}
        worst, best = min(changes, key=lambda n: changes[n][0]), max(changes, key=lambda n: changes[n][0])
        change = (f"{changes[best][0]:+.2f} pp ({best}: {changes[best][1]})" if best == worst else
                  f"from {changes[worst][0]:+.2f} pp ({worst}: {changes[worst][1]}) to {changes[best][0]:+.2f} pp "
                  f"({best}: {changes[best][1]})")
        same = sum(verdict == "no measurable difference" for _, verdict in changes.values())
        lines.append(f"- **{method}**: accuracy against its matched-budget control {change}; {same} of {len(group)} "
                     f"variant(s) with no measurable difference; batch-1 TFLite inference "
                     f"{_speed_words(speeds)} its FP32 base{_builtin_speed(method, group, speeds, records)}.")
    return "\n".join(lines)


# Why INT8 loses under XNNPACK and wins under the built-in kernels on an AVX2 CPU without VNNI, as measured
# layer by layer in benchmarks/README.md ("Which runtime ran").
INT8_ON_AVX2 = ("on this AVX2 CPU without VNNI, XNNPACK's INT8 convolution kernel reads 8 input channels per "
                "kernel tap, so the one-channel first convolution does 8× the multiplications of its FP32 kernel, "
                "and the later layers win too little back, while the built-in kernels run INT8 on ruy, faster than "
                "their FP32 path on Eigen (per-layer timings in benchmarks/README.md)")


def _builtin_speed(method: str, group: list[Record], speeds: list[Speed], records: list[Record]) -> str:
    """For INT8, the same comparison on LiteRT's built-in kernels beside XNNPACK's, and why they disagree."""
    base = _base_of(group[0], _by_name(records))
    if method != "quantization" or not all("latency_builtin" in r for r in (base, *group)):
        return ""
    builtin = [speed_factor(r, base, "latency_builtin") for r in group]
    text = f" with XNNPACK (LiteRT's default), and {_speed_words(builtin)} it with the built-in kernels"
    if _direction(speeds) == _direction(builtin):
        return text
    extensions = base["latency"].get("runtime", {}).get("cpu", {}).get("vector_extensions", [])
    measured_case = (_direction(speeds), _direction(builtin)) == (-1, 1) and "avx2" in extensions and not any(
        "vnni" in e for e in extensions)
    return text + ": " + (INT8_ON_AVX2 if measured_case else "the two runtimes' kernels differ (see "
                          "benchmarks/README.md for how)")


def answer_times_smaller(records: list[Record]) -> str:
    """Q2: how many times smaller each compressed model is (file and zipped)."""
    lines = []
    for r in records:
        if r["method"] == "none":
            continue
        base = "the PyTorch base" if r["method"] == "structured pruning" else "the Keras base"
        lines.append(f"- **{r['name']}**: {r['size']['raw_bytes'] / 1024:.0f} KB file, "
                     f"{r['size']['zipped_bytes'] / 1024:.0f} KB zipped: **{r['size']['times_smaller']:.2f}×** "
                     f"smaller zipped than the zipped FP32 file of {base}, "
                     f"{r['size']['times_smaller_raw']:.2f}× smaller than its unzipped FP32 file.")
    return "\n".join(lines)


def answer_deflation(records: list[Record]) -> str:
    """Q3: what ZIP deflation is and how it relates to each method."""
    by_method: dict[str, list[float]] = {}
    for r in records:
        by_method.setdefault(r["method"], []).append(r["size"]["deflation_pct"])
    mean = {m: sum(v) / len(v) for m, v in by_method.items()}
    text = ("ZIP's DEFLATE replaces repeated byte strings by back-references and codes frequent bytes with short "
            "Huffman codes. *Deflation* is how much smaller the archive is than the file "
            "(1 − zipped/raw). It measures how much redundancy a method leaves in the file, not how small the "
            "model is: a dense FP32 file is nearly random to DEFLATE.\n\n")
    notes = {"none": "dense FP32 weights: almost nothing to remove",
             "quantization": "INT8 is already 4× smaller before zipping; its bytes are dense, so DEFLATE gains little",
             "clustering": ("at most k distinct values per kernel: the same 4-byte patterns repeat, "
                            "DEFLATE removes most"),
             "pruning": "runs of zero bytes compress well, but the surviving weights stay random FP32",
             "pruning+clustering": "zeros and a small codebook together: the most redundancy",
             "structured pruning": "a dense, smaller model: little redundancy, the gain is in the raw size"}
    rows = [f"- **{m}**: mean deflation {v:.1f} % ({notes.get(m, '')})" for m, v in mean.items()]
    return text + "\n".join(rows)


def answer_dominance(records: list[Record]) -> str:
    """Q4: which method dominates, from the Pareto front of zipped size and accuracy on the Keras base.

    Accuracies whose 95 % intervals overlap are ties on the front; the answer ends with the evidence for its
    smallest variant that is not measurably worse than its control.
    """
    keras = report.keras_records(records)
    if not keras:
        return "No Keras variants were recorded."
    front = report.pareto_front(keras)
    methods = sorted({_by_name(keras)[n]["method"] for n in front} - {"none"})
    smallest = min(keras, key=lambda r: r["size"]["zipped_bytes"])
    best = max(keras, key=lambda r: r["metrics"]["accuracy"])
    text = (f"On zipped size against accuracy (same Keras base; accuracies whose 95 % intervals overlap count as "
            f"ties), the Pareto front is: {', '.join(front)}. "
            f"Smallest: **{smallest['name']}** ({smallest['size']['zipped_bytes'] / 1024:.0f} KB zipped, accuracy "
            f"{smallest['metrics']['accuracy']:.4f}); most accurate: **{best['name']}** "
            f"({best['metrics']['accuracy']:.4f}, {best['size']['zipped_bytes'] / 1024:.0f} KB zipped). ")
    if len(methods) == 1:
        text += f"**{methods[0]}** dominates: every compressed variant on the front uses it. "
    elif methods:
        text += f"No single method dominates on size and quality: the front mixes {', '.join(methods)}. "
    else:
        text += "No compressed variant is on the front. "
    tests = report.tested(records)
    evidence, shown = _evidence([_by_name(keras)[n] for n in front], tests)
    text += evidence + " " + _smallest_without_loss(keras, tests, shown)
    structured = [r for r in records if r["method"] == "structured pruning"]
    fast = [r["name"] for _, group, speeds in _method_groups(records)
            for r, speed in zip(group, speeds, strict=True) if clearly_faster(speed)]
    text += (f" On speed, only {', '.join(fast)}" if fast else " On speed, none of the variants") + \
        " ran clearly faster than its base at batch 1."
    if structured:
        text += (" Structured pruning is the only method that shrinks both the raw file and the computation, "
                 "so it is the one to pick when latency matters; clustering (with pruning) when download size does.")
    return text


def _evidence(front: list[Record], tests: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
    """One sentence: the smallest tested front variant not measurably worse than its control (else the smallest
    tested one, worse as it is), with its numbers; and that variant's name."""
    tested_front = sorted((r for r in front if r["name"] in tests), key=lambda r: r["size"]["zipped_bytes"])
    if not tested_front:
        return "No variant on the front was tested against a matched-budget control.", None
    r = next((r for r in tested_front if tests[r["name"]]["verdict"] != "worse"), tested_front[0])
    return f"Evidence: {r['name']} is {_numbers(r, tests[r['name']])}.", r["name"]


def _numbers(r: Record, t: dict[str, Any]) -> str:
    """A variant's size reduction and tested accuracy change, with interval, p-value, test size and seeds."""
    n = seeds.count(r)
    spread = f" ± {t['delta_std_pp']:.2f} std over seeds" if n > 1 else ""
    test = "largest Holm-corrected McNemar p of the seeds" if n > 1 else "Holm-corrected McNemar p"
    return (f"{r['size']['times_smaller']:.1f}× smaller zipped than the base at {t['delta_pp']:+.2f} pp{spread} "
            f"against {t['control']} (95 % CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f} pp, {test} = "
            f"{t['p_holm']:.3g}, {r['test_samples']} test images, {n} seed{'s' if n != 1 else ''}): {t['verdict']}")


def _smallest_without_loss(keras: list[Record], tests: dict[str, dict[str, Any]], shown: str | None = None) -> str:
    """Which method wins, and by how much, among the variants with no measurable loss against their control: the
    smallest such variant (its numbers unless they were just `shown`), then each other method's smallest such one.

    The front counts overlapping accuracy intervals as ties, so it can hold variants that the paired tests find
    worse; this sentence answers from the paired tests alone.
    """
    best: dict[str, Record] = {}
    for r in keras:
        if r["method"] != "none" and r["name"] in tests and tests[r["name"]]["verdict"] != "worse":
            if r["method"] not in best or r["size"]["zipped_bytes"] < best[r["method"]]["size"]["zipped_bytes"]:
                best[r["method"]] = r
    if not best:
        return "Every tested compressed variant is measurably less accurate than its control."
    winner, *others = sorted(best.values(), key=lambda r: r["size"]["zipped_bytes"])
    t = tests[winner["name"]]
    if winner["name"] == shown:
        text = "It is also the smallest variant not called worse than its control."
    else:
        text = (f"Among the variants not called worse than their control, the smallest is **{winner['name']}** "
                f"({winner['method']}): {_numbers(winner, t)}.")
    if t["high_pp"] < 0:
        text += (" Its interval lies wholly below zero, so a small loss is likely, though not every test confirms it"
                 " (a loss is called only when they all do).")
    if others:
        text += " The smallest such model of each other method: " + ", ".join(
            f"{r['name']} ({r['method']}, {r['size']['times_smaller']:.2f}×)" for r in others) + "."
    return text


def answers(records: list[Record]) -> dict[str, str]:
    """The lab's four questions and their answers, in markdown."""
    return {
        "How do quantization, pruning and clustering compare on quality and speed?":
            answer_quality_and_speed(records),
        "How many times smaller is each compressed model?": answer_times_smaller(records),
        "What is ZIP deflation, and how does it relate to each method?": answer_deflation(records),
        "Which method dominates?": answer_dominance(records),
    }


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
    named = _by_name(records)
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


def with_interleaved_latency(records: list[Record], results_dir: Path) -> list[Record]:
    """Records whose batch-1 TFLite latency is re-measured for all variants together, interleaved, on XNNPACK
    (LiteRT's default: `latency`) and on the built-in kernels (`latency_builtin`), each naming its runtime.

    Each notebook timed its variants minutes apart, so machine drift can make equal models look 20 % apart;
    timing them round-robin in one go makes the speed comparison fair. The in-run figure stays as latency_in_run.
    """
    calls = {}
    for r in records:
        model = next(Path(results_dir) / f for f in r["files"] if f.endswith(".tflite"))
        for kernels in tflite.KERNELS:
            calls[f"{kernels} {r['name']}"] = tflite.batch1_call(tflite.load(model, kernels=kernels))
    measured = tflite.interleaved_latency(calls)
    return [{**r, "latency": measured[f"xnnpack {r['name']}"], "latency_builtin": measured[f"builtin {r['name']}"],
             "latency_in_run": r["latency"]} for r in records]


def timing_note(records: list[Record]) -> str:
    """Where the speed figures come from: the CPU and the runtimes of the base's timings."""
    base = _by_name(records).get("base-fp32") or records[0]
    if "runtime" not in base["latency"]:
        return "Batch-1 latencies are the notebooks' own; their runtime was not recorded."
    when = ("were re-measured for all models together, interleaved, when the summary was written"
            if "rounds_ms" in base["latency"] else "are the notebooks' own")
    text = (f"Batch-1 latencies {when}, on {tflite.describe_cpu(base['latency']['runtime']['cpu'])}: with "
            f"{tflite.describe(base['latency']['runtime'])}")
    if "latency_builtin" in base:
        text += (", LiteRT's default, which every speed figure below uses unless it says otherwise, and with "
                 f"{tflite.describe(base['latency_builtin']['runtime'])}")
    return text + "."


def write_summary(records: list[Record], results_dir: Path, summary_dir: Path, models_dir: Path,
                  reports: list[str], executed_on: str = "") -> Path:
    """Write summary_dir/README.md in the course's shape, with its pictures copied beside it.

    results_dir is the folder whose pictures and models are shown (with several seeds, the first seed's);
    executed_on says where the seeds' notebooks ran when that was not here (e.g. "on a local Ray instance: ...").
    What an earlier summary left in summary_dir is removed first (see `clear`).
    """
    results_dir, summary_dir = Path(results_dir), Path(summary_dir)
    clear(summary_dir)
    images = summary_dir / "images"
    named = _by_name(records)
    used = next((r["by_seed"]["seeds"] for r in records if "by_seed" in r), None)
    parts = ["# Lab summary: pruning and clustering", "",
             f"Generated from the JSON records of one run; every number below is computed, none typed by hand. "
             f"{timing_note(records)}", ""]
    if executed_on:
        parts += [f"The seeds' notebooks ran {executed_on}.", ""]
    bases = [r["params"] for r in (named.get("base-fp32"), named.get("torch-base-fp32")) if r]
    if datasets := sorted({info["dataset"] for info in bases if info.get("dataset")}):
        parts += ["Dataset: " + "; ".join(datasets) + ".", ""]
    if not (made := made_by_table(records, used)).empty:
        parts += ["## What made these numbers", "", made.to_markdown(), ""]
    if (base := named.get("base-fp32")) and base["params"].get("model_path"):
        parts += [f"Keras base: the user's model `{base['params']['model_path']}`, used as it is (not trained here); "
                  f"test set of {base['test_samples']} images. Every compressed variant is compared with a control: "
                  "the base fine-tuned exactly as long, without compression.", ""]
    elif base:
        info = base["params"]
        parts += [f"Scale: Keras base trained on {info.get('train_samples')} images; early stopping kept epoch "
                  f"{info.get('epochs')} of at most {info.get('max_epochs')}; test set of {base['test_samples']} "
                  "images. Every compressed variant is compared with a control: the base fine-tuned exactly as long, "
                  "without compression.", ""]
        if (n := seeds.count(base)) > 1:
            parts += [f"Seeds: {n} ({', '.join(map(str, base['by_seed']['seeds']))}); each seed trained its own "
                      "base, control and variants. Numbers are means over the seeds; a verdict names a direction "
                      f"only when every seed's corrected test finds it. Pictures and models shown: seed "
                      f"{base['by_seed']['seeds'][0]}.", ""]
    if (torch_base := named.get("torch-base-fp32")) and torch_base["params"].get("input_model"):
        parts += [f"PyTorch base: the state dict `{torch_base['params']['input_model']}` (--input-model), used as "
                  "it is.", ""]
    elif torch_base:
        info = torch_base["params"]
        parts += [f"PyTorch base trained on {info.get('train_samples')} images (batch {info.get('batch_size')}); "
                  f"early stopping kept epoch {info.get('epochs')} of at most {info.get('max_epochs')}.", ""]
    if durations := notebook_durations(results_dir / "notebooks"):
        parts += ["Wall time per notebook: " + ", ".join(f"{k} {v:.0f} s" for k, v in durations.items()) + ".", ""]
    if len(per_seed := seed_durations(results_dir.parent, used or [])) > 1:
        parts += ["Wall time of each seed (its notebooks 01–03): " + ", ".join(
            f"seed {seed} {s / 60:.1f} min" for seed, s in per_seed.items()) + f"; {sum(per_seed.values()) / 60:.1f} "
            "min in all, before the summary.", ""]
    for question, answer in answers(records).items():
        parts += [f"## {question}", "", answer, ""]
    if not (per_seed := seeds.table(records)).empty:
        parts += ["## Seed by seed", "", report.markdown(per_seed), ""]
    parts += ["## Methods at a glance", "", method_table(records).to_markdown(), "",
              "## Metrics of every variant", "", report.markdown(report.variants_table(records)), "",
              "## ZIP deflation", "", report.markdown(report.deflation_table(records), ".2f"), ""]
    parts += ["## Per experiment", ""]
    for r in records:
        md = results_dir / f"{r['name']}-metrics.md"
        png = results_dir / f"{r['name']}-confusion-matrix.png"
        if md.is_file() and png.is_file():
            body = md.read_text().split("\n", 2)[2].strip()
            parts += [f"### {r['name']}", "", body, "", f"![confusion matrix of {r['name']}]({_copy(png, images)})",
                      ""]
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


def _structured_section(record: Record, results_dir: Path, images: Path) -> list[str]:
    stages = record["stages"]
    name = record["name"]
    before, after = stages["base"]["shapes"], stages["fine-tuned"]["shapes"]
    shapes = pd.DataFrame({"before": {k: str(v) for k, v in before.items()},
                           "after": {k: str(v) for k, v in after.items()}})
    parts = [f"## Structured pruning: {name}", "", "Layer weight shapes before and after ModelSpeedup:", "",
             shapes.to_markdown(), ""]
    stages_md = results_dir / f"{name}-stages.md"
    if stages_md.is_file():
        parts += ["Accuracy, batch-1 latency, parameters and FLOPs at every stage:", "", stages_md.read_text(), ""]
    log = results_dir / f"{name}-compress.log"
    if log.is_file():
        parts += ["Pruning log of `compress()`:", "", "```", log.read_text().strip(), "```", ""]
    for svg in sorted(results_dir.glob("*-fp32-*.svg")):
        parts += [f"Netron: `{svg.stem}`", "", f"![{svg.stem}]({_copy(svg, images)})", ""]
    return parts
