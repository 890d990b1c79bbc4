"""The structured pruners compared: NNI's APoZ and Torch-Pruning's criteria, at the same widths, on the same test
images, along the sparsity curve.

At one sparsity every pruner leaves the same layer widths (labkit.methods.tp_pruning), so the same parameters, FLOPs and
computation: which pruner keeps more accuracy at the same speed-up is a paired comparison of their predictions on
the same test images, each Torch-Pruning variant against NNI's at its sparsity (paired bootstrap interval and exact
McNemar test; over several seeds, the interval over the seeds, as for the controls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from labkit.results import report, speed, stats, verdicts
from labkit.results.evaluate import over_seeds, versus

Record = dict[str, Any]
NNI = "NNI APoZ"


def pruner(record: Record) -> str:
    """Which pruner and criterion made a structured-pruning record, in words ("NNI APoZ", "Torch-Pruning taylor")."""
    params = record["params"]
    return f"Torch-Pruning {params['criterion']}" if params.get("pruner") == "torch-pruning" else NNI


def structured(records: list[Record], control: Record | None = None) -> list[Record]:
    """The structured-pruning records, by sparsity then pruner; with `control`, only those compared with that very
    control record (the same budget and base: records of other settings left in the folder are not this curve's)."""
    found = [r for r in records if r["method"] == "structured pruning"]
    if control is not None:
        from labkit.records import digest

        found = [r for r in found if (r["key"].get("control") or {}).get("key") == digest(control["key"])]
    return sorted(found, key=lambda r: (r["params"]["sparsity"], pruner(r) != NNI, pruner(r)))


def _nni_of(record: Record, named: dict[str, Record]) -> Record | None:
    return named.get(f"structured-{record['params']['sparsity']:g}") if pruner(record) != NNI else None


def _pairs(records: list[Record]) -> list[tuple[Record, Record]]:
    named = {r["name"]: r for r in records}
    return [(r, nni) for r in structured(records) if (nni := _nni_of(r, named))]


def with_comparisons(records: list[Record], folders: list[Path]) -> list[Record]:
    """Records whose Torch-Pruning variants carry `vs_pruner`: their paired comparison with NNI's variant at the
    same sparsity, from the predictions kept in each seed's folder (one folder per seed).

    One seed: the accuracy difference with its paired bootstrap interval and exact McNemar test. Several seeds: the
    interval over the seeds (evaluate.over_seeds), as the controls'; `per_seed` keeps each seed's own test. The
    verdict is read from the interval at the summary's margin (report.tested's vocabulary, verdicts.judge).
    """
    pairs = _pairs(records)
    if not pairs:
        return records
    tests = {}
    for r, nni in pairs:
        per_seed = [versus(folder, r["name"], nni["name"]) for folder in folders]
        tests[r["name"]] = per_seed[0] if len(folders) == 1 else {
            "control": nni["name"], "test": "over seeds", "per_seed": per_seed,
            **over_seeds([(folder, r["name"], nni["name"]) for folder in folders])}
    return [{**r, "vs_pruner": tests[r["name"]]} if r["name"] in tests else r for r in records]


def pruner_tests(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> dict[str, dict[str, Any]]:
    """Each Torch-Pruning variant's comparison with NNI's at its sparsity (`vs_pruner`), judged at the margin."""
    return {r["name"]: verdicts.judge(r["vs_pruner"], margin_pp) for r in records if r.get("vs_pruner")}


def comparison_table(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """Per structured-pruning variant: pruner, sparsity, parameters, accuracy with its interval, the change against
    the common control, batch-1 speed-up and zipped reduction against the base, and, for Torch-Pruning, the paired
    difference from NNI at the same widths with its interval, the verdict read from it and what each seed showed."""
    named = {r["name"]: r for r in records}
    base, tests = named.get("torch-base-fp32"), report.tested(records, margin_pp)
    against_nni = pruner_tests(records, margin_pp)
    rows = []
    for r in structured(records):
        low, high = report.accuracy_interval(r)
        control, other = tests.get(r["name"]), against_nni.get(r["name"])
        rows.append({
            "variant": r["name"], "pruner": pruner(r), "sparsity": r["params"]["sparsity"],
            "parameters": r["stages"]["fine-tuned"]["parameters"],
            "accuracy": r["metrics"]["accuracy"], "accuracy 95 % CI": f"{low:.4f} – {high:.4f}",
            "Δ vs control (pp)": control["delta_pp"] if control else None,
            "Δ vs control 95 % CI": f"{control['low_pp']:+.2f} … {control['high_pp']:+.2f}" if control else "",
            "× faster than base": speed.speed_factor(r, base)[0] if base else None,
            "× smaller zipped": r["size"]["times_smaller"],
            "Δ vs NNI (pp)": other["delta_pp"] if other else None,
            "Δ vs NNI 95 % CI": f"{other['low_pp']:+.2f} … {other['high_pp']:+.2f}" if other else "",
            "vs NNI": other["said"] if other else "", "vs NNI, seed by seed": other["evidence"] if other else ""})
    return pd.DataFrame(rows).set_index("variant")


def plot_curve(records: list[Record]):
    """Accuracy (95 % intervals) against batch-1 TFLite speed-up (with its 95 % interval) and against zipped size
    reduction, both over the PyTorch base: one line per pruner along its sparsities, the common control's accuracy
    as a band. Each x axis spans at least `MIN_SPAN` times its smallest value, so pruners that differ by less than
    their intervals (the same widths give the same size and nearly the same speed) do not look far apart."""
    named = {r["name"]: r for r in records}
    base, control = named["torch-base-fp32"], named.get("torch-control-fp32")
    curve = structured(records)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    axes_of = ((axes[0], "× faster than the base (batch 1, TFLite)", lambda r: speed.speed_factor(r, base)),
               (axes[1], "× smaller zipped than the base", lambda r: (r["size"]["times_smaller"], None, None)))
    for ax, xlabel, x_of in axes_of:
        shown = []
        for i, ((label, group), marker) in enumerate(zip(_by_pruner(curve).items(), "osD^v", strict=False)):
            xs = [_span(*x_of(r)) for r in group]
            ys = [r["metrics"]["accuracy"] for r in group]
            spans = [[max(0.0, y - report.accuracy_interval(r)[0]) for y, r in zip(ys, group, strict=True)],
                     [max(0.0, report.accuracy_interval(r)[1] - y) for y, r in zip(ys, group, strict=True)]]
            ax.errorbar([x for x, _, _ in xs], ys, yerr=spans, xerr=[[x - low for x, low, _ in xs],
                                                                   [high - x for x, _, high in xs]],
                        fmt=f"{marker}-", capsize=3, label=label, alpha=0.85)
            shown += xs
            for (x, _, _), y, r in zip(xs, ys, group, strict=True) if i == 0 else ():  # shared sparsities
                ax.annotate(f"{r['params']['sparsity']:g}", (x, y), textcoords="offset points", xytext=(5, -12),
                            fontsize=8)
        if control:
            low, high = report.accuracy_interval(control)
            ax.axhspan(low, high, color="tab:orange", alpha=0.15, label="control, 95 % CI")
        ax.axhline(base["metrics"]["accuracy"], color="grey", ls="--", label="base")
        ax.set(xlabel=xlabel, xlim=_limits(shown), title="Accuracy against " + ("speed" if ax is axes[0] else "size"))
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
    axes[0].set_ylabel("test accuracy (labels: sparsity)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    plt.close(fig)
    return fig


MIN_SPAN = 1.5  # an x axis of the pruners' curve covers at least this factor


def _span(value: float, low: float | None, high: float | None) -> tuple[float, float, float]:
    """A value with its interval (the value itself at both ends when it has none)."""
    return value, value if low is None else low, value if high is None else high


def _limits(shown: list[tuple[float, float, float]]) -> tuple[float, float]:
    """x limits holding every interval with a margin, and at least `MIN_SPAN` wide (as a factor)."""
    low, high = min(s[1] for s in shown), max(s[2] for s in shown)
    middle, half = (low * high) ** 0.5, max((high / low) ** 0.5 * 1.05, MIN_SPAN ** 0.5)
    return middle / half, middle * half


def _by_pruner(curve: list[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for r in curve:
        grouped.setdefault(pruner(r), []).append(r)
    return grouped
