"""Tables and plots of variant records, shared by the notebooks and the lab summary."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from adjustText import adjust_text

from labkit.deploy import tflite
from labkit.records import METHODS
from labkit.results import stats, verdicts

Record = dict[str, Any]
# one colour per method, everywhere: seaborn's ten, then black
COLORS = dict(zip(METHODS, [*sns.color_palette(n_colors=10), (0.0, 0.0, 0.0)], strict=True))


def tested(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> dict[str, dict[str, Any]]:
    """Each variant's comparison with its control, judged at the margin (labkit.results.verdicts): its verdict read
    from its interval, whether it is within the margin, what its seeds showed one by one, and, for a variant stopped
    at its fine-tuning maximum while still gaining, that its Δ is a lower bound."""
    return {r["name"]: verdicts.judge(r["vs_control"], margin_pp, bool((r.get("fine_tuning") or {}).get(
        "still_recovering"))) for r in records if r.get("vs_control")}


def accuracy_interval(record: Record) -> tuple[float, float]:
    """The 95 % interval of a variant's accuracy (a point for records made before intervals were kept)."""
    accuracy = record["metrics"]["accuracy"]
    return tuple(record.get("accuracy_interval") or (accuracy, accuracy))


def variants_table(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """Quality and speed per variant: the five metrics with the accuracy's 95 % interval; the change against the
    matched-budget control with its interval, the verdict read from it, what each seed showed and whether it is
    within the margin; batch-1 latency."""
    tests, int8_kept = tested(records, margin_pp), any("preservation" in r for r in records)
    rows = []
    for r in records:
        low, high = accuracy_interval(r)
        test = tests.get(r["name"])
        rows.append({
            "variant": r["name"], "method": r["method"],
            "accuracy": r["metrics"]["accuracy"], "accuracy 95 % CI": f"{low:.4f} – {high:.4f}",
            "before fine-tuning": r.get("accuracy_before_fine_tuning"), "fine-tuning steps": fine_tuning_said(r),
            "control": test["control"] if test else "",
            "Δ vs control (pp)": test["delta_pp"] if test else None,
            "Δ 95 % CI (pp)": f"{test['low_pp']:+.2f} … {test['high_pp']:+.2f}" if test else "",
            "verdict": test["said"] if test else "", "evidence": test["evidence"] if test else "",
            f"within {margin_pp:g} pp": ("yes" if test["within_margin"] else "no") if test else "",
            "Δ vs base (pp)": r["accuracy_change_pp"],
            "mean precision": r["metrics"]["mean_precision"], "mean sensitivity": r["metrics"]["mean_sensitivity"],
            "G-mean": r["metrics"]["g_mean"], "top-5": r["metrics"]["top_5"],
            "latency median (ms)": r["latency"]["median_ms"], "latency IQR (ms)": r["latency"]["iqr_ms"],
            **({"latency, built-in kernels (ms)": r["latency_builtin"]["median_ms"]} if "latency_builtin" in r
               else {}),
            **({"INT8 kept": kept_said(r)} if int8_kept else {})})
    return pd.DataFrame(rows).set_index("variant")


def kept_said(record: Record) -> str:
    """What a collaborative-optimization variant's INT8 file kept of its parent's zeros and centroids: "all", or
    what it lost; empty for other variants."""
    if not (kept := record.get("preservation")):
        return ""
    if record["params"].get("keeps") == "nothing":  # plain QAT: its parent had nothing to keep
        return "nothing to keep"
    return "lost: " + "; ".join(kept["lost"]) if kept["lost"] else "all"


def preservation_table(files: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """Per layer, what each INT8 file kept (`files`: label → deploy.preservation.figures): the most distinct int8
    values in an output channel and the share of zeros, side by side."""
    columns = {}
    for label, kernels in files.items():
        columns[(label, "distinct values per channel")] = {n: k["distinct_per_channel"] for n, k in kernels.items()}
        columns[(label, "zeros (%)")] = {n: round(100 * k["zero_share"], 1) for n, k in kernels.items()}
    return pd.DataFrame(columns).rename_axis("layer")


def fine_tuning_said(record: Record) -> str:
    """How long a variant was fine-tuned: the steps of its kept weights, and a flag when it stopped at the maximum
    while still gaining (more fine-tuning might change its verdict)."""
    tuned = record.get("fine_tuning")
    if not tuned:
        return ""
    steps = " / ".join(map(str, tuned.get("steps_by_seed") or [tuned["steps"]]))  # one per seed when combined
    return steps + (", still recovering" if tuned["still_recovering"] else "")


def _phases(tuned: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The recovery curves of one fine-tuning, each with the step it started at (prune-then-cluster has two, its
    quantization-aware training a third after them; QAT of the base has one)."""
    if "curve" in tuned:
        return [(0, tuned)]
    if "quantization_aware" in tuned:
        parent = tuned["parent"]
        return [*(_phases(parent) if parent["steps"] else []), (parent["steps"], tuned["quantization_aware"])]
    return [(0, tuned["pruning"]), (tuned["pruning"]["steps"], tuned["clustering"])]


def plot_recovery(records: list[Record], title: str = "Recovery during fine-tuning"):
    """Validation accuracy against fine-tuning steps, from right after compression (step 0) to where each
    fine-tuning stopped, with the control's trajectory: whether more fine-tuning could change a verdict. A dot
    marks the weights each variant kept; the checks after it, which the rule waited through, are faint.
    Prune-then-cluster's clustering starts from the pruning's kept weights."""
    tuned = [r for r in records if r.get("fine_tuning") and "steps" not in r["params"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    for r in tuned:
        control, color = "control" in r["name"], None
        for i, (start, phase) in enumerate(_phases(r["fine_tuning"])):
            steps = [start + step for step in phase["curve"]["steps"]]
            accuracy, kept = phase["curve"]["val_accuracy"], phase["curve"]["steps"].index(phase["steps"])
            style = {"ls": "--" if control else "-", "color": "black" if control else color}
            color = ax.plot(steps[:kept + 1], accuracy[:kept + 1], label=r["name"] if i == 0 else None,
                            **style)[0].get_color()
            ax.plot(steps[kept:], accuracy[kept:], ls=style["ls"], color=color, alpha=0.3)
            ax.plot(steps[kept], accuracy[kept], "o", color=color)
    ax.set(xlabel="fine-tuning steps", ylabel="validation accuracy", title=title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    plt.close(fig)
    return fig


def deflation_table(records: list[Record]) -> pd.DataFrame:
    """The course's ZIP table: file size, zip size, deflation %, and how many times smaller than the FP32 base; once
    the models ran under TFLM, the flash of the look-up-table compressed file beside the zip (what a board stores)."""
    table = pd.DataFrame([{
        "variant": r["name"],
        "size (KB)": r["size"]["raw_bytes"] / 1024, "zip size (KB)": r["size"]["zipped_bytes"] / 1024,
        "deflation (%)": r["size"]["deflation_pct"],
        "× smaller than zipped FP32 base": r["size"]["times_smaller"],
        "× smaller than FP32 base file": r["size"]["times_smaller_raw"],
        "entropy bound (KB)": r["size"]["ideal_bytes"] / 1024,
        "bound / zip": r["size"].get("reached", float("nan")),
    } for r in records]).set_index("variant")
    if any(r.get("micro") for r in records):
        table["TFLM LUT flash (KB)"] = [lut_flash(r) / 1024 if lut_flash(r) else float("nan") for r in records]
    return table


def lut_flash(record: Record) -> int | None:
    """The flash bytes of a variant's TFLM look-up-table compressed file, when it has one."""
    return ((record.get("micro") or {}).get("compressed") or {}).get("flash_bytes")


def kernel_table(record: Record) -> pd.DataFrame:
    """Per kernel of one variant: size, distinct values and share of zeros."""
    return pd.DataFrame(record["kernels"]).T.rename_axis("layer").astype({"unique_values": int, "size": int})


def plot_sweep(records: list[Record], param: str, base: Record, xlabel: str):
    """Accuracy and zipped-size reduction against a swept parameter (cluster count or sparsity)."""
    rows = sorted((r for r in records if param in r["params"] and r["method"] in ("clustering", "pruning")),
                  key=lambda r: r["params"][param])
    xs = [r["params"][param] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    accuracy = [r["metrics"]["accuracy"] for r in rows]
    # clipped at 0: at accuracy 0 or 1 the Wilson bound can sit a rounding error inside the point
    spans = [[max(0.0, a - accuracy_interval(r)[0]) for a, r in zip(accuracy, rows, strict=True)],
             [max(0.0, accuracy_interval(r)[1] - a) for a, r in zip(accuracy, rows, strict=True)]]
    left.errorbar(xs, accuracy, yerr=spans, fmt="o-", capsize=3, label="compressed (95 % CI)")
    left.axhline(base["metrics"]["accuracy"], color="grey", ls="--", label="FP32 base")
    named = {r["name"]: r for r in records}
    paired = [(x, named[t["control"]]["metrics"]["accuracy"]) for x, r in zip(xs, rows, strict=True)
              if (t := r.get("vs_control")) and t["control"] in named and t["control"] != base["name"]]
    if paired:  # each variant's own control: the base fine-tuned as many steps as that variant
        left.plot(*zip(*paired, strict=True), "x", color="tab:orange", ms=8, label="its control")
    left.set(xlabel=xlabel, ylabel="test accuracy", title="Quality")
    left.legend()
    right.plot(xs, [r["size"]["times_smaller"] for r in rows], "o-", color="tab:green")
    right.axhline(1, color="grey", ls="--")
    right.set(xlabel=xlabel, ylabel="× smaller (zipped, vs zipped base)", title="Zipped size reduction")
    if param == "clusters":
        for ax in (left, right):
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_history(history: dict[str, list[float]]):
    """Training and validation accuracy per epoch of the base model, the kept (best) epoch marked."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = range(1, len(history.get("val_accuracy", [])) + 1)
    ax.plot(epochs, history.get("accuracy", []), "o-", label="training")
    ax.plot(epochs, history.get("val_accuracy", []), "o-", label="validation")
    if history.get("val_accuracy"):
        best = max(epochs, key=lambda e: history["val_accuracy"][e - 1])
        ax.axvline(best, color="grey", ls="--", label=f"kept: epoch {best}")
    ax.set(xlabel="epoch", ylabel="accuracy", title="Base model: learning curve")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_tradeoff(records: list[Record]):
    """Zipped size against accuracy, one point per variant; the Pareto front of the Keras variants ringed and named."""
    frame = pd.DataFrame({"variant": [r["name"] for r in records], "method": [r["method"] for r in records],
                          "zip size (KB)": [r["size"]["zipped_bytes"] / 1024 for r in records],
                          "accuracy": [r["metrics"]["accuracy"] for r in records]})
    front = pareto_front(keras_records(records))
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.scatterplot(frame, x="zip size (KB)", y="accuracy", hue="method", palette=COLORS, s=80, ax=ax)
    best = frame[frame.variant.isin(front)].sort_values("zip size (KB)")
    ax.plot(best["zip size (KB)"], best["accuracy"], "o-", mfc="none", ms=14, color="black", lw=0.8,
            label="Pareto front")
    ax.set_xscale("log")
    named = frame[frame.variant.isin(front) | frame.method.str.match("none|structured")]
    labels = [ax.text(row["zip size (KB)"], row.accuracy, row.variant, fontsize=7) for _, row in named.iterrows()]
    adjust_text(labels, ax=ax, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    ax.legend(fontsize=8)
    ax.set_title("Size against quality (up and left is better)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def keras_records(records: list[Record]) -> list[Record]:
    """The records made from the Keras base (not the PyTorch classifier of structured pruning)."""
    return [r for r in records if not r["method"].startswith("structured") and not r["name"].startswith("torch-")]


def pareto_front(records: list[Record]) -> list[str]:
    """Names of the variants no other variant beats on zipped size and accuracy.

    Accuracies whose 95 % intervals overlap count as ties: a variant is beaten by one at most its zipped size that
    is measurably more accurate, or tied on accuracy and strictly smaller.
    """
    def better(o: Record, r: Record) -> bool:
        return accuracy_interval(o)[0] > accuracy_interval(r)[1]

    def beaten(r: Record) -> bool:
        return any(o is not r and o["size"]["zipped_bytes"] <= r["size"]["zipped_bytes"]
                   and (better(o, r) or (not better(r, o) and o["size"]["zipped_bytes"] < r["size"]["zipped_bytes"]))
                   for o in records)

    return [r["name"] for r in records if not beaten(r)]


def headlines(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> str:
    """One markdown bullet per variant: accuracy with its interval, the change against its control with its
    interval and verdict, zipped reduction, latency."""
    tests, lines = tested(records, margin_pp), []
    for r in records:
        low, high = accuracy_interval(r)
        line = f"- **{r['name']}**: accuracy {r['metrics']['accuracy']:.4f} (95 % CI {low:.4f} – {high:.4f})"
        if test := tests.get(r["name"]):
            line += (f"; against {test['control']}: {test['delta_pp']:+.2f} pp (95 % CI {test['low_pp']:+.2f} … "
                     f"{test['high_pp']:+.2f}; {test['evidence']}): **{test['said']}**")
        lines.append(line + f"; zipped {r['size']['times_smaller']:.2f}× smaller than the zipped FP32 base, "
                            f"batch-1 latency {r['latency']['median_ms']:.3f} ms")
    return "\n".join(lines)


def plot_samples(images, labels, class_names: list[str], count: int = 10):
    """A row of sample images titled with their class names."""
    fig, axes = plt.subplots(1, count, figsize=(1.4 * count, 1.9))
    for ax, image, label in zip(axes, images[:count], labels[:count], strict=False):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        ax.set_title(class_names[label], fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def stages_table(stages: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Structured pruning, stage by stage: runtime, accuracy, batch-1 latency, parameters, FLOPs, sizes."""
    rows = []
    for stage, s in stages.items():
        rows.append({"stage": stage, "runtime": s.get("runtime", ""), "accuracy": s.get("accuracy"),
                     "latency median (ms)": s["latency"]["median_ms"], "latency IQR (ms)": s["latency"]["iqr_ms"],
                     "parameters": s.get("parameters"), "FLOPs": s.get("flops"),
                     "size (KB)": s["raw_bytes"] / 1024 if "raw_bytes" in s else None,
                     "zip size (KB)": s["zipped_bytes"] / 1024 if "zipped_bytes" in s else None})
    return pd.DataFrame(rows).set_index("stage")


def readable_count(value: float | None) -> str:
    """A parameter or FLOP count as people say it: 15,876,874 -> "15.9 M"; blank when missing."""
    if value is None or pd.isna(value):
        return ""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f}"


def readable_ms(ms: float | None) -> str:
    """A time given in milliseconds, to 3 significant figures in the unit that reads best: 0.0234 -> "23.4 µs",
    3.456 -> "3.46 ms", 1234 -> "1.23 s"; blank when missing."""
    if ms is None or pd.isna(ms):
        return ""
    for value, unit in ((ms * 1e3, "µs"), (ms, "ms"), (ms / 1e3, "s")):
        rounded = float(f"{value:.3g}")
        if abs(rounded) < 1000 or unit == "s":
            break
    decimals = max(0, 2 - int(np.floor(np.log10(abs(rounded))))) if rounded else 0
    return f"{rounded:.{decimals}f} {unit}"


def _times(table: pd.DataFrame) -> list[str]:
    """The columns of a table that hold times in milliseconds (named "… (ms)")."""
    return [c for c in table.columns if str(c).endswith(" (ms)")]


def styled(table: pd.DataFrame, precision: int = 4):
    """A table for a notebook: numbers to `precision` digits, times in µs, ms or s (3 significant figures), counts
    (parameters, FLOPs) readable, blanks blank."""
    counts = [c for c in ("parameters", "FLOPs") if c in table.columns]
    return (table.style.format(precision=precision, na_rep="").format(readable_count, subset=counts)
            .format(readable_ms, subset=_times(table)).format_index(lambda c: str(c).removesuffix(" (ms)"), axis=1))


def markdown(table: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A table as markdown for the lab summary, with missing values (a base has no control) left blank, not "nan",
    and times in µs, ms or s."""
    table = table.astype(object).where(table.notna(), None)
    for column in _times(table):
        table[column] = [readable_ms(v) for v in table[column]]
    return table.rename(columns=lambda c: str(c).removesuffix(" (ms)")).to_markdown(floatfmt=floatfmt, missingval="")


def stages_markdown(stages: dict[str, dict[str, Any]]) -> str:
    """The stages table as markdown: integers with thousands separators, empty cells left blank."""
    formats = {"accuracy": ".4f", "parameters": ",.0f", "FLOPs": ",.0f", "size (KB)": ",.1f", "zip size (KB)": ",.1f"}
    table = stages_table(stages).astype(object)
    for column, fmt in formats.items():
        table[column] = [format(v, fmt) if pd.notna(v) else "" for v in table[column]]
    for column in _times(table):
        table[column] = [readable_ms(v) for v in table[column]]
    return table.rename(columns=lambda c: str(c).removesuffix(" (ms)")).to_markdown(disable_numparse=True)


RUNTIME_PAIRS = {"PyTorch": ("base", "fine-tuned"), "ONNX Runtime": ("ONNX base", "ONNX pruned"),
                 "TFLite": ("TFLite base", "TFLite pruned")}


def speedups(stages: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """How many times faster the pruned model runs than the base, per runtime (base median / pruned median)."""
    return pd.DataFrame([{"runtime": runtime,
                          "base (ms)": stages[base]["latency"]["median_ms"],
                          "pruned (ms)": stages[pruned]["latency"]["median_ms"],
                          "× faster": stages[base]["latency"]["median_ms"] / stages[pruned]["latency"]["median_ms"]}
                         for runtime, (base, pruned) in RUNTIME_PAIRS.items()]).set_index("runtime")


def plot_latency(records: list[Record]):
    """Median batch-1 TFLite latency per variant, IQR as error bars, coloured by method: one panel per base model
    (the Keras CNN runs in hundredths of a millisecond, the PyTorch classifier in milliseconds), each on its own
    scale, its axis naming the runtime that ran it."""
    keras = keras_records(records)
    groups = [(title, group) for title, group in (("Keras CNN and its variants", keras),
                                                  ("PyTorch classifier and its variants",
                                                   [r for r in records if r not in keras])) if group]
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 0.35 * len(records) + 1.2 * len(groups) + 0.6),
                             height_ratios=[len(group) for _, group in groups], squeeze=False)
    for ax, (title, group) in zip(axes[:, 0], groups, strict=True):
        frame = pd.DataFrame({"variant": [r["name"] for r in group], "method": [r["method"] for r in group],
                              "median": [r["latency"]["median_ms"] for r in group],
                              "iqr": [r["latency"]["iqr_ms"] for r in group]})
        sns.barplot(frame, y="variant", x="median", hue="method", palette=COLORS, dodge=False, ax=ax)
        ax.errorbar(frame["median"], range(len(frame)), xerr=frame["iqr"] / 2, fmt="none", color="black", lw=1)
        runtime = group[0]["latency"].get("runtime")
        ax.set(xlabel="batch-1 latency, median (ms)" + (f"; {tflite.describe(runtime)}" if runtime else ""),
               ylabel="", title=f"TFLite inference time: {title}")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_bound(records: list[Record]):
    """Zipped size beside the entropy bound, per variant (KB, log scale)."""
    frame = pd.DataFrame([{"variant": r["name"], "size": r["size"][key] / 1024, "kind": label}
                          for r in records for key, label in (("raw_bytes", "file"), ("zipped_bytes", "zipped"),
                                                              ("ideal_bytes", "entropy bound"))])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(records) + 1.5))
    sns.barplot(frame, y="variant", x="size", hue="kind", ax=ax)
    ax.set(xscale="log", xlabel="size (KB, log scale)", ylabel="", title="File, zipped file and entropy bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


VERDICT_COLORS = dict(zip(verdicts.ORDER, ["tab:green", "tab:blue", "tab:olive", "tab:grey", "tab:orange", "tab:red"],
                          strict=True))


def plot_verdicts(records: list[Record], margin_pp: float = stats.MARGIN_PP):
    """Each variant's Δ against its control with its 95 % interval, 0 and −margin drawn, coloured by the verdict
    read from it, with how many times smaller (zipped) it is: the answer in one picture. Intervals reaching past
    the frame (4 margins below 0, 3 above) are cut at its edge, and a Δ beyond it is written there."""
    tests = tested(records, margin_pp)
    shown = sorted((r for r in records if r["name"] in tests), key=lambda r: -r["size"]["times_smaller"])
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(shown) + 1.4))
    left = max(min(tests[r["name"]]["low_pp"] for r in shown) - 0.2, -4 * margin_pp)
    right = min(max(max(tests[r["name"]]["high_pp"] for r in shown) + 0.2, 0.5 * margin_pp), 3 * margin_pp)
    ax.axvspan(-margin_pp, 0, color="tab:blue", alpha=0.07)
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(-margin_pp, color="tab:red", lw=0.8, ls="--")
    for y, r in enumerate(shown):
        t = tests[r["name"]]
        color = VERDICT_COLORS[t["verdict"]]
        low, high, delta = (min(max(v, left), right) for v in (t["low_pp"], t["high_pp"], t["delta_pp"]))
        ax.plot([low, high], [y, y], color=color, lw=2.5, solid_capstyle="butt")
        if t["delta_pp"] < left:
            ax.annotate(f"◂ {t['delta_pp']:+.1f} pp", (left, y), xytext=(2, 4), textcoords="offset points",
                        fontsize=7, color=color)
        else:
            ax.plot(delta, y, "o", color=color, mfc="white" if t["still_recovering"] else color)
        ax.annotate(f"{r['size']['times_smaller']:.1f}×", (1.01, y), xycoords=("axes fraction", "data"),
                    fontsize=7, va="center")
    ax.set_yticks(range(len(shown)), [r["name"] for r in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left, right)
    handles = [plt.Line2D([], [], color=c, lw=2.5, label=v) for v, c in VERDICT_COLORS.items()
               if any(tests[r["name"]]["verdict"] == v for r in shown)]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.07, 1), title="verdict",
              title_fontsize=7)
    ax.set(xlabel=f"Δ accuracy against the control (pp), 95 % interval; dashed: −{margin_pp:g} pp margin",
           title="What each variant costs (right: × smaller zipped; open dot: still recovering)")
    fig.tight_layout()
    plt.close(fig)
    return fig
