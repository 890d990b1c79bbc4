"""Which board each variant fits, from its TFLM measurement (labkit.deploy.micro, kept as the record's "micro"): a
table per variant and board, the lab's fifth answer, and accuracy against flash and RAM with the boards' limits.

A variant fits a board when its plain or its look-up-table compressed file, with the runtime's allowance
(labkit.deploy.boards), fits both the board's flash and its SRAM; the compressed file saves flash but TFLM decodes
its weights into the arena, so it may need more RAM.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from labkit.deploy import boards as board_list
from labkit.deploy.boards import ALLOWANCE, KB, Allowance, Board
from labkit.records import METHODS
from labkit.results import report, stats

Record = dict[str, Any]
INT8_METHODS = ["quantization", *(m for m in METHODS if m.endswith(("QAT", "INT8")))]  # their files are INT8


def measured(records: list[Record]) -> list[Record]:
    """The records with a TFLM measurement."""
    return [r for r in records if r.get("micro")]


def worst(micros: list[dict[str, Any]]) -> dict[str, Any]:
    """One TFLM measurement for a variant over its seeds: the most flash and arena any seed's file needs, the fewest
    images on which it agreed, so that "it fits" holds for every seed's model."""
    found = {**micros[0], "runs": all(m.get("runs") for m in micros),
             "missing_ops": sorted({op for m in micros for op in m.get("missing_ops", [])})}
    for key in ("flash_bytes", "arena_bytes"):
        if all(key in m for m in micros):
            found[key] = max(m[key] for m in micros)
    if all("vs_litert_builtin" in m for m in micros):
        found["vs_litert_builtin"] = {k: (max if k == "max_abs_difference" else min)(
            m["vs_litert_builtin"][k] for m in micros) for k in micros[0]["vs_litert_builtin"]}
    packed = [m.get("compressed", {}) for m in micros]
    if all("flash_bytes" in p for p in packed):
        found["compressed"] = {**packed[0], "flash_bytes": max(p["flash_bytes"] for p in packed),
                               "arena_bytes": max(p["arena_bytes"] for p in packed),
                               "identical_to_plain": min(p["identical_to_plain"] for p in packed)}
    else:
        found["compressed"] = next(p for p in packed if "flash_bytes" not in p)
    return found


def _why_not(micro: dict[str, Any]) -> str:
    """Why TFLM does not run a model: the ops it lacks, or what it cannot read."""
    return micro.get("unsupported") or "lacks " + ", ".join(micro["missing_ops"])


def _kb(value: int | None) -> str:
    return "–" if value is None else f"{value / KB:,.0f}"


def board_table(records: list[Record], boards: list[Board] | None = None,
                allowance: Allowance = ALLOWANCE) -> pd.DataFrame:
    """Per measured variant: its flash and arena bytes plain and LUT-compressed, its agreement with LiteRT's
    built-in kernels on the sample, and per board the form that fits ("plain", "LUT") or "–"."""
    rows = []
    for r in measured(records):
        m, row = r["micro"], {"variant": r["name"]}
        if not m["runs"]:
            rows.append({**row, "runs under TFLM": f"no: {_why_not(m)}"})
            continue
        packed, agree = m.get("compressed", {}), m["vs_litert_builtin"]
        row.update({"runs under TFLM": "yes", "flash (KB)": _kb(m["flash_bytes"]),
                    "arena (KB)": _kb(m["arena_bytes"]), "LUT flash (KB)": _kb(packed.get("flash_bytes")),
                    "LUT arena (KB)": _kb(packed.get("arena_bytes")),
                    "same class as LiteRT": f"{agree['same_class']} of {m['sample']}",
                    "identical outputs": f"{agree['identical_outputs']} of {m['sample']}"})
        for board in boards or board_list.BOARDS:
            form = board_list.fitting_form(m, board, allowance)
            row[board.name] = "–" if form is None else ("plain" if form["form"] == "plain" else "LUT")
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def most_accurate_fitting(records: list[Record], board: Board, tests: dict[str, dict[str, Any]],
                          allowance: Allowance = ALLOWANCE) -> tuple[Record, dict[str, Any]] | None:
    """The most accurate compressed variant (compared with a control) that fits the board, and the form that fits."""
    fitting = [(r, form) for r in measured(records) if r["name"] in tests and r["method"] != "none"
               and (form := board_list.fitting_form(r["micro"], board, allowance))]
    return max(fitting, key=lambda pair: pair[0]["metrics"]["accuracy"], default=None)


def _needs(form: dict[str, Any], allowance: Allowance) -> str:
    flash, ram = allowance.flash(form["flash_bytes"]) / KB, allowance.ram(form["arena_bytes"]) / KB
    return f"{flash:,.0f} KB flash and {ram:,.0f} KB RAM{'' if form['form'] == 'plain' else ', LUT-compressed'}"


