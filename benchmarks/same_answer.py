"""Does a change that alters the arithmetic (other kernels, another precision, another batch) leave the lab's answer
as it was? Two runs of the same seeds, compared variant by variant.

`.venv/bin/python benchmarks/same_answer.py BEFORE AFTER [--seeds 42 43 44] [--margin-pp 1]` reads both results
folders (each with its seed-<seed>/ folders and kept predictions), combines each run's seeds as the summary does
(labkit.results.seeds) and prints, per variant, its Δ against its control over the seeds with the 95 % interval
and the verdict read from it, before and after; whether each run's Δ lies inside the other run's interval; and
whether the verdict is the same, went from undecided to decided, or changed otherwise. A speed lever that changes
the arithmetic is kept only when no verdict changed otherwise and every Δ lies inside the other run's interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.results import report, seeds, stats, verdicts  # noqa: E402


def _tests(results: Path, chosen: list[int] | None, margin_pp: float) -> dict[str, dict]:
    return report.tested(seeds.load(results, chosen), margin_pp)


def _inside(value: float, test: dict) -> bool:
    return test["low_pp"] <= value <= test["high_pp"]


def compare(before: Path, after: Path, chosen: list[int] | None = None,
            margin_pp: float = stats.MARGIN_PP) -> pd.DataFrame:
    """One row per variant both runs compared with their control."""
    old, new = _tests(before, chosen, margin_pp), _tests(after, chosen, margin_pp)
    rows = []
    for name in (n for n in old if n in new):
        a, b = old[name], new[name]
        change = ("same" if a["verdict"] == b["verdict"] else "undecided → decided"
                  if a["verdict"] == verdicts.UNDECIDED else "changed")
        rows.append({"variant": name,
                     "before: Δ (pp) [95 % CI]": f"{a['delta_pp']:+.2f} [{a['low_pp']:+.2f}, {a['high_pp']:+.2f}]",
                     "before: verdict": a["verdict"],
                     "after: Δ (pp) [95 % CI]": f"{b['delta_pp']:+.2f} [{b['low_pp']:+.2f}, {b['high_pp']:+.2f}]",
                     "after: verdict": b["verdict"],
                     "each Δ inside the other's CI": "yes" if _inside(a["delta_pp"], b) and _inside(
                         b["delta_pp"], a) else "no",
                     "verdict": change})
    return pd.DataFrame(rows).set_index("variant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the results folder before the change")
    parser.add_argument("after", type=Path, help="the results folder after it")
    parser.add_argument("--seeds", type=int, nargs="+", help="the seeds to combine (default: every seed of each)")
    parser.add_argument("--margin-pp", type=float, default=stats.MARGIN_PP, help="the non-inferiority margin")
    args = parser.parse_args()
    table = compare(args.before, args.after, args.seeds, args.margin_pp)
    print(table.to_markdown())
    kept = (table["each Δ inside the other's CI"] == "yes").all() and (table.verdict != "changed").all()
    print(f"\n{len(table)} variants; every Δ inside the other run's interval and no verdict changed except from "
          f"undecided to decided: {'yes' if kept else 'no'}")


if __name__ == "__main__":
    main()
