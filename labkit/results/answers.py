"""The lab's four questions, answered from the variant records: quality and speed, size, ZIP deflation, and
which method wins and by how much.

Quality is always the change against the matched-budget control, with its interval and corrected test
(labkit.results.stats); "which method wins" names the smallest model within the non-inferiority margin and argues only
from variants that are within it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from labkit.records import METHODS
from labkit.results import pruners, report, seeds, speed, stats
from labkit.results.speed import Speed

Record = dict[str, Any]


TFMOT_METHODS = [m for m in METHODS if m not in ("none", "structured pruning")]  # the Keras base's methods
INT8 = ["quantization", *(m for m in METHODS if m.endswith("QAT"))]  # their files are INT8


def _by_name(records: list[Record]) -> dict[str, Record]:
    return {r["name"]: r for r in records}


def _base_of(record: Record, named: dict[str, Record]) -> Record | None:
    return named.get("torch-base-fp32") if record["method"] == "structured pruning" else named.get("base-fp32")


def _method_groups(records: list[Record]) -> Iterator[tuple[str, list[Record], list[Speed]]]:
    """Per compression method with records: its variants and their batch-1 speed factors against their base."""
    named = _by_name(records)
    for method in [*TFMOT_METHODS, "structured pruning"]:
        if group := [r for r in records if r["method"] == method and _base_of(r, named)]:
            yield method, group, [speed.speed_factor(r, _base_of(r, named)) for r in group]


def _change(record: Record, tests: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """A variant's accuracy change in pp: against its matched-budget control with the test's verdict, or against
    the base (untested) for a record without a control."""
    if test := tests.get(record["name"]):
        return test["delta_pp"], test["verdict"]
    return record["accuracy_change_pp"], "against the base, untested"


def _within(group: list[Record], tests: dict[str, dict[str, Any]]) -> list[Record]:
    return [r for r in group if r["name"] in tests and tests[r["name"]]["within_margin"]]


def method_table(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """Per method, the range over its variants of accuracy change (against the control), speed-up and zipped-size
    reduction, and how many of its variants are within the non-inferiority margin."""
    rows, tests = [], report.tested(records, margin_pp)
    for method, group, speeds in _method_groups(records):
        spans = {"Δ accuracy vs control (pp)": [_change(r, tests)[0] for r in group],
                 "× faster (batch 1)": [speed[0] for speed in speeds],
                 "× smaller zipped": [r["size"]["times_smaller"] for r in group]}
        row = {"method": method, "variants": len(group),
               f"within {margin_pp:g} pp": f"{len(_within(group, tests))} of {len(group)}"}
        for label, values in spans.items():
            row[label] = f"{min(values):.2f}" if len(values) == 1 else f"{min(values):.2f} … {max(values):.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def answer_quality_and_speed(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Q1: how quantization, pruning and clustering compare on quality and speed.

    Quality is each variant's accuracy change against the control with the same training budget, with the
    verdict of the Holm-corrected test and the count within the margin; records without a control fall back to the
    change against the base.
    """
    tests, lines = report.tested(records, margin_pp), []
    for method, group, speeds in _method_groups(records):
        changes = {r["name"]: _change(r, tests) for r in group}
        worst, best = min(changes, key=lambda n: changes[n][0]), max(changes, key=lambda n: changes[n][0])
        change = (f"{changes[best][0]:+.2f} pp ({best}: {changes[best][1]})" if best == worst else
                  f"from {changes[worst][0]:+.2f} pp ({worst}: {changes[worst][1]}) to {changes[best][0]:+.2f} pp "
                  f"({best}: {changes[best][1]})")
        same = sum(verdict == "no measurable difference" for _, verdict in changes.values())
        unsettled = sum(verdict == stats.TOO_FEW_SEEDS for _, verdict in changes.values())
        unsettled = f", {unsettled} with too few seeds to tell" if unsettled else ""
        lines.append(f"- **{method}**: accuracy against its matched-budget control {change}; {same} of {len(group)} "
                     f"variant(s) with no measurable difference{unsettled}, {len(_within(group, tests))} within the "
                     f"{margin_pp:g} pp margin; batch-1 TFLite inference "
                     f"{speed.words(speeds)} its FP32 base{_builtin_speed(method, group, speeds, records)}.")
    return "\n".join(lines) + (f"\n\n{said}" if lines and (said := seeds.scope(records)) else "")