def answer(records: list[Record], margin_pp: float = stats.MARGIN_PP, boards: list[Board] | None = None,
           allowance: Allowance = ALLOWANCE) -> str:
    """Q5: what fits on a microcontroller, and what it costs: per board, the most accurate compressed variant that
    fits with its Δ against its control; which variants fit no board; where TFLM and LiteRT disagree; what TFLM's
    compression trades."""
    if not (found := measured(records)):
        return ""
    tests, named = report.tested(records, margin_pp), {r["name"]: r for r in records}
    runtime = found[0]["micro"]["runtime"]
    lines = [f"Every model ran under {runtime} on the first {found[0]['micro']['sample']} test images; a board needs "
             f"{allowance.words()}."]
    for board in boards or board_list.BOARDS:
        head = f"- **{board.name}** ({board.sram_bytes // KB} KB SRAM, {board.flash_bytes // KB:,} KB flash): "
        if best := most_accurate_fitting(records, board, tests, allowance):
            r, form = best
            t = tests[r["name"]]
            lines.append(head + f"**{r['name']}**, accuracy {r['metrics']['accuracy']:.4f}, {t['delta_pp']:+.2f} pp "
                         f"against its control (95 % CI {t['low_pp']:+.2f} … {t['high_pp']:+.2f}: {t['said']}); "
                         f"needs {_needs(form, allowance)}.")
        else:
            lines.append(head + "no compressed variant fits.")
    if base := named.get("base-fp32"):
        fits = [b.name for b in boards or board_list.BOARDS if base.get("micro") and board_list.fitting_form(
            base["micro"], b, allowance)]
        lines.append(f"- The uncompressed Keras base (FP32) fits {', '.join(fits) if fits else 'no board'}.")
    lines += _pytorch_line(found, boards or board_list.BOARDS, allowance)
    nowhere = [r["name"] for r in found if r["method"] != "none" and not any(
        board_list.fitting_form(r["micro"], b, allowance) for b in boards or board_list.BOARDS)]
    if nowhere:
        lines.append(f"- **Fits no board**: {', '.join(nowhere)}.")
    lines += _runtime_notes(found)
    return "\n".join(lines)


def _pytorch_line(found: list[Record], boards: list[Board], allowance: Allowance) -> list[str]:
    """Where the course's PyTorch classifier fits, at each sparsity and precision it was measured at."""
    torch = [r for r in found if r["method"].startswith("structured")]
    if not torch:
        return []
    said = []
    for r in torch:
        fits = [b.name for b in boards if board_list.fitting_form(r["micro"], b, allowance)]
        precision = "INT8" if r["method"] in INT8_METHODS else "FP32"
        said.append(f"{r['name']} (sparsity {r['params'].get('sparsity', 0):g}, {precision}, "
                    f"{r['micro']['flash_bytes'] / KB:,.0f} KB): {', '.join(fits) if fits else 'no board'}")
    return ["- **The course's PyTorch classifier** fits: " + "; ".join(said) + "."]


def _runtime_notes(found: list[Record]) -> list[str]:
    """Models TFLM cannot run, INT8 outputs that differ from LiteRT's built-in kernels, and what LUT compression
    traded (flash for arena) in the clustered models."""
    notes = []
    if cannot := [f"{r['name']} ({_why_not(r['micro'])})" for r in found
                  if not r["micro"]["runs"]]:
        notes.append(f"- **Does not run under TFLM**: {'; '.join(cannot)}.")
    differ = [f"{r['name']} ({m['sample'] - m['vs_litert_builtin']['identical_outputs']} of {m['sample']})"
              for r in found if (m := r["micro"])["runs"] and r["method"] in INT8_METHODS
              and m["vs_litert_builtin"]["identical_outputs"] < m["sample"]]
    notes.append("- INT8 outputs under TFLM " + (
        f"differ from LiteRT's built-in kernels on some images: {', '.join(differ)}" if differ
        else "equal LiteRT's built-in kernels on every image") + ".")
    packed = [r for r in found if r["micro"]["runs"] and "flash_bytes" in r["micro"].get("compressed", {})]
    if packed:
        smallest = min(packed, key=lambda r: r["micro"]["compressed"]["flash_bytes"])
        m = smallest["micro"]
        notes.append(f"- **TFLM's look-up-table compression** stores few-valued weights as indices: "
                     f"{len(packed)} variants, e.g. {smallest['name']} {m['flash_bytes'] / KB:,.0f} → "
                     f"{m['compressed']['flash_bytes'] / KB:,.0f} KB of flash with identical outputs, but TFLM "
                     f"decodes the weights into the arena: {m['arena_bytes'] / KB:,.0f} → "
                     f"{m['compressed']['arena_bytes'] / KB:,.0f} KB of RAM.")
    return notes


def plot(records: list[Record], boards: list[Board] | None = None, allowance: Allowance = ALLOWANCE):
    """Accuracy against flash and against RAM (with the allowance), one point per compressed variant and form and
    one per base, with each board's flash and SRAM drawn: a point left of a board's line fits that memory."""
    shown = [r for r in measured(records) if r["method"] != "none" or r["name"] in ("base-fp32", "torch-base-fp32")]
    rows = [{"variant": r["name"], "method": r["method"], "accuracy": r["metrics"]["accuracy"], "form": f["form"],
             "flash (KB)": allowance.flash(f["flash_bytes"]) / KB, "RAM (KB)": allowance.ram(f["arena_bytes"]) / KB}
            for r in shown for f in board_list.forms(r["micro"])]
    frame = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, memory, limit in zip(axes, ("flash (KB)", "RAM (KB)"), ("flash_bytes", "sram_bytes"), strict=True):
        sns.scatterplot(frame, x=memory, y="accuracy", hue="method", style="form", palette=report.COLORS, s=60, ax=ax,
                        legend=ax is axes[-1])
        for i, board in enumerate(boards or board_list.BOARDS):
            ax.axvline(getattr(board, limit) / KB, color="grey", lw=0.8, ls="--")
            ax.text(getattr(board, limit) / KB, 1.0 - 0.045 * i, f" {board.name}", fontsize=7, color="dimgrey",
                    transform=ax.get_xaxis_transform(), va="top")
        ax.set_xscale("log")
        ax.set_title(f"Accuracy against {memory.split()[0]} (left of a line: fits that board)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig
