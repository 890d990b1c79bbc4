"""Seeds: the lab run once per seed, each seed in its own folder, and the records combined over the seeds.

Each seed trains its own base and every variant from it, so the spread over seeds is the spread a user would see
by running the lab again. One seed's folder is `<results>/seed-<seed>/`; the summary reads them all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit import paths
from labkit.records import check_across_seeds, check_one_run, load_records
from labkit.results import evaluate, fit, report, stats, verdicts

Record = dict[str, Any]


def folder(results_dir: str | Path, seed: int) -> Path:
    """Where one seed's records, models and executed notebooks go (a relative results_dir is in the project)."""
    return paths.resolve(results_dir) / f"seed-{seed}"


def seeds_in(results_dir: str | Path) -> list[int]:
    """The seeds with a folder under results_dir, in order."""
    found = (re.fullmatch(r"seed-(\d+)", p.name) for p in paths.resolve(results_dir).glob("seed-*") if p.is_dir())
    return sorted(int(m[1]) for m in found if m)


def load_runs(results_dir: str | Path, seeds: list[int] | None = None) -> dict[int, list[Record]]:
    """The records of the given seeds (default: every seed with a folder), by seed, seeds without records left out.
    Records that cannot be combined (made by other runs: other data, base or settings) are refused in one line."""
    runs = {seed: load_records(folder(results_dir, seed)) for seed in seeds or seeds_in(results_dir)}
    runs = {seed: records for seed, records in runs.items() if records}
    for seed, records in runs.items():
        check_one_run(folder(results_dir, seed), records)
    check_across_seeds(runs)
    return runs


def count(record: Record) -> int:
    """How many seeds a (combined) record stands for."""
    return len(record.get("by_seed", {}).get("seeds", [])) or 1


def scope(records: list[Record]) -> str:
    """What a verdict about a method or a pruner may claim, as a sentence to put beside it: with one seed, only
    the trained models it compared (retraining moved NNI's structured pruning by up to 4 pp and reordered the
    pruners); with several, the method itself, and nothing is added."""
    if max(map(count, records), default=1) > 1:
        return ""
    return ("One seed: this speaks of these trained models, not of the methods; `--seeds 42 43 44` trains each "
            "again and tests over the seeds.")


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def _numbers(group: list[dict[str, Any]]) -> dict[str, float]:
    """The mean over seeds of every number the dicts share (metrics, sizes)."""
    keys = [k for k, v in group[0].items() if isinstance(v, (int, float)) and all(k in d for d in group)]
    return {k: _mean([d[k] for d in group]) for k in keys}


def combine(runs: dict[int, list[Record]], results_dir: str | Path) -> list[Record]:
    """One record per variant recorded under every seed: metrics and sizes averaged over the seeds, the accuracy
    interval the envelope of the seeds' intervals, and the comparison with the control repeated per seed.

    The combined Δ against the control is the mean of the seeds' Δ with an interval that holds both retraining and
    the shared test set (stats.seed_interval, from the predictions kept in each seed's folder under results_dir);
    `per_seed` keeps each seed's own test (paired interval, McNemar p), the evidence beside the verdict. Every
    seed adds evidence. With one seed the records are returned as they are.
    """
    seeds = sorted(runs)
    if len(seeds) < 2:
        return [record for seed in seeds for record in runs[seed]]
    named = {seed: {r["name"]: r for r in runs[seed]} for seed in seeds}
    combined = []
    for first in runs[seeds[0]]:
        name = first["name"]
        if not all(name in named[seed] for seed in seeds):
            continue
        group = [named[seed][name] for seed in seeds]
        accuracy = [r["metrics"]["accuracy"] for r in group]
        intervals = [report.accuracy_interval(r) for r in group]
        record = {**first, "metrics": _numbers([r["metrics"] for r in group]),
                  "size": _numbers([r["size"] for r in group]),
                  "accuracy_interval": (min(i[0] for i in intervals), max(i[1] for i in intervals)),
                  "accuracy_change_pp": _mean([r["accuracy_change_pp"] for r in group]),
                  "by_seed": {"seeds": seeds, "accuracy": accuracy, "accuracy_std": stats.mean_std(accuracy)[1]}}
        if all(r.get("fine_tuning") for r in group):  # each seed stopped its fine-tuning where it recovered
            tuned = [r["fine_tuning"] for r in group]
            record["fine_tuning"] = {**tuned[0], "steps_by_seed": [t["steps"] for t in tuned],
                                     "still_recovering": any(t["still_recovering"] for t in tuned)}
        if all(r.get("micro") for r in group):
            record["micro"] = fit.worst([r["micro"] for r in group])
        if before := [r["accuracy_before_fine_tuning"] for r in group if r.get("accuracy_before_fine_tuning")]:
            record["accuracy_before_fine_tuning"] = _mean(before)
        if all(r.get("vs_control") for r in group):
            per_seed = [r["vs_control"] for r in group]
            controls = {t["control"] for t in per_seed}  # a control after as many steps as each seed's variant
            pairs = [(folder(results_dir, seed), name, t["control"]) for seed, t in zip(seeds, per_seed, strict=True)]
            record["vs_control"] = {"control": controls.pop() if len(controls) == 1 else "control (per seed)",
                                    "test": "over seeds", **evaluate.over_seeds(pairs),
                                    "delta_std_pp": stats.mean_std([t["delta_pp"] for t in per_seed])[1],
                                    "per_seed": per_seed}
            record["by_seed"]["delta_pp"] = [t["delta_pp"] for t in per_seed]
        combined.append(record)
    return combined


def table(records: list[Record], margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """Per variant and seed: the accuracy and the Δ against the control with that seed's own verdict (its paired
    interval), then the mean ± std over the seeds, their interval, the verdict read from it, what the seeds showed
    one by one, and whether the variant is within the non-inferiority margin. Empty for a single seed."""
    tests, rows = report.tested(records, margin_pp), []
    for r in (r for r in records if "by_seed" in r):
        by = r["by_seed"]
        row = {"variant": r["name"]}
        row.update({f"accuracy, seed {s}": a for s, a in zip(by["seeds"], by["accuracy"], strict=True)})
        row["accuracy mean ± std"] = f"{r['metrics']['accuracy']:.4f} ± {by['accuracy_std']:.4f}"
        if test := tests.get(r["name"]):
            row.update({f"Δ vs control, seed {s} (pp)": f"{t['delta_pp']:+.2f} ({_short(t, margin_pp)})"
                        for s, t in zip(by["seeds"], test["per_seed"], strict=True)})
            row["Δ mean ± std (pp)"] = f"{test['delta_pp']:+.2f} ± {test['delta_std_pp']:.2f}"
            row["Δ 95 % CI over seeds (pp)"] = f"{test['low_pp']:+.2f} … {test['high_pp']:+.2f}"
            row["verdict over seeds"] = test["said"]
            row["the seeds one by one"] = test["evidence"]
            row[f"within {margin_pp:g} pp"] = _yes(test["within_margin"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def _short(test: dict[str, Any], margin_pp: float) -> str:
    return verdicts.verdict(test["low_pp"], test["high_pp"], margin_pp)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def load(results_dir: str | Path, seeds: list[int] | None = None) -> list[Record]:
    """The records of the given seeds (default: every seed) under results_dir, combined (see `combine`); a one-line
    error when there are none."""
    from labkit.errors import LabkitError

    if not (runs := load_runs(results_dir, seeds)):
        raise LabkitError(f"no variant records under {results_dir}/seed-*: run `python -m labkit run --tasks all` "
                          "first")
    return combine(runs, results_dir)
