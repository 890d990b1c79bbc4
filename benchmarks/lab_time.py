"""Where a run's time went: every executed notebook's cells by the seconds papermill measured, grouped by stage.

`.venv/bin/python benchmarks/lab_time.py results/fashion-mnist` prints, for each executed notebook of the run (a
seed's under `seed-<seed>/notebooks/`, the summary's under `notebooks/`), its total and its time per stage of the
lab (data, base, control, the step-by-step walk-through, the variants, pruning, fine-tuning, export, evaluation,
Netron views, and reports: the tables, plots and imports). A cell's stage is looked up by its id (`STAGES`); the
variants cells of 01 and 02 fine-tune, convert and evaluate each variant in one call. Cells under a second are
left out of the per-cell list but counted in the totals.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

STEP = "step by step"
ORDER = ["data", "base", "control", STEP, "variants", "pruning", "fine-tuning", "export", "evaluation", "netron",
         "reports"]
# the stage of each cell that does more than read, show or plot, by notebook and cell id (the rest: "reports")
STAGES = {
    "01_clustering": {"cell-07": "data", "cell-11": "base", "cell-13": "evaluation", "tflite-accuracy": "evaluation",
                      "control-code": "control", "cell-16": STEP, "clustering-answer": STEP, "before-code": STEP,
                      "cell-20": STEP, "cell-22": STEP, "cell-24": "variants"},
    "02_pruning": {"cell-07": "data", "control-code": "control", "cell-09": STEP, "pruning-answer": STEP,
                   "before-code": STEP, "cell-13": STEP, "cell-15": STEP, "cell-17": "variants", "cell-19": "variants",
                   "deploy-parent": STEP, "deploy-scheme": STEP, "deploy-convert": STEP, "deploy-plain": STEP,
                   "deploy-all": "variants"},
    "03_structured_pruning": {
        "cell-07": "data", "cell-09": "base", "cell-10": "evaluation", "pruner-answer": "pruning",
        "compress-answer": "pruning", "speedup-answer": "pruning", "speedup-save": "evaluation",
        "fine-tune-answer": "fine-tuning", "fine-tune-save": "evaluation", "control-code": "control",
        "export-given": "export", "onnx-answer": "export", "tflite-export-answer": "export", "export-save": "export",
        "cell-24": "export", "cell-26": "evaluation", "cell-27": "evaluation", "cell-35": "netron",
        "tp-2": "pruning", "tp-5": "pruning", "tp-9": "fine-tuning", "tp-11": "export", "tp-13": "evaluation",
        "tp-15": "netron", "tp-17": "evaluation", "summary-before-answer": "evaluation",
        "summary-pruned-answer": "evaluation", "summary-tuned-answer": "evaluation"},
    "04_summary": {"cell-07": "evaluation"},
}


def cells(notebook: Path) -> pd.DataFrame:
    """The code cells of an executed notebook with papermill's duration (s), stage and first line."""
    rows = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        seconds = (cell.get("metadata", {}).get("papermill") or {}).get("duration") or 0.0
        first = next((line for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
        stage = STAGES.get(notebook.stem, {}).get(cell.get("id"), "reports")
        rows.append({"notebook": notebook.stem, "cell": cell.get("id", ""), "stage": stage,
                     "seconds": float(seconds), "first line": first[:70]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder, e.g. results/fashion-mnist")
    parser.add_argument("--seed", type=int, default=42, help="the seed whose notebooks to read (default 42)")
    args = parser.parse_args()
    notebooks = sorted((args.results / f"seed-{args.seed}" / "notebooks").glob("*.ipynb"))
    notebooks += sorted((args.results / "notebooks").glob("*.ipynb"))
    table = pd.concat([cells(n) for n in notebooks], ignore_index=True)
    by_stage = table.pivot_table(index="notebook", columns="stage", values="seconds", aggfunc="sum", fill_value=0,
                                 margins=True, margins_name="total")
    order = [s for s in ORDER if s in by_stage.columns] + ["total"]
    print(by_stage[order].round(0).to_markdown())
    print()
    print(table[table.seconds >= 1].sort_values("seconds", ascending=False).round(1).to_markdown(index=False))


if __name__ == "__main__":
    main()
