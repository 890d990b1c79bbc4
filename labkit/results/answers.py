"""The lab's four questions, answered from the variant records: quality and speed, size, ZIP deflation, and
which method wins and by how much.

Quality is always the change against the matched-budget control, with its interval and the verdict read from it
(labkit.results.verdicts); the answer comes first (`answer_first`: at most six lines), and "which method wins" argues
only from variants within the non-inferiority margin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from labkit.records import METHODS
from labkit.results import fit, pruners, report, seeds, speed, stats, verdicts
from labkit.results.speed import Speed

Record = dict[str, Any]


TFMOT_METHODS = [m for m in METHODS if m != "none" and not m.startswith("structured")]  # the Keras base's methods
TORCH_METHODS = [m for m in METHODS if m.startswith("structured")]


def _by_name(records: list[Record]) -> dict[str, Record]:
    return {r["name"]: r for r in records}


def _base_of(record: Record, named: dict[str, Record]) -> Record | None:
    return named.get("torch-base-fp32") if record["method"] in TORCH_METHODS else named.get("base-fp32")


def _method_groups(records: list[Record]) -> Iterator[tuple[str, list[Record], list[Speed]]]:
    """Per compression method with records: its variants and their batch-1 speed factors against their base."""
    named = _by_name(records)
    for method in [*TFMOT_METHODS, *TORCH_METHODS]:
        if group := [r for r in records if r["method"] == method and _base_of(r, named)]:
            yield method, group, [speed.speed_factor(r, _base_of(r, named)) for r in group]


def _change(record: Record, tests: dict[str, dict[str, Any]]) -> float:
    """A variant's accuracy change in pp: against its matched-budget control, or against the base (untested) for a
    record without a control."""
    return tests[record["name"]]["delta_pp"] if record["name"] in tests else record["accuracy_change_pp"]


def _within(group: list[Record], tests: dict[str, dict[str, Any]]) -> list[Record]:
    return [r for r in group if r["name"] in tests and tests[r["name"]]["within_margin"]]


def _tally(group: list[Record], tests: dict[str, dict[str, Any]]) -> str:
    return verdicts.tally([tests[r["name"]]["verdict"] for r in group if r["name"] in tests]) or "untested"


def method_table(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """Per method, the range over its variants of accuracy change (against the control), speed-up and zipped-size
    reduction, their verdicts, and how many of its variants are within the non-inferiority margin."""
    rows, tests = [], report.tested(records, margin_pp)
    for method, group, speeds in _method_groups(records):
        spans = {"Δ accuracy vs control (pp)": [_change(r, tests) for r in group],
                 "× faster (batch 1)": [speed[0] for speed in speeds],
                 "× smaller zipped": [r["size"]["times_smaller"] for r in group]}
        row = {"method": method, "variants": len(group), "verdicts": _tally(group, tests),
               f"within {margin_pp:g} pp": f"{len(_within(group, tests))} of {len(group)}"}
        for label, values in spans.items():
            row[label] = f"{min(values):.2f}" if len(values) == 1 else f"{min(values):.2f} … {max(values):.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def answer_quality_and_speed(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Q1: how quantization, pruning and clustering compare on quality and speed.

    Quality is each variant's accuracy change against the control with the same training budget and the verdicts
    read from their intervals (labkit.results.verdicts); records without a control fall back to the change against
    the base.
    """
    tests, lines = report.tested(records, margin_pp), []
    for method, group, speeds in _method_groups(records):
        changes = {r["name"]: _change(r, tests) for r in group}
        worst, best = min(changes, key=changes.get), max(changes, key=changes.get)
        change = (f"{changes[best]:+.2f} pp ({best})" if best == worst else
                  f"from {changes[worst]:+.2f} pp ({worst}) to {changes[best]:+.2f} pp ({best})")
        lines.append(f"- **{method}**: accuracy against its matched-budget control {change}; "
                     f"{_tally(group, tests)} (at a {margin_pp:g} pp margin); batch-1 TFLite inference "
                     f"{speed.words(speeds)} its FP32 base{_builtin_speed(method, group, speeds, records)}.")
    return "\n".join(lines) + (f"\n\n{said}" if lines and (said := seeds.scope(records)) else "")