def _builtin_speed(method: str, group: list[Record], speeds: list[Speed], records: list[Record]) -> str:
    """For INT8, the same comparison on LiteRT's built-in kernels beside XNNPACK's, and why they disagree."""
    base = _base_of(group[0], _by_name(records))
    if method not in INT8 or not all("latency_builtin" in r for r in (base, *group)):
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
             "QAT": "INT8 trained quantization-aware: as dense as post-training INT8",
             "clustering+QAT": ("INT8 weights on at most k values per channel: a byte alphabet of k letters, which "
                                "DEFLATE's Huffman codes write in about log2(k) bits each"),
             "pruning+QAT": "INT8 with a share of zero bytes kept by PQAT: the zeros deflate, the rest stays dense",
             "pruning+clustering+QAT": ("INT8 on at most k values per channel, zero among them for the pruned "
                                        "share: still an alphabet of k letters, 0 the most frequent"),
             "structured pruning": "a dense, smaller model: little redundancy, the gain is in the raw size"}
    rows = [f"- **{m}**: mean deflation {v:.1f} % ({notes.get(m, '')})" for m, v in mean.items()]
    return text + "\n".join(rows)


def answer_dominance(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Q4: which method wins, and by how much: the smallest model within the non-inferiority margin, each method's
    smallest within it, and the Pareto front of zipped size against accuracy described as the trade-off it is.

    Only variants within the margin are offered as evidence for a method: a variant that may lose more than the
    margin (let alone one called worse) never is.
    """
    keras = report.keras_records(records)
    if not keras:
        return "No Keras variants were recorded."
    tests = report.tested(records, margin_pp)
    text = (f"A variant is *within the margin* when the lower end of the 95 % interval of its accuracy change "
            f"against its matched-budget control lies above −{margin_pp:g} pp, so that a larger loss is ruled out. ")
    best: dict[str, Record] = {}
    for r in sorted(_within([r for r in keras if r["method"] != "none"], tests), key=_zipped):
        best.setdefault(r["method"], r)
    if best:
        winner, *others = best.values()
        text += (f"**{winner['method']}** gives the smallest model within it: **{winner['name']}**, "
                 f"{_numbers(winner, tests[winner['name']])}.")
        if others:
            ratio = _zipped(others[0]) / _zipped(winner)  # two decimals where one would print a tie as 1.0
            text += (f" That is {ratio:.{2 if ratio < 1.1 else 1}f}× smaller zipped than the smallest "
                     f"{others[0]['method']} variant within the margin; each other method's: "
                     + ", ".join(_brief(r, tests[r["name"]]) for r in others) + ".")
        if outside := sorted({r["method"] for r in keras if r["name"] in tests} - set(best) - {"none"}):
            text += f" No {' or '.join(outside)} variant is within it."
        text += _scoped(records)
    else:
        text += f"**No compressed variant is within the margin**: each may lose more than {margin_pp:g} pp."
    return text + " " + _trade_off(keras, tests) + " " + _speed_and_structure(records, tests)


def _zipped(record: Record) -> int:
    return record["size"]["zipped_bytes"]


def _brief(r: Record, t: dict[str, Any]) -> str:
    return (f"{r['name']} ({r['method']}, {r['size']['times_smaller']:.2f}× smaller, {t['delta_pp']:+.2f} pp, 95 % "
            f"CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f})")


def _numbers(r: Record, t: dict[str, Any]) -> str:
    """A variant's size reduction and tested accuracy change, with interval, p-value, test size and seeds."""
    n = seeds.count(r)
    spread = f" ± {t['delta_std_pp']:.2f} std over seeds" if n > 1 else ""
    test = "Holm-corrected t-test p over the seeds" if n > 1 else "Holm-corrected McNemar p"
    return (f"{r['size']['times_smaller']:.1f}× smaller zipped than the base at {t['delta_pp']:+.2f} pp{spread} "
            f"against {t['control']} (95 % CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f} pp, {test} = "
            f"{t['p_holm']:.3g}, {r['test_samples']} test images, {n} seed{'s' if n != 1 else ''}): {t['verdict']}")


def _trade_off(keras: list[Record], tests: dict[str, dict[str, Any]]) -> str:
    """The Pareto front of zipped size against accuracy (overlapping accuracy intervals count as ties), read from
    its most accurate end: what each smaller file costs in accuracy."""
    named = _by_name(keras)
    front = sorted((named[n] for n in report.pareto_front(keras)), key=_zipped, reverse=True)
    if len(front) < 2:
        return f"The Pareto front of zipped size against accuracy is {front[0]['name']} alone." if front else ""
    steps = [f"{b['name']} is {_zipped(a) / _zipped(b):.1f}× smaller than {a['name']} for "
             f"{100 * (b['metrics']['accuracy'] - a['metrics']['accuracy']):+.2f} pp of accuracy"
             for a, b in zip(front, front[1:], strict=False)]
    worse = [r["name"] for r in front if tests.get(r["name"], {}).get("verdict") == "worse"]
    return ("The Pareto front of zipped size against accuracy is a trade-off, size bought with accuracy: "
            + "; ".join(steps) + "."
            + (f" On it, {', '.join(worse)} {'is' if len(worse) == 1 else 'are'} measurably worse than "
               "the control: smaller, at a cost." if worse else ""))


def _speed_and_structure(records: list[Record], tests: dict[str, dict[str, Any]]) -> str:
    """Which variants ran clearly faster, and where structured pruning (its own PyTorch base) stands."""
    fast = [r["name"] for _, group, speeds in _method_groups(records)
            for r, s in zip(group, speeds, strict=True) if speed.clearly_faster(s)]
    text = (f"On speed, only {', '.join(fast)}" if fast else "On speed, none of the variants") + \
        " ran clearly faster than its base at batch 1."
    for r in (r for r in records if r["method"] == "structured pruning" and r["name"] in tests):
        t = tests[r["name"]]
        text += (f" {r['name']} (the PyTorch base's structured pruning, which shrinks the raw file and the "
                 f"computation) is {'within' if t['within_margin'] else 'not within'} the margin: "
                 f"{t['delta_pp']:+.2f} pp (95 % CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f}).")
    return text


def answer_pruners(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """Does the structured pruner matter? At each sparsity the pruners leave the same widths, so the same speed: each
    Torch-Pruning variant's paired difference from NNI's (records with `vs_pruner`: labkit.results.pruners), with its
    interval and corrected test, its speed against NNI's, and both against their common control."""
    compared = [r for r in records if r.get("vs_pruner")]
    if not compared:
        return ""
    named, tests = _by_name(records), report.tested(records, margin_pp)
    lines = ["At one sparsity NNI and Torch-Pruning leave every layer the same width (NNI's rounding), so the same "
             "parameters, FLOPs and batch-1 speed: which pruner keeps more accuracy at the same speed-up is read "
             "from their predictions on the same test images."]
    for r in compared:
        t, nni = r["vs_pruner"], named[r["vs_pruner"]["control"]]
        own, theirs = tests.get(r["name"]), tests.get(nni["name"])
        against = (f"; against the common control {own['delta_pp']:+.2f} pp (95 % CI {own['low_pp']:+.2f} … "
                   f"{own['high_pp']:+.2f}), NNI's {theirs['delta_pp']:+.2f} pp" if own and theirs else "")
        lines.append(f"- **{r['name']}** ({pruners.pruner(r)}) − **{nni['name']}** (NNI APoZ), sparsity "
                     f"{r['params']['sparsity']:g}: {t['delta_pp']:+.2f} pp (95 % CI {t['low_pp']:+.2f} … "
                     f"{t['high_pp']:+.2f}, Holm-corrected {t['test']} p = {t['p_holm']:.3g}): **{t['verdict']}**; "
                     f"batch-1 TFLite {speed.words([speed.speed_factor(r, nni)])} NNI's{against}.")
    return "\n".join(lines) + "\n\n" + _pruner_verdict(compared) + _scoped(records)


def _scoped(records: list[Record]) -> str:
    """The one-seed sentence after a verdict about methods or pruners (seeds.scope), or nothing."""
    return f" {said}" if (said := seeds.scope(records)) else ""


def _pruner_verdict(compared: list[Record]) -> str:
    """The answer in one sentence: where a pruner kept measurably more accuracy, or that none did."""
    better = [r["name"] for r in compared if r["vs_pruner"]["verdict"] == "better"]
    worse = [r["name"] for r in compared if r["vs_pruner"]["verdict"] == "worse"]
    if not better and not worse:
        widest = max(max(-r["vs_pruner"]["low_pp"], r["vs_pruner"]["high_pp"]) for r in compared)
        if any(r["vs_pruner"]["verdict"] == stats.TOO_FEW_SEEDS for r in compared):
            return (f"**Too few seeds to tell the pruners apart**: no Torch-Pruning variant kept measurably more or "
                    f"less accuracy than NNI's at the same widths, but the seeds' intervals reach ±{widest:.2f} pp "
                    "(the widest above): more seeds (`--seeds`) narrow them.")
        return (f"**No measurable difference between the pruners**: no Torch-Pruning variant kept measurably more or "
                f"less accuracy than NNI's at the same widths; on this model and test set the pruner does "
                f"not matter beyond ±{widest:.2f} pp (the widest interval above).")
    said = []
    if better:
        said.append(f"Torch-Pruning kept measurably more accuracy than NNI's APoZ in {', '.join(better)}")
    if worse:
        said.append(f"measurably less in {', '.join(worse)}")
    return "**The pruner matters here**: " + "; ".join(said) + ", at the same widths and speed."


def answers(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> dict[str, str]:
    """The lab's questions and their answers, in markdown: the course's four, and whether the structured pruner
    matters when both libraries ran (records compared by labkit.results.pruners.with_comparisons)."""
    found = {
        "How do quantization, pruning and clustering compare on quality and speed?":
            answer_quality_and_speed(records, margin_pp),
        "How many times smaller is each compressed model?": answer_times_smaller(records),
        "What is ZIP deflation, and how does it relate to each method?": answer_deflation(records),
        "Which method dominates?": answer_dominance(records, margin_pp),
    }
    if pruner_answer := answer_pruners(records, margin_pp):
        found["Does the structured pruner matter?"] = pruner_answer
    return found