def _builtin_speed(method: str, group: list[Record], speeds: list[Speed], records: list[Record]) -> str:
    """For INT8, the same comparison on LiteRT's built-in kernels beside XNNPACK's, and why they disagree."""
    base = _base_of(group[0], _by_name(records))
    if method not in fit.INT8_METHODS or not all("latency_builtin" in r for r in (base, *group)):
        return ""
    builtin = [speed.speed_factor(r, base, "latency_builtin") for r in group]
    text = f" with XNNPACK (LiteRT's default), and {speed.words(builtin)} it with the built-in kernels"
    if speed.direction(speeds) == speed.direction(builtin):
        return text
    extensions = base["latency"].get("runtime", {}).get("cpu", {}).get("vector_extensions", [])
    measured_case = (speed.direction(speeds), speed.direction(builtin)) == (-1, 1) and "avx2" in extensions and not any(
        "vnni" in e for e in extensions)
    return text + ": " + (speed.INT8_ON_AVX2 if measured_case else "the two runtimes' kernels differ (see "
                          "benchmarks/README.md for how)")


def answer_times_smaller(records: list[Record]) -> str:
    """Q2: how many times smaller each compressed model is (file and zipped)."""
    lines = []
    for r in records:
        if r["method"] == "none":
            continue
        base = "the PyTorch base" if r["method"] in TORCH_METHODS else "the Keras base"
        lines.append(f"- **{r['name']}**: {r['size']['raw_bytes'] / 1024:.0f} KB file, "
                     f"{r['size']['zipped_bytes'] / 1024:.0f} KB zipped: **{r['size']['times_smaller']:.2f}×** "
                     f"smaller zipped than the zipped FP32 file of {base}, "
                     f"{r['size']['times_smaller_raw']:.2f}× smaller than its unzipped FP32 file"
                     + (f"; {packed / 1024:.0f} KB of a board's flash with TFLM's look-up-table compression "
                        f"({r['size']['raw_bytes'] / packed:.1f}× smaller than its own file)"
                        if (packed := report.lut_flash(r)) else "") + ".")
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
             "QAT": "INT8 trained quantization-aware: as dense as post-training INT8",
             "clustering+QAT": ("INT8 weights on at most k values per channel: a byte alphabet of k letters, which "
                                "DEFLATE's Huffman codes write in about log2(k) bits each"),
             "pruning+QAT": "INT8 with a share of zero bytes kept by PQAT: the zeros deflate, the rest stays dense",
             "pruning+clustering+QAT": ("INT8 on at most k values per channel, zero among them for the pruned "
                                        "share: still an alphabet of k letters, 0 the most frequent"),
             "structured pruning": "a dense, smaller model: little redundancy, the gain is in the raw size",
             "structured pruning+INT8": "the smaller dense model in INT8: 4× smaller again before zipping, dense"}
    rows = [f"- **{m}**: mean deflation {v:.1f} % ({notes.get(m, '')})" for m, v in mean.items()]
    return text + "\n".join(rows)


def _compressed(records: list[Record], tests: dict[str, dict[str, Any]]) -> list[Record]:
    """The compressed variants that were compared with a control (every method, both bases)."""
    return [r for r in records if r["method"] != "none" and r["name"] in tests]


def _speed_of(record: Record, records: list[Record]) -> Speed:
    return speed.speed_factor(record, _base_of(record, _by_name(records)))


def _claim(t: dict[str, Any]) -> str:
    """A variant's Δ against its control with its interval and verdict, as the answer states it."""
    return (f"{t['delta_pp']:+.2f} pp against its control (95 % CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f}: "
            f"{t['said']})")


def smallest_at_no_cost(records: list[Record], tests: dict[str, dict[str, Any]]) -> Record | None:
    """The variant with the largest zipped reduction whose interval shows no measurable cost (better, or within
    the margin and holding 0)."""
    free = [r for r in _compressed(records, tests) if tests[r["name"]]["verdict"] in verdicts.NO_MEASURABLE_COST]
    return max(free, key=lambda r: r["size"]["times_smaller"], default=None)


def fastest(records: list[Record], tests: dict[str, dict[str, Any]]) -> Record | None:
    """The variant that ran the most times faster than its own base at batch 1, if any ran clearly faster."""
    fast = [r for r in _compressed(records, tests) if _base_of(r, _by_name(records))
            and speed.clearly_faster(_speed_of(r, records))]
    return max(fast, key=lambda r: _speed_of(r, records)[0], default=None)


def breaking_points(records: list[Record], tests: dict[str, dict[str, Any]]) -> list[str]:
    """For each method swept over a setting (clusters, sparsity; per structured pruner), from its mildest setting
    on: how far it stays within the margin and the first setting where it does not, with that variant's numbers."""
    said = []
    for label, sweep, unit in _sweeps(_compressed(records, tests)):
        holding = [r for r in sweep if tests[r["name"]]["within_margin"]]
        first = next((r for r in sweep if not tests[r["name"]]["within_margin"]), None)
        if first is None:
            said.append(f"{label} stays within the margin at every setting tried (to {unit(sweep[-1])})")
        else:
            held = f"holds to {unit(holding[-1])} and " if holding and sweep.index(holding[-1]) < sweep.index(
                first) else ""
            said.append(f"{label} {held}leaves the margin at {unit(first)} ({first['name']}: "
                        f"{_claim(tests[first['name']])})")
    return said


def _sweeps(compressed: list[Record]) -> Iterator[tuple[str, list[Record], Callable[[Record], str]]]:
    """Each method run at two settings or more, its variants from the mildest compression on."""
    clustered = sorted((r for r in compressed if r["method"] == "clustering"), key=lambda r: -r["params"]["clusters"])
    pruned = sorted((r for r in compressed if r["method"] == "pruning"), key=lambda r: r["params"]["sparsity"])
    groups = [("clustering", clustered, lambda r: f"{r['params']['clusters']:g} clusters"),
              ("magnitude pruning", pruned, lambda r: f"sparsity {r['params']['sparsity']:g}")]
    structured = [r for r in compressed if r["method"] == "structured pruning"]
    for name in dict.fromkeys(map(pruners.pruner, structured)):
        groups.append((f"structured pruning ({name})", pruners.structured([r for r in structured
                                                                           if pruners.pruner(r) == name]),
                       lambda r: f"sparsity {r['params']['sparsity']:g}"))
    yield from ((label, sweep, unit) for label, sweep, unit in groups if len(sweep) > 1)


def answer_first(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """The answer in at most six lines, each a claim the tables prove, with its numbers: the smallest model at no
    measurable cost, the fastest and its cost, where each method leaves the margin, what the seeds cannot decide
    yet (and which variants are still recovering), and whether any variant dominates."""
    tests = report.tested(records, margin_pp)
    if not (compressed := _compressed(records, tests)):
        return "No compressed variant was compared with a control."
    lines = []
    if small := smallest_at_no_cost(records, tests):
        lines.append(f"- **Smallest at no measurable cost**: {small['name']}, {small['size']['times_smaller']:.1f}× "
                     f"smaller zipped than its FP32 base, {_claim(tests[small['name']])}.")
    else:
        lines.append("- **No compressed variant comes at no measurable cost**: each loses accuracy, or may.")
    if quick := fastest(records, tests):
        ratio, low, high = _speed_of(quick, records)
        span = f" (95 % CI {low:.1f}–{high:.1f}×)" if low is not None else ""
        lines.append(f"- **Fastest**: {quick['name']}, {ratio:.1f}×{span} faster than its base at batch 1, "
                     f"{_claim(tests[quick['name']])}.")
    else:
        lines.append("- **Fastest**: no variant ran clearly faster than its base at batch 1.")
    if breaks := breaking_points(records, tests):
        lines.append("- **Where methods break** (a {:g} pp margin): {}.".format(margin_pp, "; ".join(breaks)))
    lines.append(_undecided(compressed, tests, records))
    lines.append(_dominance(records, tests, small, quick))
    return "\n".join(lines)


def _undecided(compressed: list[Record], tests: dict[str, dict[str, Any]], records: list[Record]) -> str:
    """What the seeds cannot decide yet, how many seeds would, and which variants are still recovering."""
    n = max(map(seeds.count, records))
    open_ = [r["name"] + (f" ({_seeds_needed(tests[r['name']])})" if n > 1 else "") for r in compressed
             if tests[r["name"]]["verdict"] == verdicts.UNDECIDED]
    line = (f"- **Undecided with {n} seed{'s' * (n > 1)}**: " + ", ".join(open_) if open_ else
            f"- **Every comparison decided** by {n} seed{'s' * (n > 1)}")
    if n == 1:
        line += " (one seed speaks only of its trained models: `--seeds 42 43 44` trains each again)"
    if recovering := [r["name"] for r in compressed if tests[r["name"]]["still_recovering"]]:
        line += (f"; still recovering at the fine-tuning maximum, so their Δ is a lower bound: "
                 f"{', '.join(recovering)}")
    return line + "."


def _seeds_needed(test: dict[str, Any]) -> str:
    if test.get("seeds_needed"):
        return f"about {test['seeds_needed']} seeds would decide it"
    return "more seeds alone would not decide it"


def _dominance(records: list[Record], tests: dict[str, dict[str, Any]], small: Record | None,
               quick: Record | None) -> str:
    """One line: the variant best on size, speed and accuracy at once, or "a trade-off" in those words."""
    smallest = max(_compressed(records, tests), key=lambda r: r["size"]["times_smaller"])
    if small is not None and small is quick and small is smallest:
        return (f"- **{small['name']} dominates**: the smallest and the fastest compressed model, at no "
                "measurable cost.")
    also = (f"; the smallest model of all is {smallest['name']} ({smallest['size']['times_smaller']:.1f}×, "
            f"{tests[smallest['name']]['verdict']})" if smallest is not small else "")
    return ("- **Which method dominates? None: a trade-off.** No variant is best on size, speed and accuracy at "
            f"once{also}.")


def answer_dominance(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Q4: which method wins, and by how much, short enough to read aloud: a dominating variant or "a trade-off",
    the smallest model at no measurable cost, the fastest and its cost, and each method's smallest within the
    margin. A variant outside the margin is never offered as evidence for its method."""
    tests = report.tested(records, margin_pp)
    if not (compressed := _compressed(records, tests)):
        return "No compressed variant was compared with a control."
    small, quick = smallest_at_no_cost(records, tests), fastest(records, tests)
    text = _dominance(records, tests, small, quick).removeprefix("- ")
    if small is not None:
        text += (f" The smallest model at no measurable cost is **{small['name']}** "
                 f"({small['size']['times_smaller']:.1f}× smaller zipped, {tests[small['name']]['delta_pp']:+.2f} pp).")
    if quick is not None:
        text += (f" The fastest is **{quick['name']}** ({_speed_of(quick, records)[0]:.1f}× at batch 1, "
                 f"{tests[quick['name']]['delta_pp']:+.2f} pp: {tests[quick['name']]['verdict']}).")
    best: dict[str, Record] = {}
    for r in sorted(_within(compressed, tests), key=lambda r: -r["size"]["times_smaller"]):
        best.setdefault(r["method"], r)
    if best:
        text += (f" Each method's smallest within the {margin_pp:g} pp margin: "
                 + ", ".join(f"{r['method']} {r['name']} ({r['size']['times_smaller']:.1f}×)" for r in best.values())
                 + ".")
    else:
        text += f" **No compressed variant is within the margin**: each may lose more than {margin_pp:g} pp."
    return text + _scoped(records)


def answer_pruners(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Does the structured pruner matter? At each sparsity the pruners leave the same widths, so the same speed: each
    Torch-Pruning variant's paired difference from NNI's (records with `vs_pruner`: labkit.results.pruners), with its
    interval and verdict, its speed against NNI's, and both against their common control."""
    compared = [r for r in records if r.get("vs_pruner")]
    if not compared:
        return ""
    named, tests, against = _by_name(records), report.tested(records, margin_pp), pruners.pruner_tests(
        records, margin_pp)
    lines = ["At one sparsity NNI and Torch-Pruning leave every layer the same width (NNI's rounding), so the same "
             "parameters, FLOPs and batch-1 speed: which pruner keeps more accuracy at the same speed-up is read "
             "from their predictions on the same test images."]
    for r in compared:
        t, nni = against[r["name"]], named[r["vs_pruner"]["control"]]
        own, theirs = tests.get(r["name"]), tests.get(nni["name"])
        versus_control = (f"; against the common control {own['delta_pp']:+.2f} pp (95 % CI {own['low_pp']:+.2f} … "
                          f"{own['high_pp']:+.2f}), NNI's {theirs['delta_pp']:+.2f} pp" if own and theirs else "")
        lines.append(f"- **{r['name']}** ({pruners.pruner(r)}) − **{nni['name']}** (NNI APoZ), sparsity "
                     f"{r['params']['sparsity']:g}: {t['delta_pp']:+.2f} pp (95 % CI {t['low_pp']:+.2f} … "
                     f"{t['high_pp']:+.2f}; {t['evidence']}): **{t['said']}**; batch-1 TFLite "
                     f"{speed.words([speed.speed_factor(r, nni)])} NNI's{versus_control}.")
    return "\n".join(lines) + "\n\n" + _pruner_verdict(compared, against) + _scoped(records)


def _scoped(records: list[Record]) -> str:
    """The one-seed sentence after a verdict about methods or pruners (seeds.scope), or nothing."""
    return f" {said}" if (said := seeds.scope(records)) else ""


def _pruner_verdict(compared: list[Record], against: dict[str, dict[str, Any]]) -> str:
    """The answer in one sentence: where a pruner kept measurably more or less accuracy, where the data cannot
    tell, or that the pruner does not matter beyond the margin."""
    found = {r["name"]: against[r["name"]]["verdict"] for r in compared}
    better = [name for name, v in found.items() if v == verdicts.BETTER]
    worse = [name for name, v in found.items() if v not in (verdicts.BETTER, verdicts.WITHIN, verdicts.UNDECIDED)]
    undecided = [name for name, v in found.items() if v == verdicts.UNDECIDED]
    if better or worse:
        said = [f"Torch-Pruning kept measurably more accuracy than NNI's APoZ in {', '.join(better)}"] if better else []
        said += [f"measurably less in {', '.join(worse)}"] if worse else []
        return "**The pruner matters here**: " + "; ".join(said) + ", at the same widths and speed."
    if undecided:
        return (f"**Undecided**: {', '.join(undecided)} against NNI's cannot be told apart from a loss beyond the "
                "margin yet (see each line for the seeds that would decide it).")
    return ("**The pruner does not matter beyond the margin**: every Torch-Pruning variant is within it against "
            "NNI's at the same widths.")


def answers(records: list[Record], margin_pp: float = stats.MARGIN_PP,
            boards: list[fit.Board] | None = None) -> dict[str, str]:
    """The lab's questions and their answers, in markdown: the course's four, whether the structured pruner
    matters when both libraries ran (records compared by labkit.results.pruners.with_comparisons), and what fits on
    a microcontroller when the models ran under TFLM (labkit.results.fit; `boards`: the lab's by default)."""
    found = {
        "How do quantization, pruning and clustering compare on quality and speed?":
            answer_quality_and_speed(records, margin_pp),
        "How many times smaller is each compressed model?": answer_times_smaller(records),
        "What is ZIP deflation, and how does it relate to each method?": answer_deflation(records),
        "Which method dominates?": answer_dominance(records, margin_pp),
    }
    if pruner_answer := answer_pruners(records, margin_pp):
        found["Does the structured pruner matter?"] = pruner_answer
    if board_answer := fit.answer(records, margin_pp, boards):
        found["What fits on a microcontroller, and what does it cost?"] = board_answer
    return found
